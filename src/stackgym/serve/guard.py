"""Bearer-token auth and request-size limits, as plain ASGI middleware.

It runs before routing, so an unauthenticated or oversized request never
reaches an environment. ``/health`` stays open so that liveness probes work
without the token.
"""

from __future__ import annotations

import hmac
from typing import Any

from stackgym.serve.wire import dumps

Scope = dict[str, Any]
Message = dict[str, Any]

#: Paths answered without a token.
PUBLIC_PATHS = frozenset({"/health"})


def _error_body(code: str, message: str, hint: str) -> bytes:
    return dumps({"detail": message, "code": code, "hint": hint})


class Guard:
    """ASGI middleware: 401 without the right bearer token, 413 for oversized bodies."""

    def __init__(self, app: Any, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None or scope.get("path") in PUBLIC_PATHS:
            return True
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    credential.strip(), self.token
                )
        return False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            if not self._authorized(scope):
                await self._respond(send, 401, "UNAUTHORIZED", *_UNAUTHORIZED)
                return
            await self._http(scope, receive, send)
        elif kind == "websocket":
            if not self._authorized(scope):
                await self._deny_websocket(scope, receive, send)
                return
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        limit = self.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(send, int(value))
                return
        # Read the (bounded) body here, then replay it: a body without a
        # Content-Length (chunked) is held to the same limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _too_large(self, send: Any, size: int) -> None:
        await self._respond(
            send,
            413,
            "PAYLOAD_TOO_LARGE",
            f"request body is at least {size:,} bytes; the limit is {self.max_body_bytes:,}",
            "send a smaller action, or start the server with a higher --max-body-bytes",
        )

    @staticmethod
    async def _respond(send: Any, status: int, code: str, message: str, hint: str) -> None:
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": _error_body(code, message, hint)})

    async def _deny_websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send(
                {
                    "type": "websocket.http.response.body",
                    "body": _error_body("UNAUTHORIZED", *_UNAUTHORIZED),
                }
            )
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})


_UNAUTHORIZED = (
    "missing or wrong bearer token",
    "send the header 'Authorization: Bearer TOKEN' with the server's --token "
    "(or $STACKGYM_SERVE_TOKEN)",
)


def _replay(messages: list[Message], receive: Any) -> Any:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
