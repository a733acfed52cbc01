"""Serve stackgym environments: OpenEnv HTTP/WebSocket, MCP tools, Gymnasium.

* :func:`create_app` / :func:`run_server`: the OpenEnv-compatible server
  (``stackgym serve``).
* :mod:`stackgym.serve.mcp`: the env's tools over MCP (``stackgym mcp``).
* :mod:`stackgym.serve.gym`: ``gymnasium.make("stackgym/<env>-v1")``.
* :mod:`stackgym.client`: the client side (``stackgym.client.connect``).
"""

from stackgym.serve.config import ServeConfig, ServedEnv
from stackgym.serve.runner import create_app, run_server

__all__ = ["ServeConfig", "ServedEnv", "create_app", "run_server"]
