"""Serve stackgym environments: OpenEnv HTTP/WebSocket, MCP tools, Gymnasium.

* :func:`create_app` / :func:`run_server`: the OpenEnv-compatible server
  (``stackgym serve``), configured by one :class:`ServeConfig`.
* :mod:`stackgym.serve.mcp`: the env's tools over MCP (``stackgym mcp``).
* :mod:`stackgym.serve.gym`: ``gymnasium.make("stackgym/<env>-v1")``.
* :mod:`stackgym.client`: the client side (``stackgym.client.connect``).

The web stack is imported on first use, so the client needs none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackgym.serve.config import ServeConfig, ServedEnv

if TYPE_CHECKING:
    from stackgym.serve.runner import create_app, run_server


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run_server"):
        from stackgym.serve import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServeConfig", "ServedEnv", "create_app", "run_server"]
