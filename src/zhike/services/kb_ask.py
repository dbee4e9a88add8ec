"""Answering a shopper's question from a knowledge base (services/kb.py), with citations and a conversation.

The question (with the previous one for follow-ups such as "那它多少钱？") is searched; when the knowledge base has
no passage that answers it (zhike.kb.verdict "no"), the answer is "不知道，请咨询人工客服" at once, and no LLM runs.
With `kb_llm_check` on, when search cannot tell ("check": e5's sentence similarity lies in the band where answerable
and unanswerable questions mix), the LLM is first asked yes/no about the two best passages (a short prompt, one or
two tokens out; its "否" means 不知道, anything else goes on). Off by default: the embedded 1.5B model (int8, CPU)
misjudged 2 of the first 4 answerable tuning questions it was asked; with a stricter wording (只看资料…资料里没有写到，
就回答"否"; scored by the first token's log-odds of 是/否, whose argmax was 是 or 否 every time) it said yes to all 15
grey-band answerable tuning questions asked but no to only 7 of 17 unanswerable ones, at a median 23 s a check (204
prompt tokens, the loaded 2-core machine, 2026-12-08): a near-miss reads as answered to it. A large remote model
is what it is for. Then the LLM gets the numbered passages and answers only from them, citing them as
[1][2], and may still say 不知道. The question is screened by the prompt-safety lists on the way in and the answer on
the way out (a refusal names the policy).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import insert, select, update

from zhike.backends.llm.base import ChatMessage, GenerateOptions, complete
from zhike.backends.llm.resolve import check_llm, open_chat
from zhike.core.errors import Conflict, ContentRefused, InvalidInput
from zhike.kb import Verdict, by_support, verdict
from zhike.services.db import kb_conversations, kb_messages, utcnow
from zhike.services.kb import KnowledgeBases, Passage
from zhike.services.safety import PromptSafety

Lang = Literal["zh", "en"]
OP = "kb_ask"  # how the safety audit log names these questions
MAX_QUESTION_CHARS = 2000
IDK: dict[Lang, str] = {
    "zh": "不知道，请咨询人工客服",
    "en": "I don't know — please ask our customer service staff",
}
SYSTEM: dict[Lang, str] = {
    "zh": "你是网店的客服助手。只根据下面编号的资料回答顾客的问题，不要编造资料里没有的内容。"
    "在用到的资料后面用方括号标出编号，例如[1][2]。如果资料里没有答案，只回答：" + IDK["zh"] + "。回答简洁。",
    "en": "You are a shop's customer-service assistant. Answer the customer's question only from the numbered "
    "passages below; never add anything they do not say. Cite the passages you use by number, like [1][2]. If "
    "the passages do not answer it, reply only: " + IDK["en"] + ". Be brief.",
}
HEADINGS: dict[Lang, tuple[str, str]] = {"zh": ("资料：", "问题："), "en": ("Passages:", "Question:")}
CJK = re.compile(r"[\u3400-\u9fff]")
CITE = re.compile(r"\[(\d{1,2})\]")
# Short questions, or ones that point back ("它", "this one"), are searched together with the previous question.
FOLLOW_UP_CHARS = 12
REFERS_BACK = re.compile(r"它|这个|那个|这款|那款|该款|此款|\b(it|its|this|that|these|those|they|them)\b", re.I)
CHECK: dict[Lang, str] = {
    "zh": "你是网店客服的审核员。判断下面的资料是否直接回答了顾客的问题。资料没有明确说到问题所问的内容时，回答“否”。"
    "只回答“是”或“否”。",
    "en": "You check a shop's customer-service answers. Say whether the passages below directly answer the customer's "
    "question. If they do not clearly state what is asked, say no. Reply only yes or no.",
}
CHECK_ASK: dict[Lang, tuple[str, str, str]] = {
    "zh": ("资料：", "顾客的问题：", "资料是否直接回答了这个问题？"),
    "en": ("Passages:", "Customer's question:", "Do the passages directly answer this question?"),
}
CHECK_PASSAGES = 2  # the passages with the best sentence support: the prompt stays short (prefill is the cost)
CHECK_TOKENS = 2
SAYS_NO = re.compile(r"^\W*(否|不|没有|no\b)", re.I)
UNKNOWN = re.compile(r"不知道|请咨询人工客服|无法回答|\bdon'?t know\b|\bdo not know\b|customer service staff", re.I)


def language(text: str) -> Lang:
    return "zh" if CJK.search(text) else "en"


def is_follow_up(question: str) -> bool:
    return len(question) <= FOLLOW_UP_CHARS or REFERS_BACK.search(question) is not None


def says_unknown(answer: str) -> bool:
    return UNKNOWN.search(answer) is not None


def cited(answer: str, count: int) -> list[int]:
    """The passage numbers the answer cites (1-based, first mention order, only those it was given)."""
    return list(dict.fromkeys(n for n in (int(m) for m in CITE.findall(answer)) if 1 <= n <= count))


def build_messages(
    question: str, passages: list[Passage], history: list[tuple[str, str]], lang: Lang
) -> list[ChatMessage]:
    """System rules, the earlier turns as they were said, then the numbered passages and the question."""
    messages = [ChatMessage("system", SYSTEM[lang])]
    for q, a in history:
        messages += [ChatMessage("user", q), ChatMessage("assistant", a)]
    head, ask = HEADINGS[lang]
    numbered = "\n\n".join(
        f"[{i}] {p.document}" + (f" · {p.where}" if p.where else "") + f"\n{p.text}" for i, p in enumerate(passages, 1)
    )
    messages.append(ChatMessage("user", f"{head}\n{numbered}\n\n{ask}{question}"))
    return messages


def check_messages(question: str, passages: list[str], lang: Lang) -> list[ChatMessage]:
    """The yes/no confirmation: do these passages answer the question?"""
    head, ask, whether = CHECK_ASK[lang]
    listed = "\n".join(f"- {p}" for p in passages)
    return [ChatMessage("system", CHECK[lang]), ChatMessage("user", f"{head}\n{listed}\n\n{ask}{question}\n{whether}")]


def confirm(chat: Any, question: str, passages: list[str], lang: Lang) -> bool:
    """The LLM's yes/no: whether `passages` answer `question` (greedy, CHECK_TOKENS tokens)."""
    options = GenerateOptions(max_tokens=CHECK_TOKENS, temperature=0.0, repetition_penalty=1.0)
    return not says_no(complete(chat, check_messages(question, passages, lang), options).text)


