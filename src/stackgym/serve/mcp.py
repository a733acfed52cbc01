"""An environment's tools over MCP (the official ``mcp`` SDK), stdio or streamable HTTP.

How episodes map onto MCP:

* ``reset`` (arguments ``seed``, ``options`` and the env options a client may
  choose) starts an episode and answers the first observation. Its
  structured result carries ``session_id``.
* Every env action is one tool with the env's own parameters (from
  ``env.tools()``), plus an optional ``session_id``. Its text is the
  observation text (or the error, with ``isError`` set, when the env refused
  the action: the refusal still counts as a step, as in-process); its
  structured result is the full step payload (observation, reward, done,
  terminated, truncated, info).
* ``state`` answers the episode state.

Which episode a call plays: the ``session_id`` argument when given; else the
episode this MCP connection started last (stdio: the process's client;
streamable HTTP: the ``Mcp-Session-Id``). Stateless MCP requests (the
2026-07-28 protocol over HTTP has no connection) must pass ``session_id``.
Sessions live in the same store as the HTTP/WebSocket server's, with the
same limit and idle TTL.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import mcp_types as types
from mcp.server import Server

from stackgym.serve.config import ServeConfig
from stackgym.serve.envserver import EnvServer
from stackgym.serve.sessions import ServeError, Session, session_error
from stackgym.version import __version__

log = logging.getLogger("stackgym.serve")

#: Tools every served env gets beside its own actions.
EPISODE_TOOLS = ("reset", "state")
_SESSION_PROPERTY = {
    "type": "string",
    "description": "the session_id that reset returned; default: this connection's episode",
}
#: Binding key of the one client of a stdio server.
_STDIO = "stdio"


def _text(text: str) -> list[types.TextContent]:
    return [types.TextContent(type="text", text=text)]


def _error_result(exc: ServeError) -> types.CallToolResult:
    message = f"{exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else "")
    return types.CallToolResult(
        content=_text(message), structured_content={"error": exc.data()}, is_error=True
    )


class EnvTools:
    """The MCP face of one served environment."""

    def __init__(self, env_server: EnvServer, env_id: str) -> None:
        self.env_server = env_server
        self.env_id = env_server.check_env_id(env_id)
        #: Connection key -> session id of the episode that connection plays.
        self.bindings: dict[str, str] = {}
        self._tool_list: list[types.Tool] | None = None
        self._action_names: set[str] = set()

    async def tool_list(self) -> list[types.Tool]:
        if self._tool_list is not None:
            return self._tool_list
        env_tools = await self.env_server.tools(self.env_id)
        names = [t["function"]["name"] for t in env_tools]
        clash = sorted(set(names) & set(EPISODE_TOOLS))
        if clash:
            raise ServeError(
                "EXECUTION_ERROR",
                f"env {self.env_id!r} has tools named {clash}, which MCP serving reserves",
                500,
                "rename those actions",
            )
        choices = self.env_server.specs[self.env_id].choices
        reset_properties: dict[str, Any] = {
            "seed": {"type": "integer", "minimum": 0, "description": "same seed -> same episode"},
            "options": {"type": "object", "description": "episode options of env.reset"},
            "session_id": {
                "type": "string",
                "description": "reset this session instead of starting a new one",
            },
        }
        for name, values in choices.items():
            reset_properties[name] = {"enum": list(values), "description": f"env option {name}"}
        tools = [
            types.Tool(
                name="reset",
                description=(
                    f"Start a new episode of {self.env_id} and return its first observation. "
                    "The answer's session_id names the episode for later calls."
                ),
                input_schema={
                    "type": "object",
                    "properties": reset_properties,
                    "additionalProperties": False,
                },
            ),
            types.Tool(
                name="state",
                description="The current episode's state: seed, step count, reward so far.",
                input_schema={
                    "type": "object",
                    "properties": {"session_id": _SESSION_PROPERTY},
                    "additionalProperties": False,
                },
            ),
        ]
        for spec in env_tools:
            function = spec["function"]
            schema = copy.deepcopy(function["parameters"])
            schema.setdefault("properties", {})["session_id"] = _SESSION_PROPERTY
            tools.append(
                types.Tool(
                    name=function["name"],
                    description=function["description"],
                    input_schema=schema,
                )
            )
        self._action_names = set(names)
        self._tool_list = tools
        return tools

    # -- calls ---------------------------------------------------------------------

    def _session(self, key: str | None, arguments: dict[str, Any]) -> Session:
        session_id = arguments.pop("session_id", None) or (key and self.bindings.get(key))
        if not session_id:
            raise session_error(
                "no episode to play: call the reset tool first",
                "over stateless HTTP, pass the session_id that reset returned",
                409,
            )
        return self.env_server.store.get(session_id, self.env_id)

    async def call(self, name: str, arguments: dict[str, Any], key: str | None):
        """Answer one tool call; refusals come back as ``isError`` results, never raised."""
        self.env_server.start()
        await self.tool_list()
        arguments = dict(arguments)
        try:
            if name == "reset":
                return await self._reset(arguments, key)
            if name == "state":
                state = await self.env_server.state(self._session(key, arguments))
                return types.CallToolResult(
                    content=_text(_describe(state)), structured_content=state
                )
            if name in self._action_names:
                session = self._session(key, arguments)
                payload = await self.env_server.step(session, {**arguments, "type": name})
                return _observation_result(session, payload)
            raise ServeError(
                "UNKNOWN_TYPE",
                f"unknown tool {name!r}",
                404,
                f"tools: {', '.join([*EPISODE_TOOLS, *sorted(self._action_names)])}",
            )
        except ServeError as exc:
            return _error_result(exc)

    async def _reset(self, arguments: dict[str, Any], key: str | None) -> types.CallToolResult:
        session_id = arguments.pop("session_id", None)
        if session_id:
            session = self.env_server.store.get(session_id, self.env_id)
        else:
            bound = key and self.bindings.get(key)
            session = None
            if bound:
                try:
                    session = self.env_server.store.get(bound, self.env_id)
                except ServeError:
                    session = None  # expired: start afresh
            if session is None:
                session = self.env_server.open_session(self.env_id, "mcp")
        try:
            payload = await self.env_server.reset(session, arguments)
        except ServeError:
            if not session_id and self.bindings.get(key or "") != session.id:
                self.env_server.close_session(session.id)
            raise
        if key:
            self.bindings[key] = session.id
        return _observation_result(session, payload)


def _describe(state: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in state.items())


def _observation_result(session: Session, payload: dict[str, Any]) -> types.CallToolResult:
    observation = payload["observation"]
    error = observation.get("error")
    text = observation.get("text") or ""
    if error:
        text = f"{text}\nerror: {error}" if text else f"error: {error}"
    return types.CallToolResult(
        content=_text(text),
        structured_content={"session_id": session.id, **payload},
        is_error=bool(error),
    )


def _connection_key(ctx: Any) -> str | None:
    """Which client a call comes from: stdio's one client, or the HTTP Mcp-Session-Id."""
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    if headers is None:
        return _STDIO
    session_id = headers.get("mcp-session-id")
    return f"http:{session_id}" if session_id else None


