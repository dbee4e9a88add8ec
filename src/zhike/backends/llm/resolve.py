"""Which ChatModel a job gets: the embedded/catalogue model by name, or the deployment's OpenAI-compatible server.

Names: None -> settings.llm_default; "remote" -> settings.llm_remote_model on settings.llm_remote_url;
"remote:<model id>" -> that model on the same server; anything else -> a catalogue model of kind "llm".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from zhike.backends.llm.base import ChatModel
from zhike.core.errors import InvalidInput

if TYPE_CHECKING:
    from zhike.core.specs import Catalog
    from zhike.settings import Settings

REMOTE = "remote"
FIELD = "llm"


def is_remote(name: str) -> bool:
    return name == REMOTE or name.startswith(REMOTE + ":")


@contextmanager
def open_chat(models: Any, settings: Settings, name: str | None) -> Iterator[ChatModel]:
    """Yield the chat model `name` names (loaded once and cached by `models` for catalogue models; a pooled HTTP
    client for the remote server, closed on exit). Unknown names: InvalidInput code model_not_found, field llm."""
    name = name or settings.llm_default
    if is_remote(name):
        from zhike.backends.llm.openai_http import OpenAIChat

        model = name.partition(":")[2] or settings.llm_remote_model
        if not settings.llm_remote_url:
            raise _remote_not_configured(FIELD)
        key = settings.llm_remote_key.get_secret_value() if settings.llm_remote_key else None
        with OpenAIChat(
            settings.llm_remote_url,
            model,
            key=key,
            timeout=settings.llm_timeout_seconds,
            retries=settings.llm_retries,
            name=name,
        ) as chat:
            yield chat
        return
    try:
        use = models.use_named(name, kind="llm", field=FIELD)
    except InvalidInput as e:
        if e.code != "model_not_installed":
            raise
        raise _not_found(models.catalog, settings, name, FIELD) from e
    with use as chat:
        yield chat


def check_llm(catalog: Catalog, settings: Settings, name: str | None, *, field: str = FIELD) -> str:
    """The LLM `name` means (None: the default), checked before a job or an answer starts: one of llm_choices or
    remote:<model id> on a configured server; else InvalidInput model_not_found / llm_remote_not_configured."""
    name = name or settings.llm_default
    if is_remote(name):
        if not settings.llm_remote_url:
            raise _remote_not_configured(field)
        return name
    if name not in llm_choices(catalog, settings):
        raise _not_found(catalog, settings, name, field)
    return name


def _not_found(catalog: Catalog, settings: Settings, name: str, field: str) -> InvalidInput:
    choices = ", ".join(llm_choices(catalog, settings)) or "none"
    return InvalidInput(
        f"unknown language model {name!r}; available: {choices}",
        code="model_not_found",
        field=field,
        ctx={"name": name},
    )


def _remote_not_configured(field: str) -> InvalidInput:
    return InvalidInput(
        "no remote LLM server is configured (set llm_remote_url)", code="llm_remote_not_configured", field=field
    )


def llm_choices(catalog: Catalog, settings: Settings) -> list[str]:
    """LLM names a user can pick (forms, /v1/models): catalogue models of kind llm, the default first, then
    "remote" when a remote server is configured."""
    names = [s.name for s in catalog.list() if s.kind == "llm"]
    if settings.llm_remote_url:
        names.append(REMOTE)
    names.sort(key=lambda n: n != settings.llm_default)  # stable: the rest keep their order
    return names