def says_no(reply: str) -> bool:
    """Only a clear "否"/"no" vetoes: a reply that is neither (a model that does not follow) lets the answer go on,
    whose own prompt still tells it to say 不知道."""
    return SAYS_NO.search(reply) is not None


@dataclass
class Answer:
    conversation_id: str
    question: str
    answer: str
    answered: bool  # False: the knowledge base (or the model) did not know
    language: Lang
    citations: list[dict[str, Any]]
    llm: str | None  # None: no model ran
    finish_reason: str | None
    timings: dict[str, float] = field(default_factory=dict)
    message_id: int | None = None
    history_turns: int = 0  # earlier question/answer pairs the LLM was given
    # What the search found, numbered as the LLM saw them (when `llm` is set; else the nearest, which do not answer)
    passages: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Asked:
    """A question that passed the checks, with what the search found."""

    owner_id: str
    kb_id: str
    conversation_id: str | None
    question: str
    language: Lang
    history: list[tuple[str, str]]
    passages: list[Passage]
    verdict: Verdict  # "check": the LLM confirms first (CHECK) with `best`
    best: list[Passage]  # the passages with the best sentence support
    llm: str | None
    timings: dict[str, float]
    started: float

    @property
    def found(self) -> bool:
        """The passages may answer it (zhike.kb.verdict not "no"): else no LLM runs."""
        return self.verdict != "no"


class KbQuestion(BaseModel):
    """The question as the prompt-safety screen reads it (audited and refused like a job's prompt)."""

    question: str

    def screened_texts(self) -> list[tuple[str, str]]:
        return [("question", self.question)]


def check_question(question: Any) -> str:
    text = str(question or "").strip()
    if not text or len(text) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"question: 1-{MAX_QUESTION_CHARS} characters",
            code="validation_failed",
            field="question",
            kind="string_too_long" if text else "string_too_short",
            limit=MAX_QUESTION_CHARS,
            ctx={"max_length": MAX_QUESTION_CHARS} if text else {"min_length": 1},
        )
    return text


