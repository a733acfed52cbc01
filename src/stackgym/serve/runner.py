"""Run the server with uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import importlib.util
from typing import Any

from stackgym.serve.app import HARD_FRAME_FACTOR, create_app
from stackgym.serve.config import ServeConfig


def uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    """Uvicorn settings for ``config``: the fast loop/parser where available."""
    has = importlib.util.find_spec
    return {
        "host": config.host,
        "port": config.port,
        "loop": "uvloop" if has("uvloop") else "asyncio",
        "http": "httptools" if has("httptools") else "h11",
        "ws": "websockets-sansio",
        # Frames up to 4x the answered limit still get an error frame; larger
        # ones are cut by the protocol layer (close code 1009).
        "ws_max_size": config.max_frame_bytes * HARD_FRAME_FACTOR,
        "ws_per_message_deflate": False,
        "log_level": "warning",
        "access_log": False,
    }


def run_server(config: ServeConfig, **uvicorn_overrides: Any) -> None:
    """Serve ``config`` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), **{**uvicorn_options(config), **uvicorn_overrides})


__all__ = ["create_app", "run_server", "uvicorn_options"]
