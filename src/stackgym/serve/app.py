"""The server app: OpenEnv's HTTP and WebSocket endpoints, with stateful HTTP.

Every env is served under ``/envs/{env_id}/`` (``ws``, ``reset``, ``step``,
``state``, ``tools``, ``close``, ``schema``, ``metadata``); a server of one
env also answers at the root, so OpenEnv's client works with the plain base
URL. ``POST /reset`` opens a session and returns its ``session_id``; later
calls carry it (body field ``session_id``, header ``X-Session-Id`` or query
parameter), so a whole episode can be played over plain HTTP.

FastAPI declares and documents the endpoints (``/docs``, ``/openapi.json``);
the calls an episode makes go through a thin front door to the same handlers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stackgym.serve.config import ServeConfig
from stackgym.serve.envserver import EnvServer
from stackgym.serve.guard import Guard
from stackgym.serve.sessions import ServeError, Session, validation_error
from stackgym.serve.wire import dumps, frame, loads
from stackgym.version import __version__

log = logging.getLogger("stackgym.serve")

SESSION_HEADER = "X-Session-Id"
#: Keys a WebSocket frame may have.
FRAME_KEYS = frozenset({"type", "data"})
#: Frames over this multiple of ``max_frame_bytes`` close the connection (code 1009).
HARD_FRAME_FACTOR = 4


class ResetBody(BaseModel):
    """Body of POST /reset (all optional; an empty body is fine)."""

    model_config = ConfigDict(extra="allow")

    session_id: str | None = Field(None, description="reset this session instead of opening one")
    seed: int | None = Field(None, ge=0, description="same seed -> same episode")
    episode_id: str | None = Field(None, max_length=255)
    options: dict[str, Any] | None = Field(None, description="episode options of env.reset")


class StepBody(BaseModel):
    """Body of POST /step."""

    session_id: str | None = Field(None, description="or the X-Session-Id header")
    action: dict[str, Any] | str = Field(description="the action: {'type': tool, ...args}")


class SessionBody(BaseModel):
    """Body of POST /close."""

    session_id: str | None = Field(None, description="or the X-Session-Id header")


class ObservationPayload(BaseModel):
    """What reset and step answer (OpenEnv's shape plus Gymnasium's extras)."""

    session_id: str | None = None
    observation: dict[str, Any]
    reward: float | None = None
    done: bool = False
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = Field(default_factory=dict)


def _body_doc(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _json(payload: Any, status: int = 200, session_id: str | None = None) -> Response:
    headers = {SESSION_HEADER: session_id} if session_id else None
    return Response(dumps(payload), status, headers=headers, media_type="application/json")


def _error_response(exc: ServeError) -> Response:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if exc.hint:
        body["hint"] = exc.hint
    return _json(body, exc.status)


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = loads(raw)
    if not isinstance(data, dict):
        raise validation_error(
            f"request body must be a JSON object, got {type(data).__name__}", '{"seed": 0}'
        )
    return data


def _session_id(request: Request, body: dict[str, Any] | None = None) -> str | None:
    value = (body or {}).get("session_id")
    if value is not None and not isinstance(value, str):
        raise validation_error("session_id must be a string")
    return value or request.headers.get(SESSION_HEADER) or request.query_params.get("session_id")


def create_app(config: ServeConfig) -> ServeApp:
    """The ASGI app serving ``config.envs``; run it with uvicorn."""
    server = EnvServer(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="stackgym environment server",
        version=__version__,
        description=__doc__,
        lifespan=lifespan,
    )

    @app.exception_handler(ServeError)
    async def _serve_error(_: Request, exc: ServeError) -> Response:
        return _error_response(exc)

    def env_of(request: Any) -> str:
        env_id = request.path_params.get("env_id") or server.default_env
        if env_id is None:
            raise ServeError(
                "VALIDATION_ERROR",
                "this server serves several envs; name one in the path",
                404,
                f"use /envs/ENV_ID/..., ENV_ID one of: {', '.join(server.served)}",
            )
        return server.check_env_id(env_id)

    def both(path: str) -> list[str]:
        return [f"/envs/{{env_id}}{path}", path]

    async def reset(request: Request) -> Response:
        """Start an episode; opens a session unless the body names one."""
        env_id = env_of(request)
        body = await _read_body(request)
        session_id = _session_id(request, body)
        body.pop("session_id", None)
        if session_id:
            session = server.store.get(session_id, env_id)
            payload = await server.reset(session, body)
        else:
            session = server.open_session(env_id, "http")
            try:
                payload = await server.reset(session, body)
            except ServeError:
                server.close_session(session.id)
                raise
        return _json({"session_id": session.id, **payload}, session_id=session.id)

    async def step(request: Request) -> Response:
        """Apply one action in the session's episode."""
        env_id = env_of(request)
        body = await _read_body(request)
        session = server.store.get(_session_id(request, body), env_id)
        if "action" not in body:
            raise validation_error(
                "step body needs an 'action'", '{"session_id": ..., "action": {"type": ...}}'
            )
        payload = await server.step(session, body["action"])
        return _json({"session_id": session.id, **payload}, session_id=session.id)

    async def state(request: Request) -> Response:
        """The session's episode state."""
        session = server.store.get(_session_id(request), env_of(request))
        return _json(await server.state(session), session_id=session.id)

    async def tools(request: Request) -> Response:
        """The env's actions as OpenAI tool specs."""
        env_id = env_of(request)
        session_id = _session_id(request)
        session = server.store.get(session_id, env_id) if session_id else None
        return _json({"tools": await server.tools(env_id, session)})

    async def close(request: Request) -> Response:
        """Close a session and release its env."""
        env_id = env_of(request)
        body = await _read_body(request)
        session = server.store.get(_session_id(request, body), env_id)
        server.close_session(session.id)
        return _json({"session_id": session.id, "closed": True})

    async def schema(request: Request) -> Response:
        """JSON schemas of action, observation and state."""
        return _json(await server.schema(env_of(request)))

    async def metadata(request: Request) -> Response:
        """Name, description, version and options of the env."""
        return _json(await server.metadata(env_of(request)))

    routes: list[tuple[str, str, Handler, dict[str, Any]]] = [
        ("POST", "/reset", reset, _body_doc(ResetBody, required=False)),
        ("POST", "/step", step, _body_doc(StepBody)),
        ("GET", "/state", state, {}),
        ("GET", "/tools", tools, {}),
        ("POST", "/close", close, _body_doc(SessionBody, required=False)),
        ("GET", "/schema", schema, {}),
        ("GET", "/metadata", metadata, {}),
    ]
    answers = {
        "/reset": ObservationPayload,
        "/step": ObservationPayload,
    }
    for method, path, handler, extra in routes:
        for full in both(path):
            app.add_api_route(
                full,
                handler,
                methods=[method],
                summary=(handler.__doc__ or path.strip("/")).strip(),
                openapi_extra=extra or None,
                response_model=None,
                responses={200: {"model": answers[path]}} if path in answers else None,
                name=f"{path.strip('/')}{'_env' if full.startswith('/envs') else ''}",
            )

    @app.get("/health")
    async def health() -> Response:
        """Liveness, served envs and open sessions (needs no token)."""
        return _json(server.health())

    # /ws and /envs/{env_id}/ws are answered by the front door (OpenAPI has no
    # WebSocket routes to document).
    endpoint = _WebSocketEndpoint(server, lambda scope: env_of(_PathParams(scope)))
    front = _FrontDoor(app, {(m, p.strip("/")): h for m, p, h, _ in routes}, endpoint)
    return ServeApp(
        Guard(front, token=config.resolved_token(), max_body_bytes=config.max_body_bytes),
        app,
        server,
    )


