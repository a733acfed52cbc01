"""A fake OpenAI-compatible LLM provider: a real HTTP server on 127.0.0.1.

It speaks ``POST /v1/chat/completions`` (tool calls, usage, optional cost) and
answers from a *script*: a list of :class:`Reply` consumed in order, or a
function of the request. Replies can carry latency, HTTP errors (429, 500,
401, 404…), hang forever, or return malformed bodies, so tests and benchmarks
drive :class:`~stackgym.agents.llm.LLMAgent` through the real ``openai``
client exactly as it talks to OpenRouter or vLLM.

>>> with FakeProvider([Reply.tool("reveal", {"position": 0}), Reply.text("done")]) as provider:
...     os.environ["OPENAI_BASE_URL"] = provider.url
...     ...

Run it on its own (benchmarks do, so the server has a core of its own)::

    python -m stackgym.agents.fake_provider --latency 0.1 --responder first-tool
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

#: Largest request body the server reads (a guard, not a protocol limit).
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake provider."""

    kind: Literal["message", "error", "hang", "raw"] = "message"
    content: str | None = None
    #: ``(id or None, name, arguments as text)`` per tool call.
    tool_calls: tuple[tuple[str | None, str, str], ...] = ()
    status: int = 200
    message: str = ""
    retry_after: float | None = None
    body: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Dollars, sent as OpenRouter does (``usage.cost``); None sends no cost.
    cost: float | None = None
    #: Seconds to wait before answering; None uses the provider's latency.
    latency: float | None = None

    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        """An assistant message with text and no tool call."""
        return cls(content=content, **kw)

    @classmethod
    def tool(
        cls,
        name: str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        content: str | None = None,
        call_id: str | None = None,
        **kw: Any,
    ) -> Reply:
        """One tool call; ``arguments`` as a dict, or raw text (malformed JSON is allowed)."""
        return cls.tools([(name, arguments)], content=content, ids=[call_id], **kw)

    @classmethod
    def tools(
        cls,
        calls: Iterable[tuple[str, Mapping[str, Any] | str | None]],
        *,
        content: str | None = None,
        ids: Sequence[str | None] | None = None,
        **kw: Any,
    ) -> Reply:
        """Several tool calls in one assistant message."""
        calls = list(calls)
        ids = list(ids or [None] * len(calls))
        packed = tuple(
            (
                call_id,
                name,
                args if isinstance(args, str) else json.dumps(dict(args or {})),
            )
            for call_id, (name, args) in zip(ids, calls, strict=True)
        )
        return cls(content=content, tool_calls=packed, **kw)

    @classmethod
    def error(
        cls, status: int, message: str = "", *, retry_after: float | None = None, **kw: Any
    ) -> Reply:
        """An HTTP error with an OpenAI-style error body."""
        return cls(kind="error", status=status, message=message, retry_after=retry_after, **kw)

    @classmethod
    def hang(cls) -> Reply:
        """Never answer (until the server stops): a hung model."""
        return cls(kind="hang")

    @classmethod
    def raw(cls, body: str, status: int = 200, **kw: Any) -> Reply:
        """Answer with this body verbatim (e.g. not JSON, or JSON without choices)."""
        return cls(kind="raw", body=body, status=status, **kw)


@dataclass
class ChatRequest:
    """A request the fake provider received."""

    body: dict[str, Any]
    headers: dict[str, str]
    path: str

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.tools]


Responder = Callable[[ChatRequest], Reply]


