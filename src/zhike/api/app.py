"""The FastAPI application: API routes, error handlers, the embedded worker and the browser studio."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhike import __version__
from zhike.api.errors import RequestTooLarge, error_body, install_error_handlers
from zhike.api.headers import SecurityHeaders
from zhike.api.routes import assets, auth, jobs, meta, models, openai_chat, openai_compat, safety, sdapi, templates
from zhike.api.routes import brand as brand_routes
from zhike.api.routes import fonts as font_routes
from zhike.api.routes import kb as kb_routes
from zhike.api.routes import stock as stock_routes
from zhike.api.routes import verify as verify_routes
from zhike.api.schemas import ERROR_RESPONSES
from zhike.core.errors import ErrorCode
from zhike.services.container import Zhike
from zhike.settings import Settings, get_settings

log = logging.getLogger("zhike.api")
WORKER_STOP_SECONDS = 1.5  # at shutdown, the workers' time to settle their jobs before they are handed back as they are


class BodyLimit:
    """Refuse bodies over the limit with 413 JSON: from Content-Length before reading them, and while receiving
    bodies sent without one (chunked), so no request body larger than the limit is ever held in memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        # An upload's only large part is its file, so name that field for multipart requests.
        field = "file" if headers.get(b"content-type", b"").startswith(b"multipart/form-data") else "body"
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(field, scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge(self.max_bytes, field)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLarge:
            if started:
                raise
            await self._refuse(field, scope, receive, send)

    async def _refuse(self, field: str, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body(
            ErrorCode.REQUEST_TOO_LARGE,
            f"request body over {self.max_bytes / 1e6:.0f} MB",
            field,
            type=ErrorCode.TOO_LARGE,
            limit=self.max_bytes,
        )
        await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)


WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings | None = None, *, start_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    zhike = Zhike(settings)
    run_worker = settings.embedded_worker if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        zhike.engine  # noqa: B018 - create the database before the first request
        zhike.login_throttle  # noqa: B018 - one brake for all request threads
        from zhike.services.jobs.worker import start_background_workers, stop_workers

        workers = []
        if run_worker:
            from zhike.services.warmup import start_warmup

            workers = start_background_workers(zhike)  # one per lane by default (settings workers_gpu...)
            for w in workers:
                log.info("embedded worker %s started (lanes: %s)", w.worker_id, ", ".join(w.lanes))
            if any("gpu" in w.lanes for w in workers):  # warming up loads the default checkpoint
                start_warmup(zhike)
        # Knowledge-base documents left queued or half indexed by a restart are indexed again (services/kb_indexer).
        from zhike.services.kb_indexer import resume_indexing

        await anyio.to_thread.run_sync(resume_indexing, zhike)

        def stopping() -> None:
            """The server is stopping: end long polls and event streams now (a server waits for them to close
            before the shutdown below), and let the workers hand their running jobs back. `zhike serve` calls it at
            the signal, from a thread."""
            zhike.jobs.close()
            for w in workers:
                w.interrupt()
            if "kb" in zhike.__dict__:  # built (a cached property): its indexer hands its document back
                zhike.kb.indexer.stop()
            chat, app.state.chat_runner = getattr(app.state, "chat_runner", None), None  # api/routes/openai_chat.py
            if chat is not None:
                chat.close()

        app.state.stopping = stopping
        yield
        stopping()
        if workers:
            await anyio.to_thread.run_sync(stop_workers, workers, WORKER_STOP_SECONDS)
        if "kb" in zhike.__dict__:
            await anyio.to_thread.run_sync(zhike.kb.indexer.stop, WORKER_STOP_SECONDS)

    app = FastAPI(
        title="Zhike 智客 API",
        version=__version__,
        lifespan=lifespan,
        description="Self-hosted AIGC studio. Authenticate with `Authorization: Bearer KEY`, or log in "
        "(`POST /api/v1/auth/login`: session cookie, plus `X-CSRF-Token` on requests that change something).",
    )
    app.state.zhike = zhike
    install_error_handlers(app)
    routers = (auth, jobs, assets, meta, models, openai_compat, sdapi, safety, verify_routes, templates, font_routes)
    routers += (brand_routes, stock_routes)
    routers += (kb_routes,)
    routers += (openai_chat,)
    for r in routers:
        # Every route can answer with the shared error body; declaring it replaces FastAPI's default 422 schema.
        app.include_router(r.router, responses=ERROR_RESPONSES)

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        """The browser studio (hash routes; everything else it needs is under /static)."""
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    app.add_middleware(BodyLimit, max_bytes=int(settings.max_upload_mb * 1e6) + 1_000_000)
    # Outermost: its 413s get the headers too.
    app.add_middleware(SecurityHeaders, docs_paths=(app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url))
    return app
