"""Play a served environment with the in-process API.

>>> from stackgym.client import connect
>>> with connect("http://127.0.0.1:8000", "stack_doctor") as env:
...     observation, info = env.reset(seed=0)
...     result = env.step({"type": "inspect", "target": "logs"})

:class:`RemoteEnv` has ``reset``/``step``/``state``/``tools``/``close`` with
the same arguments and return types as an in-process env (typed observations
where the env class is importable here), so
:func:`stackgym.core.rollout.run_episode` plays it unchanged.
:class:`AsyncRemoteEnv` (:func:`aconnect`) is the same with ``await``. Both speak the
OpenEnv WebSocket protocol to ``stackgym serve`` (one session per connection).
"""

from __future__ import annotations

import os
import socket
import ssl
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from pydantic import BaseModel, ConfigDict

from stackgym.core.errors import StackgymError
from stackgym.core.models import EnvState, Observation, StepResult
from stackgym.serve.config import TOKEN_ENV_VAR

#: Default seconds to wait for a server's answer.
DEFAULT_TIMEOUT_S = 120.0
#: Largest frame a client accepts (observations can carry file contents).
MAX_FRAME_BYTES = 64 << 20


class RemoteError(StackgymError):
    """The server refused a call; ``code`` is the OpenEnv error code."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(f"{message} ({code})", hint)
        self.code = code


class RemoteObservation(Observation):
    """Observation of an env whose class is not importable here: keeps every field."""

    model_config = ConfigDict(extra="allow")


def observation_type_for(env_id: str) -> type[Observation]:
    """The env's observation model when its class is importable, else :class:`RemoteObservation`."""
    from stackgym.core.registry import registry

    try:
        return registry[env_id].load().observation_type
    except (StackgymError, ImportError, AttributeError):
        return RemoteObservation