Handler = Callable[[Request], Awaitable[Response]]


class ServeApp:
    """The server's ASGI app: auth and limits, the fast path, then FastAPI.

    ``api`` is the FastAPI app (OpenAPI schema, docs, /health, /schema and
    the same endpoints); ``server`` holds the envs and sessions.
    """

    def __init__(self, asgi: Any, api: FastAPI, server: EnvServer) -> None:
        self._asgi = asgi
        self.api = api
        self.server = server

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)


class _FrontDoor:
    """Answers the per-step endpoints before FastAPI's routing and dependency machinery.

    FastAPI still declares every endpoint (so the OpenAPI schema documents
    them and other paths work); this front door calls the same handlers for
    the calls an episode makes, which at thousands of calls a second per core
    is most of the difference between a fast and a slow server.
    """

    def __init__(self, api: FastAPI, handlers: dict[tuple[str, str], Handler], ws: Any) -> None:
        self.api = api
        self.handlers = handlers
        self.ws = ws

    @staticmethod
    def _split(path: str) -> tuple[str | None, str]:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "envs":
            return parts[1], parts[2]
        if len(parts) == 1:
            return None, parts[0]
        return None, ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            env_id, name = self._split(scope["path"])
            handler = self.handlers.get((scope["method"], name))
            if handler is not None:
                scope["path_params"] = {"env_id": env_id} if env_id else {}
                try:
                    response = await handler(Request(scope, receive))
                except ServeError as exc:
                    response = _error_response(exc)
                except Exception as exc:
                    log.exception("answering %s failed", scope["path"])
                    response = _error_response(
                        ServeError("EXECUTION_ERROR", f"server error: {exc!r}", 500)
                    )
                await response(scope, receive, send)
                return
        elif kind == "websocket":
            env_id, name = self._split(scope["path"])
            if name == "ws":
                scope["path_params"] = {"env_id": env_id} if env_id else {}
                await self.ws(scope, receive, send)
                return
        await self.api(scope, receive, send)