class KbAnswers:
    """`stream` yields the answer's text as it is written, then the whole Answer; `ask` returns the Answer."""

    def __init__(self, kbs: KnowledgeBases, models: Any, safety: PromptSafety) -> None:
        self.kbs, self.models, self.safety = kbs, models, safety
        self.settings = kbs.settings

    def ask(self, owner_id: str, kb_id: str, question: Any, **kw: Any) -> Answer:
        out = None
        for piece in self.stream(owner_id, kb_id, question, **kw):
            if isinstance(piece, Answer):
                out = piece
        assert out is not None
        return out

    def stream(
        self,
        owner_id: str,
        kb_id: str,
        question: Any,
        *,
        conversation_id: str | None = None,
        llm: str | None = None,
        max_tokens: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[str | Answer]:
        asked = self.prepare(owner_id, kb_id, question, conversation_id=conversation_id, llm=llm)
        return self.answer(asked, max_tokens=max_tokens, should_stop=should_stop)

    def prepare(
        self, owner_id: str, kb_id: str, question: Any, *, conversation_id: str | None = None, llm: str | None = None
    ) -> Asked:
        """Everything that can refuse the question (4xx before an answer starts streaming), and the search."""
        start = time.perf_counter()
        text = check_question(question)
        if llm is not None:
            check_llm(self.models.catalog, self.settings, llm, field="llm")
        self._screen_question(owner_id, text)
        kb = self.kbs.get(owner_id, kb_id)
        if kb.chunks == 0 and kb.documents:
            raise Conflict(
                "no document of this knowledge base is ready yet: they are still being indexed, or failed (see the"
                " documents' status)",
                code="kb_not_ready",
                field="kb_id",
            )
        if kb.chunks == 0:
            raise InvalidInput(
                "this knowledge base has no documents yet: upload some first", code="kb_empty", field="kb_id"
            )
        history: list[tuple[str, str]] = []
        if conversation_id:
            self.kbs.conversation_row(owner_id, kb_id, conversation_id)
            history = self._history(conversation_id)

        t0 = time.perf_counter()
        query = f"{history[-1][0]}\n{text}" if history and is_follow_up(text) else text
        index = self.kbs.index(kb)
        with self.kbs.embedder() as embedder:
            # `embed`: the top passages are also read sentence by sentence, what answerable() judges by.
            qvec = embedder.query(query)
            hits = index.retriever.search(query, qvec, self.settings.kb_top_k, embed=embedder.passages)
        passages = [index.passages[h.chunk_id] for h in hits]  # type: ignore[index]
        best = [index.passages[h.chunk_id] for h in by_support(hits, CHECK_PASSAGES)]  # type: ignore[index]
        timings = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 1)}
        said = verdict(hits, check=self.settings.kb_llm_check)
        return Asked(
            owner_id,
            kb_id,
            conversation_id,
            text,
            language(text),
            history,
            passages,
            said,
            best,
            llm,
            timings,
            start,
        )

    def answer(
        self, asked: Asked, *, max_tokens: int | None = None, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[str | Answer]:
        """The answer's text as it is written, then the whole Answer (stored in the conversation)."""
        found, checked_by = asked.found, None
        if found and asked.verdict == "check":
            found, checked_by = self._confirm(asked)
        if not found:
            lang = asked.language
            answer = Answer("", asked.question, IDK[lang], False, lang, [], checked_by, None, dict(asked.timings))
            answer.passages = [p.view(n, cited=False) for n, p in enumerate(asked.passages, 1)]  # the nearest
            yield answer.answer
        else:
            answer = yield from self._generate(asked, max_tokens, should_stop)
            answer.timings = asked.timings | answer.timings
        answer.timings["total_ms"] = round((time.perf_counter() - asked.started) * 1000, 1)
        self._remember(asked.owner_id, asked.kb_id, asked.conversation_id, answer)
        yield answer

    def _confirm(self, asked: Asked) -> tuple[bool, str]:
        """Whether the LLM says the best passages answer the question (timed as check_ms), and its name."""
        t0 = time.perf_counter()
        with open_chat(self.models, self.settings, asked.llm) as chat:
            yes, name = confirm(chat, asked.question, [p.text for p in asked.best], asked.language), chat.name
        asked.timings["check_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return yes, name

    def _generate(
        self, asked: Asked, max_tokens: int | None, should_stop: Callable[[], bool] | None
    ) -> Generator[str, None, Answer]:
        question, passages, history, lang = asked.question, asked.passages, asked.history, asked.language
        owner_id, llm = asked.owner_id, asked.llm
        keep = history[-self.settings.kb_history_turns :] if self.settings.kb_history_turns else []
        messages = build_messages(question, passages, keep, lang)
        options = GenerateOptions(
            max_tokens=max_tokens or self.settings.kb_answer_tokens, temperature=0.0, repetition_penalty=1.0
        )
        parts: list[str] = []
        finish: str | None = None
        t0 = time.perf_counter()
        first: float | None = None
        with open_chat(self.models, self.settings, llm) as chat:
            loaded = time.perf_counter()  # generation is timed from here: a first load is not generation
            name = chat.name
            for chunk in chat.stream(messages, options, should_stop=should_stop):
                if chunk.text:
                    parts.append(chunk.text)
                    # Screened before each piece leaves: a listed term is never sent whole.
                    self.safety.screen_output(owner_id, OP, "answer", "".join(parts))
                    if first is None:
                        first = time.perf_counter() - loaded
                    yield chunk.text
                if chunk.finish_reason is not None:
                    finish = chunk.finish_reason
        text = "".join(parts).strip()
        answer = self._answer(question, text, passages, lang, name, finish)
        answer.history_turns = len(keep)
        numbers = {c["n"] for c in answer.citations if c["cited"]}
        answer.passages = [p.view(n, cited=n in numbers) for n, p in enumerate(passages, 1)]
        answer.timings = {
            "llm_load_ms": round((loaded - t0) * 1000, 1),
            "generation_ms": round((time.perf_counter() - loaded) * 1000, 1),
        }
        if first is not None:
            answer.timings["first_token_ms"] = round(first * 1000, 1)
        return answer

    @staticmethod
    def _answer(question: str, text: str, passages: list[Passage], lang: Lang, name: str, finish: str | None) -> Answer:
        if not text or says_unknown(text):
            # The model found no answer in the passages: say so, cite nothing.
            return Answer("", question, text or IDK[lang], False, lang, [], name, finish)
        numbers = cited(text, len(passages))
        # Every answer shows where it came from: the passages it cites, or (citing none) those it was given.
        shown = numbers or list(range(1, len(passages) + 1))
        citations = [passages[n - 1].view(n, cited=bool(numbers)) for n in shown]
        return Answer("", question, text, True, lang, citations, name, finish)

    def _screen_question(self, owner_id: str, text: str) -> None:
        try:
            self.safety.screen(OP, KbQuestion(question=text), owner_id)
        except ContentRefused as e:
            e.field = "question"  # the request's field, not a job's params.question
            raise

    def _history(self, conversation_id: str) -> list[tuple[str, str]]:
        """(question, answer) pairs, oldest first."""
        q = (
            select(kb_messages.c.role, kb_messages.c.content)
            .where(kb_messages.c.conversation_id == conversation_id)
            .order_by(kb_messages.c.id)
        )
        with self.kbs.engine.connect() as conn:
            rows = conn.execute(q).all()
        pairs, pending = [], None
        for role, content in rows:
            if role == "user":
                pending = content
            elif pending is not None:
                pairs.append((pending, content))
                pending = None
        return pairs

    def _remember(self, owner_id: str, kb_id: str, conversation_id: str | None, answer: Answer) -> None:
        now = utcnow()
        with self.kbs.engine.begin() as conn:
            if conversation_id is None:
                conversation_id = f"c{secrets.token_hex(8)}"
                conn.execute(
                    insert(kb_conversations).values(
                        id=conversation_id, kb_id=kb_id, owner_id=owner_id, created_at=now, updated_at=now
                    )
                )
            else:
                conn.execute(
                    update(kb_conversations).where(kb_conversations.c.id == conversation_id).values(updated_at=now)
                )
            conn.execute(
                insert(kb_messages).values(
                    conversation_id=conversation_id, role="user", content=answer.question, created_at=now
                )
            )
            answer.message_id = conn.execute(
                insert(kb_messages).values(
                    conversation_id=conversation_id,
                    role="assistant",
                    content=answer.answer,
                    citations=answer.citations,
                    timings=answer.timings,
                    created_at=now,
                )
            ).inserted_primary_key[0]
        answer.conversation_id = conversation_id

    def messages(self, owner_id: str, kb_id: str, conversation_id: str) -> list[dict[str, Any]]:
        """A conversation's turns, oldest first (the studio shows them; bots may read them back)."""
        self.kbs.get(owner_id, kb_id)
        self.kbs.conversation_row(owner_id, kb_id, conversation_id)
        q = select(kb_messages).where(kb_messages.c.conversation_id == conversation_id).order_by(kb_messages.c.id)
        with self.kbs.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                "id": r["id"],
                "role": r["role"],
                "content": r["content"],
                "citations": r["citations"] or [],
                "timings": r["timings"] or {},
                "created_at": r["created_at"].isoformat() + "Z",
            }
            for r in rows
        ]
