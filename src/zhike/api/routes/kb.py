"""/api/v1/kb: product knowledge bases (商品知识库): upload documents, then ask questions that are answered from
them with citations, or "不知道，请咨询人工客服" when they hold no answer. API keys work: customer-service bots call
`POST /api/v1/kb/{id}/ask`, streaming (SSE) or not."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Body, Request, Response, UploadFile
from pydantic import Field

from zhike.api.deps import AppDep, OwnerDep
from zhike.api.errors import error_body
from zhike.api.routes.assets import read_upload
from zhike.api.routes.jobs import _Followed
from zhike.api.schemas.common import Deleted, ErrorInfo, Out
from zhike.core.errors import ErrorCode, ZhikeError, storage_full
from zhike.services.file_names import content_disposition
from zhike.services.kb_ask import MAX_QUESTION_CHARS, Answer

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])
log = logging.getLogger("zhike.api")


class KbOut(Out):
    id: str
    name: str
    documents: int
    chunks: int
    created_at: str
    updated_at: str


class KbList(Out):
    kbs: list[KbOut]


class IndexProgress(Out):
    done: int = Field(description="Passages embedded so far")
    total: int = Field(description="Passages the document is cut into")


class DocumentOut(Out):
    id: str
    kb_id: str
    name: str = Field(description="The file name: uploading a file of the same name replaces this document")
    title: str | None
    kind: str = Field(description="txt, markdown, pdf, docx, xlsx or csv")
    mime: str
    sha256: str
    size_bytes: int
    pages: int
    chunks: int = Field(description="Passages questions search now (those of the indexed version)")
    ingest_seconds: float | None
    pages_per_second: float | None
    status: Literal["queued", "indexing", "ready", "failed"] = Field(
        description="queued -> indexing -> ready (its passages answer questions), or failed (`error` says why)"
    )
    progress: IndexProgress
    error: ErrorInfo | None = Field(description="Why indexing failed (status failed)")
    replacing: bool = Field(
        description="A newer upload of this file is being indexed: the version indexed before answers until it is "
        "ready, and keeps answering if it fails"
    )
    created_at: str
    updated_at: str


class DocumentList(Out):
    documents: list[DocumentOut]


class PassageOut(Out):
    ordinal: int
    where: str
    text: str


class DocumentDetail(DocumentOut):
    passages: list[PassageOut]


class Uploaded(Out):
    document: DocumentOut
    replaced: bool = Field(description="A document of this name was there: its passages are replaced once indexed")
    unchanged: bool = Field(description="The same file was there already (or on its way): nothing was read again")


class Citation(Out):
    n: int = Field(description="The passage's number as the answer cites it: [n]")
    document_id: str
    document: str = Field(description="The document's file name")
    where: str = Field(description="Where in the document: a page, a heading, a sheet row")
    text: str
    cited: bool = Field(description="The answer cites it by number (false: it cites none; these are its sources)")


class AnswerOut(Out):
    conversation_id: str = Field(description="Send it with the next question to continue the conversation")
    message_id: int | None
    question: str
    answer: str
    answered: bool = Field(description="False: the knowledge base holds no answer (不知道，请咨询人工客服)")
    language: str = Field(description="zh or en: the question's language, which the answer is in")
    citations: list[Citation]
    llm: str | None = Field(description="The model that wrote the answer; null: none ran (no answer was found)")
    finish_reason: str | None
    history_turns: int = Field(description="Earlier question/answer pairs the model was given")
    passages: list[Citation] = Field(
        description="The passages the search found, numbered as the model saw them; when no model ran (`llm` "
        "null), the nearest ones, which do not answer the question"
    )
    timings: dict[str, float] = Field(
        description="retrieval_ms, llm_load_ms, generation_ms, first_token_ms, total_ms (those that happened)"
    )


class AskIn(Out):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    conversation_id: str | None = Field(None, max_length=32, description="Continue this conversation")
    stream: bool = Field(False, description="Answer as server-sent events: `token`... then `done` (or `error`)")
    llm: str | None = Field(None, max_length=200, description="A language model by name; default: the deployment's")
    max_tokens: int | None = Field(None, ge=1, le=4096, description="Longest answer; default kb_answer_tokens")


class MessageOut(Out):
    id: int
    role: str
    content: str
    citations: list[Citation]
    timings: dict[str, float]
    created_at: str


class Conversation(Out):
    id: str
    messages: list[MessageOut]


# -- knowledge bases -----------------------------------------------------------------------------------------------
@router.get("", summary="Your knowledge bases")
def list_kbs(app: AppDep, owner: OwnerDep) -> KbList:
    return KbList(kbs=[KbOut(**kb.view()) for kb in app.kb.list(owner)])


@router.post("", status_code=201, summary="Create a knowledge base")
def create_kb(app: AppDep, owner: OwnerDep, name: Annotated[str, Body(embed=True, max_length=200)]) -> KbOut:
    """1-100 characters; the same name twice is a 409 `kb_name_taken`."""
    return KbOut(**app.kb.create(owner, name).view())


@router.get("/{kb_id}", summary="A knowledge base with its counts")
def get_kb(kb_id: str, app: AppDep, owner: OwnerDep) -> KbOut:
    return KbOut(**app.kb.get(owner, kb_id).view())


@router.patch("/{kb_id}", summary="Rename a knowledge base")
def rename_kb(
    kb_id: str, app: AppDep, owner: OwnerDep, name: Annotated[str, Body(embed=True, max_length=200)]
) -> KbOut:
    return KbOut(**app.kb.rename(owner, kb_id, name).view())


@router.delete("/{kb_id}", summary="Delete a knowledge base with its documents and conversations")
def delete_kb(kb_id: str, app: AppDep, owner: OwnerDep) -> Deleted:
    app.kb.delete(owner, kb_id)
    return Deleted(deleted=kb_id)


# -- documents -----------------------------------------------------------------------------------------------------
@router.get("/{kb_id}/documents", summary="The knowledge base's documents")
def list_documents(kb_id: str, app: AppDep, owner: OwnerDep) -> DocumentList:
    return DocumentList(documents=[DocumentOut(**d.view()) for d in app.kb.documents(owner, kb_id)])


@router.post("/{kb_id}/documents", status_code=201, summary="Upload a document (multipart field `file`)")
async def upload_document(kb_id: str, app: AppDep, owner: OwnerDep, file: UploadFile | None = None) -> Uploaded:
    """TXT, Markdown, PDF, DOCX, XLSX or CSV (FAQ sheets, product rows). It is read and cut into passages before
    this answers, so a bad file is refused here: 4xx naming field `file` (document_empty, document_encrypted,
    document_not_text, document_bomb, document_too_large...). The document is then indexed in the background:
    201 with `document.status` `queued`; follow it in the document list (`status`, `progress` done/total, `error`)
    until `ready`: questions search ready documents only. A file named like a document already there replaces
    that document's passages once its own are ready; if its indexing fails, the old ones keep answering."""
    await anyio.to_thread.run_sync(app.kb.get, owner, kb_id)  # 404 before reading the upload
    data = await read_upload(app, file, limit=int(app.settings.kb_max_document_mb * 1e6), what="document")
    assert file is not None
    with app.kb.ingests.hold(owner):  # reading the file (the embedding is the indexer's, one document at a time)
        done = await anyio.to_thread.run_sync(lambda: app.kb.upload_document(owner, kb_id, file.filename, data))
    return Uploaded(document=DocumentOut(**done.document.view()), replaced=done.replaced, unchanged=done.unchanged)