class _PathParams:
    """Gives an ASGI scope the ``path_params`` attribute ``env_of`` reads."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.path_params = scope.get("path_params", {})


class _WebSocketEndpoint:
    """The ``/ws`` endpoint as a plain ASGI app: one session per connection.

    It speaks ASGI messages directly rather than through Starlette's
    WebSocket wrapper: at thousands of frames a second per core, the wrapper's
    state checks are a measurable share of a frame's cost.
    """

    def __init__(self, server: EnvServer, env_of: Any) -> None:
        self.server = server
        self.env_of = env_of

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        server = self.server
        try:
            session = server.open_session(self.env_of(scope), "ws")
        except ServeError as exc:
            await _refuse(exc, receive, send)
            return
        closed = False

        async def close(code: int, reason: str = "") -> None:
            nonlocal closed
            if not closed:
                closed = True
                try:
                    await send({"type": "websocket.close", "code": code, "reason": reason})
                except Exception:  # the client went first
                    log.debug("closing a websocket that was already gone", exc_info=True)

        loop = asyncio.get_running_loop()
        session.on_expire = lambda: loop.create_task(close(1001, "idle timeout"))
        limit = server.config.max_frame_bytes
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break
                session.touch()  # any frame keeps the session alive
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                if len(raw) > limit:
                    error = validation_error(
                        f"frame is {len(raw):,} characters; the limit is {limit:,}",
                        "send a smaller action, or start the server with a higher "
                        "--max-frame-bytes",
                    )
                    reply: bytes | None = frame("error", error.data())
                    ending = False
                else:
                    reply, ending = await _answer(server, session, raw)
                if closed:
                    break
                if reply is not None:
                    await send({"type": "websocket.send", "text": reply.decode()})
                if ending:
                    break
        except OSError:
            pass  # the connection dropped mid-send
        finally:
            server.close_session(session.id)
            await close(1000)


#: How long a refused connection keeps answering frames before it is closed.
REFUSED_LINGER_S = 5.0


async def _refuse(exc: ServeError, receive: Any, send: Any) -> None:
    """Tell a client why it gets no session, then close.

    The error frame goes out at once and answers every frame the client sends
    for a few seconds: a client that connects and then sends its first request
    (OpenEnv's does) reads the error instead of a closed connection.
    """
    text = frame("error", exc.data()).decode()
    await send({"type": "websocket.send", "text": text})
    try:
        while True:
            message = await asyncio.wait_for(receive(), REFUSED_LINGER_S)
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": text})
    except (TimeoutError, OSError):
        pass
    code = 1013 if exc.code == "CAPACITY_REACHED" else 1008
    try:
        await send({"type": "websocket.close", "code": code, "reason": exc.code})
    except Exception:
        log.debug("closing a refused websocket that was already gone", exc_info=True)


async def _answer(
    server: EnvServer, session: Session, raw: str | bytes
) -> tuple[bytes | None, bool]:
    """The reply to one frame, and whether the client asked to close."""
    try:
        message = loads(raw)
        if not isinstance(message, dict):
            raise validation_error(
                f"a frame must be a JSON object, got {type(message).__name__}",
                '{"type": "reset" | "step" | "state" | "tools" | "close", "data": ...}',
            )
        kind = message.get("type")
        if not FRAME_KEYS.issuperset(message):
            extra = sorted(set(message) - FRAME_KEYS)
            raise validation_error(f"unknown frame field(s) {extra}", "a frame has type and data")
        if kind == "step":
            if "data" not in message:
                raise validation_error("a step frame needs 'data': the action")
            return frame("observation", await server.step(session, message["data"])), False
        if kind == "reset":
            return frame("observation", await server.reset(session, message.get("data"))), False
        if kind == "state":
            return frame("state", await server.state(session)), False
        if kind == "tools":
            return frame("tools", {"tools": await server.tools(session.env_id, session)}), False
        if kind == "close":
            return None, True
        raise ServeError(
            "UNKNOWN_TYPE",
            f"unknown frame type {kind!r}",
            400,
            "frame types: reset, step, state, tools, close",
        )
    except ServeError as exc:
        return frame("error", exc.data()), False
    except Exception as exc:  # a server bug must not end other sessions
        log.exception("answering a frame failed")
        return frame("error", {"code": "EXECUTION_ERROR", "message": repr(exc)}), False
