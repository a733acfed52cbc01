"""``stackgym serve`` (OpenEnv HTTP/WebSocket) and ``stackgym mcp`` (MCP tools)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import typer
from pydantic import ValidationError

from stackgym.cli.common import config_error, err_console, handles_errors
from stackgym.core.errors import ConfigError

_IMPORT_HELP = "Import this module first (e.g. one that registers your env). Repeatable."
_TOKEN_HELP = "Bearer token clients must send (default: $STACKGYM_SERVE_TOKEN; none = open)."


def _import_modules(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import {name!r}: {exc}", "check --import") from None


def _config(envs: list[dict[str, Any]], **knobs: Any) -> Any:
    from stackgym.serve.config import ServeConfig

    try:
        return ServeConfig(envs=envs, **knobs)
    except ValidationError as exc:
        raise config_error(exc, "server settings") from None


def _env_options(ctx: typer.Context, leading: list[str] | None = None) -> dict[str, Any]:
    from stackgym.cli.run import env_options_from_args

    return env_options_from_args([*(leading or []), *ctx.args])


def _check_env(env_id: str, settings: dict[str, Any]) -> None:
    """Make the env once before serving, so a bad id or option fails now, not per client."""
    from stackgym.core.registry import make

    make(env_id, **settings).close()


def _announce(what: str, config: Any, where: str) -> None:
    err_console.print(f"[bold]{what}[/] {where}", markup=True, soft_wrap=True)
    err_console.print(json.dumps(config.summary(), default=str), soft_wrap=True, markup=False)


@handles_errors
def serve(
    ctx: typer.Context,
    env_id: str | None = typer.Argument(None, help="Environment id (see `stackgym envs`)."),
    all_envs: bool = typer.Option(False, "--all", help="Serve every registered environment."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    max_sessions: int = typer.Option(256, "--max-sessions", help="Open sessions allowed."),
    idle_ttl: float = typer.Option(600.0, "--idle-ttl", help="Close sessions idle this long (s)."),
    token: str | None = typer.Option(None, "--token", help=_TOKEN_HELP),
    max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", help="Largest HTTP body."),
    max_frame_bytes: int = typer.Option(
        1 << 20, "--max-frame-bytes", help="Largest WebSocket frame."
    ),
    reject_invalid_actions: bool = typer.Option(
        False,
        "--reject-invalid-actions",
        help="Answer unparseable actions with VALIDATION_ERROR instead of the env's penalty.",
    ),
    imports: list[str] = typer.Option([], "--import", "-i", help=_IMPORT_HELP),
) -> None:
    """Serve environments over the OpenEnv HTTP/WebSocket protocol (stateful HTTP too).

    Any other `--name value` is an env option, e.g.
    `stackgym serve stack_doctor --mode root_cause_visible --port 8000`.
    Each env is at /envs/ENV_ID/{ws,reset,step,state,tools,close,schema,metadata};
    a server of one env also answers at /ws, /reset, ... for OpenEnv's client.
    """
    from stackgym.core.registry import registry
    from stackgym.serve.runner import run_server

    _import_modules(imports)
    leading: list[str] = []
    if env_id is not None and env_id.startswith("--"):
        # With --all and no id, click binds the first env option to the id.
        leading, env_id = [env_id], None
    options = _env_options(ctx, leading)
    if all_envs == (env_id is not None):
        raise ConfigError("name one env id, or pass --all", "e.g. stackgym serve stack_doctor")
    if all_envs and options:
        raise ConfigError(
            "env options cannot be combined with --all",
            "serve one env with options, or every env with its defaults",
        )
    ids = list(registry) if all_envs else [env_id]
    if not ids:
        raise ConfigError("no environments are registered", "see `stackgym envs`")
    for one in ids:
        _check_env(one, options)
    config = _config(
        [{"env_id": one, "settings": options} for one in ids],
        host=host,
        port=port,
        max_sessions=max_sessions,
        idle_ttl_s=idle_ttl,
        token=token,
        max_body_bytes=max_body_bytes,
        max_frame_bytes=max_frame_bytes,
        reject_invalid_actions=reject_invalid_actions,
    )
    _announce("serving", config, f"{', '.join(ids)} on http://{host}:{port}")
    run_server(config)


@handles_errors
def mcp(
    ctx: typer.Context,
    env_id: str = typer.Argument(..., help="Environment id (see `stackgym envs`)."),
    http: bool = typer.Option(False, "--http", help="Streamable HTTP instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (--http)."),
    port: int = typer.Option(8001, "--port", "-p", help="Port to listen on (--http)."),
    max_sessions: int = typer.Option(256, "--max-sessions", help="Open episodes allowed."),
    idle_ttl: float = typer.Option(600.0, "--idle-ttl", help="Close episodes idle this long (s)."),
    token: str | None = typer.Option(None, "--token", help=_TOKEN_HELP + " HTTP only."),
    imports: list[str] = typer.Option([], "--import", "-i", help=_IMPORT_HELP),
) -> None:
    """Expose an environment's tools over MCP: `reset`, `state` and one tool per action.

    stdio by default (for agent frameworks that launch the server); `--http`
    serves streamable HTTP at http://HOST:PORT/mcp. Any other `--name value`
    is an env option.
    """
    import asyncio

    from stackgym.serve.mcp import serve_stdio, streamable_http_app

    _import_modules(imports)
    options = _env_options(ctx)
    _check_env(env_id, options)
    config = _config(
        [{"env_id": env_id, "settings": options}],
        host=host,
        port=port,
        max_sessions=max_sessions,
        idle_ttl_s=idle_ttl,
        token=token,
    )
    if not http:
        # stdout is the protocol: everything human goes to stderr.
        _announce("MCP (stdio)", config, env_id)
        asyncio.run(serve_stdio(config, env_id))
        return
    import uvicorn

    _announce("MCP (streamable HTTP)", config, f"{env_id} on http://{host}:{port}/mcp")
    uvicorn.run(streamable_http_app(config, env_id), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    extra = {"allow_extra_args": True, "ignore_unknown_options": True}
    app.command("serve", context_settings=extra)(serve)
    app.command("mcp", context_settings=extra)(mcp)