@router.get("/{kb_id}/documents/{doc_id}", summary="A document with its passages")
def get_document(kb_id: str, doc_id: str, app: AppDep, owner: OwnerDep) -> DocumentDetail:
    doc = app.kb.document(owner, kb_id, doc_id)
    passages = [PassageOut(**p) for p in app.kb.chunks(owner, kb_id, doc_id)]
    return DocumentDetail(**doc.view(), passages=passages)


@router.get(
    "/{kb_id}/documents/{doc_id}/file",
    summary="The document's original file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file as uploaded"}},
)
def document_file(kb_id: str, doc_id: str, app: AppDep, owner: OwnerDep) -> Response:
    doc, data = app.kb.document_file(owner, kb_id, doc_id)
    headers = {"Content-Disposition": content_disposition("attachment", doc.name), "Cache-Control": "private, no-store"}
    return Response(data, media_type=doc.mime, headers=headers)


@router.delete(
    "/{kb_id}/documents/{doc_id}", summary="Delete a document and its passages (while indexed too: that stops)"
)
def delete_document(kb_id: str, doc_id: str, app: AppDep, owner: OwnerDep) -> Deleted:
    app.kb.delete_document(owner, kb_id, doc_id)
    return Deleted(deleted=doc_id)


# -- asking --------------------------------------------------------------------------------------------------------
def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _error_event(e: BaseException) -> str:
    if isinstance(e, ZhikeError):
        err = e
    else:
        full = storage_full(e)
        if full is None:
            log.error("knowledge-base answer failed", exc_info=e)
            return _sse("error", error_body(ErrorCode.INTERNAL_ERROR, f"internal error: {type(e).__name__}"))
        err = full
    body = error_body(err.code, err.message, err.field, type=err.type, limit=err.limit, ctx=err.ctx)
    return _sse("error", body)


