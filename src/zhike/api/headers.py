"""Headers every answer carries, so a browser neither guesses types, nor lets other sites frame the studio, nor
sends our URLs (signed links carry their signature in the query) to other sites as the Referer."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The studio (web/index.html) loads one module script and its stylesheets from /static; views set a few inline
# `style` attributes (progress bars, size swatches); previews are blob: URLs; fetch and EventSource stay here.
STUDIO_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Everything else (JSON, images, archives) is no page: nothing in it may run or load anything.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc pages load Swagger/ReDoc from a CDN with inline scripts: only framing is refused.
DOCS_CSP = "frame-ancestors 'none'"

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


class SecurityHeaders:
    """Adds the headers above to every HTTP answer that does not set its own."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str | None] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(p for p in docs_paths if p)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path") in self.docs_paths

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else STUDIO_CSP if html else OTHER_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