def build_mcp_server(config: ServeConfig, env_id: str) -> tuple[Server, EnvServer]:
    """An MCP server exposing ``env_id``'s tools, and the EnvServer holding its sessions."""
    env_server = EnvServer(config)
    tools = EnvTools(env_server, env_id)
    spec = env_server.specs[env_id]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await tools.tool_list())

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(params.name, params.arguments or {}, _connection_key(ctx))

    server = Server(
        f"stackgym-{env_id}",
        version=__version__,
        instructions=(
            f"{spec.description or env_id}. Call reset to start an episode, then the env's "
            "tools; each answer says the reward and whether the episode is done."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    return server, env_server


async def serve_stdio(config: ServeConfig, env_id: str) -> None:
    """Serve MCP over this process's stdin/stdout until the client hangs up."""
    from mcp.server.stdio import stdio_server

    server, env_server = build_mcp_server(config, env_id)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await env_server.stop()


def streamable_http_app(config: ServeConfig, env_id: str, path: str = "/mcp") -> Any:
    """An ASGI app serving MCP over streamable HTTP at ``path`` (token and size limits apply)."""
    from stackgym.serve.guard import Guard

    server, _ = build_mcp_server(config, env_id)
    app = server.streamable_http_app(
        streamable_http_path=path,
        host=config.host,
        max_request_body_size=config.max_body_bytes,
        max_sessions=config.max_sessions,
        session_idle_timeout=config.idle_ttl_s,
    )
    return Guard(app, token=config.resolved_token(), max_body_bytes=config.max_body_bytes)