_END = object()


@router.post(
    "/{kb_id}/ask",
    summary="Ask a question: answered from the knowledge base with citations",
    response_model=AnswerOut,
    responses={
        200: {
            "content": {"application/json": {}, "text/event-stream": {}},
            "description": "JSON; with `stream: true`, events `token` ({text}) then `done` (the same JSON) or "
            "`error` ({error})",
        }
    },
)
async def ask(kb_id: str, body: AskIn, request: Request, app: AppDep, owner: OwnerDep) -> Any:
    """When the knowledge base holds no passage that answers the question, the answer is "不知道，请咨询人工客服"
    ("I don't know — please ask our customer service staff" for English questions) and no model runs. Otherwise the
    model answers only from the passages it is given and cites them ([1][2]); `citations` lists them. Send the
    returned `conversation_id` with follow-up questions ("那它多少钱？"). Refusals (content policy, bad input) come
    as 4xx before any event."""
    answers = app.kb_answers
    app.kb.asks.acquire(owner)  # 429 kb_busy past the owner's share; given back however the answer ends
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            app.kb.asks.release(owner)

    try:
        asked = await anyio.to_thread.run_sync(
            lambda: answers.prepare(owner, kb_id, body.question, conversation_id=body.conversation_id, llm=body.llm)
        )
        if not body.stream:
            answer = None
            for piece in await anyio.to_thread.run_sync(
                lambda: list(answers.answer(asked, max_tokens=body.max_tokens))
            ):
                if isinstance(piece, Answer):
                    answer = piece
            assert answer is not None
            release()
            return AnswerOut(**answer.view())
    except BaseException:
        release()
        raise

    stop = threading.Event()
    pieces = answers.answer(asked, max_tokens=body.max_tokens, should_stop=stop.is_set)

    def next_piece(it: Iterator[str | Answer]) -> Any:
        return next(it, _END)

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                piece = await anyio.to_thread.run_sync(next_piece, pieces)
                if piece is _END:
                    return
                if isinstance(piece, Answer):
                    yield _sse("done", AnswerOut(**piece.view()).model_dump(mode="json"))
                else:
                    yield _sse("token", {"text": piece})
        except Exception as e:  # noqa: BLE001 - after the first event, errors can only be events
            yield _error_event(e)
        finally:
            stop.set()  # the client went away: the model stops at its next token
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pieces.close)

    return _Followed(
        events(),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/{kb_id}/conversations/{conversation_id}", summary="A conversation's questions and answers")
def get_conversation(kb_id: str, conversation_id: str, app: AppDep, owner: OwnerDep) -> Conversation:
    messages = app.kb_answers.messages(owner, kb_id, conversation_id)
    return Conversation(id=conversation_id, messages=[MessageOut(**m) for m in messages])