def endpoints(url: str, env_id: str) -> tuple[str, str]:
    """(HTTP base, WebSocket URL) of ``env_id`` on the server at ``url``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https"):
        raise StackgymError(
            f"cannot connect to {url!r}: the scheme must be http, https, ws or wss",
            "e.g. http://127.0.0.1:8000",
        )
    path = parts.path.rstrip("/")
    suffix = f"/envs/{env_id}"
    if not path.endswith(suffix):
        path += suffix
    base = urlunsplit((scheme, parts.netloc, path, "", ""))
    ws_scheme = "wss" if scheme == "https" else "ws"
    return base, urlunsplit((ws_scheme, parts.netloc, f"{path}/ws", "", ""))


def _auth_headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get(TOKEN_ENV_VAR)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _raise_for_error(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("type") == "error":
        data = message.get("data") or {}
        raise RemoteError(
            str(data.get("code", "UNKNOWN")),
            str(data.get("message", "the server answered an error")),
            str(data.get("hint", "")),
        )
    return message.get("data") or {}


class _Decoder:
    """Turns payloads into the in-process return types of one env."""

    def __init__(self, env_id: str) -> None:
        self.observation_type = observation_type_for(env_id)

    def observation(self, payload: dict[str, Any]) -> Observation:
        return self.observation_type.model_validate(payload["observation"])

    def reset(self, payload: dict[str, Any]) -> tuple[Observation, dict[str, Any]]:
        return self.observation(payload), dict(payload.get("info") or {})

    def step(self, payload: dict[str, Any]) -> StepResult:
        reward = payload.get("reward")
        return StepResult(
            self.observation(payload),
            float(reward) if reward is not None else 0.0,
            bool(payload.get("terminated", payload.get("done", False))),
            bool(payload.get("truncated", False)),
            dict(payload.get("info") or {}),
        )


def _action_json(action: Any) -> Any:
    if isinstance(action, BaseModel):
        return action.model_dump(mode="json")
    return action


def _reset_data(
    seed: int | None, options: dict[str, Any] | None, episode_id: str | None, env_options: dict
) -> dict[str, Any]:
    data: dict[str, Any] = dict(env_options)
    if seed is not None:
        data["seed"] = seed
    if options:
        data["options"] = options
    if episode_id is not None:
        data["episode_id"] = episode_id
    return data


class _BlockingWebSocket:
    """A WebSocket client on a blocking socket (websockets' sans-I/O protocol).

    No reader thread: each request writes a frame and reads until the answer,
    which keeps a round trip to one write and one read system call.
    """

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            self.sock = sock
            self.protocol = ClientProtocol(uri, max_size=MAX_FRAME_BYTES)
            request = self.protocol.connect()
            for name, value in headers.items():
                request.headers[name] = value
            self.protocol.send_request(request)
            self._flush()
            self._handshake(url)
        except BaseException:
            sock.close()  # a failed handshake must not leak the connection
            raise

    def _handshake(self, url: str) -> None:
        from websockets.http11 import Response

        while True:
            for event in self._read_events():
                if isinstance(event, Response):
                    if self.protocol.handshake_exc is not None:
                        self.sock.close()
                        body = (event.body or b"").decode(errors="replace")
                        raise RemoteError(
                            "CONNECT_FAILED",
                            f"{url} refused the WebSocket connection "
                            f"(HTTP {event.status_code}): {body[:300]}",
                            "check the URL, the env id and the token",
                        )
                    return

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read_events(self) -> list[Any]:
        data = self.sock.recv(1 << 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        events = self.protocol.events_received()
        self._flush()  # pongs, close acknowledgements
        if not data and not events:
            raise RemoteError("CONNECTION_CLOSED", "the server closed the connection")
        return events

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._request(message)
        except TimeoutError:
            raise RemoteError(
                "TIMEOUT",
                f"no answer to a {message.get('type')} frame in {self.sock.gettimeout()} s",
            ) from None

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        from websockets.frames import Close, Opcode

        self.protocol.send_text(orjson.dumps(message))
        self._flush()
        parts: list[bytes] = []
        while True:
            for event in self._read_events():
                if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    parts.append(event.data)
                    if event.fin:
                        return orjson.loads(b"".join(parts))
                elif event.opcode is Opcode.CLOSE:
                    close = Close.parse(event.data) if event.data else None
                    reason = f": {close.reason}" if close and close.reason else ""
                    raise RemoteError("CONNECTION_CLOSED", f"the server closed the session{reason}")

    def close(self) -> None:
        """Say goodbye and close the socket; closing twice is harmless."""
        from websockets.protocol import State

        if self.protocol.state is State.OPEN:
            try:
                self.protocol.send_text(orjson.dumps({"type": "close"}))
                self.protocol.send_close(1000)
                self._flush()
            except OSError:
                pass
        self.sock.close()


class RemoteEnv:
    """A served environment with the in-process ``Env`` API (blocking)."""

    def __init__(
        self,
        url: str,
        env_id: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        **options: Any,
    ) -> None:
        self.env_id = env_id
        self.url = url
        #: Env options sent with every reset (the env's client-settable choices).
        self.options = dict(options)
        self._decode = _Decoder(env_id)
        self.observation_type = self._decode.observation_type
        self._http_base, ws_url = endpoints(url, env_id)
        self._headers = _auth_headers(token)
        self._socket = _BlockingWebSocket(ws_url, self._headers, timeout)
        self._settings: dict[str, Any] | None = None
        self._tools: list[dict[str, Any]] | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """The env's settings on the server, with this client's options applied."""
        if self._settings is None:
            import httpx

            response = httpx.get(f"{self._http_base}/metadata", headers=self._headers)
            if response.status_code != 200:
                raise RemoteError("HTTP_ERROR", f"GET /metadata answered {response.status_code}")
            self._settings = {**response.json().get("settings", {}), **self.options}
        return self._settings

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        return _raise_for_error(self._socket.request(message))

    def reset(
        self,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        *,
        episode_id: str | None = None,
    ) -> tuple[Observation, dict[str, Any]]:
        """Start an episode; the same seed gives the same episode as in-process."""
        data = _reset_data(seed, options, episode_id, self.options)
        return self._decode.reset(self._call({"type": "reset", "data": data}))

    def step(self, action: Any) -> StepResult:
        """Apply an action (model, dict, JSON text or tool call), as ``Env.step``."""
        return self._decode.step(self._call({"type": "step", "data": _action_json(action)}))

    @property
    def state(self) -> EnvState:
        return EnvState.model_validate(self._call({"type": "state"}))

    def tools(self) -> list[dict[str, Any]]:
        """The env's actions as OpenAI function-calling tool specs."""
        if self._tools is None:
            self._tools = self._call({"type": "tools"})["tools"]
        return self._tools

    def close(self) -> None:
        """End the session (the server releases the env)."""
        self._socket.close()

    def __enter__(self) -> RemoteEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRemoteEnv:
    """A served environment with the ``Env`` API as coroutines (``await env.step(a)``)."""

    def __init__(
        self,
        url: str,
        env_id: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        **options: Any,
    ) -> None:
        self.env_id = env_id
        self.url = url
        self.options = dict(options)
        self._decode = _Decoder(env_id)
        self.observation_type = self._decode.observation_type
        self._http_base, self._ws_url = endpoints(url, env_id)
        self._headers = _auth_headers(token)
        self._timeout = timeout
        self._ws: Any = None
        self._tools: list[dict[str, Any]] | None = None

    async def connect(self) -> AsyncRemoteEnv:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        if self._ws is None:
            try:
                self._ws = await connect(
                    self._ws_url,
                    additional_headers=self._headers,
                    open_timeout=self._timeout,
                    max_size=MAX_FRAME_BYTES,
                    compression=None,
                )
            except InvalidStatus as exc:
                raise RemoteError(
                    "CONNECT_FAILED",
                    f"{self._ws_url} refused the WebSocket connection "
                    f"(HTTP {exc.response.status_code})",
                    "check the URL, the env id and the token",
                ) from None
        return self

    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        import asyncio

        from websockets.exceptions import ConnectionClosed

        await self.connect()
        try:
            async with asyncio.timeout(self._timeout):
                await self._ws.send(orjson.dumps(message).decode())
                raw = await self._ws.recv()
        except ConnectionClosed as exc:
            raise RemoteError(
                "CONNECTION_CLOSED", f"the server closed the session ({exc})"
            ) from None
        except TimeoutError:
            raise RemoteError(
                "TIMEOUT", f"no answer to a {message.get('type')} frame in {self._timeout} s"
            ) from None
        return _raise_for_error(orjson.loads(raw))

    async def reset(
        self,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        *,
        episode_id: str | None = None,
    ) -> tuple[Observation, dict[str, Any]]:
        data = _reset_data(seed, options, episode_id, self.options)
        return self._decode.reset(await self._call({"type": "reset", "data": data}))

    async def step(self, action: Any) -> StepResult:
        return self._decode.step(await self._call({"type": "step", "data": _action_json(action)}))

    async def state(self) -> EnvState:
        return EnvState.model_validate(await self._call({"type": "state"}))

    async def tools(self) -> list[dict[str, Any]]:
        if self._tools is None:
            self._tools = (await self._call({"type": "tools"}))["tools"]
        return self._tools

    async def close(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            try:
                await ws.send(orjson.dumps({"type": "close"}).decode())
            finally:
                await ws.close()

    async def __aenter__(self) -> AsyncRemoteEnv:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def connect(url: str, env_id: str, *, token: str | None = None, **options: Any) -> RemoteEnv:
    """Open a session of ``env_id`` on the server at ``url`` (blocking API).

    ``options`` are env options the server lets clients choose (the env's
    registered ``choices``, e.g. ``mode="root_cause_visible"``); ``token`` is
    the server's bearer token (default: ``$STACKGYM_SERVE_TOKEN``).
    """
    return RemoteEnv(url, env_id, token=token, **options)


async def aconnect(
    url: str, env_id: str, *, token: str | None = None, **options: Any
) -> AsyncRemoteEnv:
    """Open a session of ``env_id`` on the server at ``url`` (async API)."""
    return await AsyncRemoteEnv(url, env_id, token=token, **options).connect()


def remote_env(url: str, env_id: str, **options: Any) -> RemoteEnv:
    """The remote counterpart of ``stackgym.make(env_id, **options)`` (for ``--env-url``)."""
    return connect(url, env_id, **options)


__all__ = [
    "AsyncRemoteEnv",
    "RemoteEnv",
    "RemoteError",
    "RemoteObservation",
    "aconnect",
    "connect",
    "endpoints",
    "remote_env",
]