def _example_arguments(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Schema-valid arguments for a tool: defaults, first enum values, placeholders."""
    properties = parameters.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in parameters.get("required") or []:
        schema = properties.get(name) or {}
        if "default" in schema:
            arguments[name] = schema["default"]
        elif schema.get("enum"):
            arguments[name] = schema["enum"][0]
        else:
            kind = schema.get("type")
            arguments[name] = {
                "integer": int(schema.get("minimum", 0)),
                "number": float(schema.get("minimum", 0)),
                "boolean": False,
                "array": [],
                "object": {},
            }.get(kind, "x")
    return arguments


def first_tool(request: ChatRequest) -> Reply:
    """Always call the first tool offered, with schema-valid placeholder arguments."""
    if not request.tools:
        return Reply.text("no tools were offered")
    function = request.tools[0].get("function", {})
    return Reply.tool(function.get("name", ""), _example_arguments(function.get("parameters", {})))


#: Responders selectable by name from the command line.
RESPONDERS: dict[str, Responder] = {"first-tool": first_tool}


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed: the server answers more requests per core."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class FakeProvider:
    """An OpenAI-compatible chat completions server on 127.0.0.1, scripted per test.

    ``script`` is a list of replies consumed in order (more can be pushed with
    :meth:`push`) or a function ``request -> Reply``. A request that finds the
    script empty gets HTTP 400 "fake provider script exhausted", so a test that
    under-scripts fails loudly. ``api_key``, when set, is required as a bearer
    token (anything else gets 401). ``cost_per_token`` adds ``usage.cost``.
    """

    def __init__(
        self,
        script: Sequence[Reply] | Responder | None = None,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
        cost_per_token: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.latency = latency
        self.api_key = api_key
        self.cost_per_token = cost_per_token
        self.host = host
        self.port = port
        self.record = record
        self._responder: Responder | None = script if callable(script) else None
        self._queue: deque[Reply] = deque(() if callable(script) or script is None else script)
        self._lock = threading.Lock()
        #: Every chat request received, in arrival order (when ``record``).
        self.requests: list[ChatRequest] = []
        self.request_count = 0
        self.in_flight = 0
        #: Most requests being answered at the same moment (proves concurrency).
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._ids = 0

    # -- scripting --------------------------------------------------------------

    def push(self, *replies: Reply) -> None:
        """Append replies to the script."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client (ends in ``/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def _next_reply(self, request: ChatRequest) -> Reply:
        if self._responder is not None:
            return self._responder(request)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return Reply.error(400, "fake provider script exhausted")

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Start serving in a background thread; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = _new_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:  # surfaced to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    async def _bind(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, backlog=4096, limit=MAX_BODY_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def stop(self) -> None:
        """Stop serving; hung requests are dropped."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP -------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                status, payload, extra = await self._route(method, path, headers, body)
                self._write(writer, status, payload, extra)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str], bytes] | None:
        line = await reader.readline()
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) < 2:
            return None
        method, path = parts[0], parts[1]
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY_BYTES:
            return None
        body = await reader.readexactly(length) if length else b""
        return method, path, headers, body

    def _write(
        self, writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, str]
    ) -> None:
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
        head = [f"HTTP/1.1 {status} {reason.get(status, 'Status')}"]
        head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(payload)}")
        head.append("Connection: keep-alive")
        head.extend(f"{k}: {v}" for k, v in extra.items())
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        if method == "GET" and path.rstrip("/").endswith("/stats"):
            stats = {
                "requests": self.request_count,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }
            return 200, json.dumps(stats).encode(), {}
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return _error_body(404, f"no route for {method} {path}")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _error_body(400, "request body is not JSON")
        request = ChatRequest(body=data, headers=headers, path=path)
        self.request_count += 1
        if self.record:
            self.requests.append(request)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _error_body(401, "Incorrect API key provided", code="invalid_api_key")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self._next_reply(request)
            delay = self.latency if reply.latency is None else reply.latency
            if delay > 0:
                await asyncio.sleep(delay)
            if reply.kind == "hang":
                await asyncio.Event().wait()
            return self._answer(request, reply)
        finally:
            self.in_flight -= 1

    def _answer(self, request: ChatRequest, reply: Reply) -> tuple[int, bytes, dict[str, str]]:
        if reply.kind == "error":
            status, payload, extra = _error_body(reply.status, reply.message or "error")
            if reply.retry_after is not None:
                extra["Retry-After"] = f"{reply.retry_after:g}"
            return status, payload, extra
        if reply.kind == "raw":
            return reply.status, reply.body.encode(), {}
        self._ids += 1
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id or f"call_{self._ids}_{index}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
                for index, (call_id, name, arguments) in enumerate(reply.tool_calls)
            ]
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = _estimate_tokens(json.dumps(request.messages))
        completion = reply.completion_tokens
        if completion is None:
            produced = (reply.content or "") + "".join(a for _, _, a in reply.tool_calls)
            completion = _estimate_tokens(produced)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        cost = reply.cost
        if cost is None and self.cost_per_token is not None:
            cost = (prompt + completion) * self.cost_per_token
        if cost is not None:
            usage["cost"] = cost
        payload = {
            "id": f"chatcmpl-fake-{self._ids}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": usage,
        }
        return 200, json.dumps(payload).encode(), {}


def _error_body(
    status: int, message: str, *, code: str | None = None
) -> tuple[int, bytes, dict[str, str]]:
    payload = {"error": {"message": message, "type": "fake_provider_error", "code": code}}
    return status, json.dumps(payload).encode(), {}


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--responder", choices=sorted(RESPONDERS), default="first-tool")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    provider = FakeProvider(
        RESPONDERS[args.responder],
        latency=args.latency,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        record=False,
    ).start()
    print(provider.url, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    provider.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
