"""The one typed configuration of a stackgym server (HTTP, WebSocket and MCP)."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Environment variable holding the bearer token when ``--token`` is not given.
TOKEN_ENV_VAR = "STACKGYM_SERVE_TOKEN"


class ServedEnv(BaseModel):
    """One environment a server offers, with the settings its sessions start from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_id: str
    #: Keyword arguments of ``stackgym.make``; a client's reset may override them.
    settings: dict[str, Any] = Field(default_factory=dict)


class ServeConfig(BaseModel):
    """Every knob of ``stackgym serve``, named once (printed at start)."""

    model_config = ConfigDict(extra="forbid")

    envs: list[ServedEnv] = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Open sessions (WebSocket connections plus HTTP session ids) across all envs.
    max_sessions: int = Field(default=256, ge=1)
    #: A session untouched for this long is closed and its environment released.
    idle_ttl_s: float = Field(default=600.0, gt=0)
    #: Bearer token every call must carry (``Authorization: Bearer …``); None = open.
    token: str | None = Field(default=None, repr=False)
    #: Largest HTTP request body accepted (413 beyond).
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    #: Largest WebSocket frame answered (VALIDATION_ERROR beyond; frames over
    #: four times this close the connection with code 1009).
    max_frame_bytes: int = Field(default=1 << 20, ge=1024)
    #: Refuse actions the env cannot parse with an error instead of letting the
    #: env answer (and score) them as it does in-process.
    reject_invalid_actions: bool = False
    #: Env calls slower than this (milliseconds) move that env to worker threads
    #: so one slow episode never stalls the event loop for the others.
    offload_after_ms: float = Field(default=2.0, ge=0)
    #: Worker threads for offloaded env calls.
    threads: int = Field(default=8, ge=1, le=256)

    @classmethod
    def for_env(cls, env_id: str, settings: dict[str, Any] | None = None, **knobs: Any):
        """A config serving one environment."""
        return cls(envs=[ServedEnv(env_id=env_id, settings=settings or {})], **knobs)

    def resolved_token(self) -> str | None:
        """The configured token, else the one in ``$STACKGYM_SERVE_TOKEN``."""
        return self.token or os.environ.get(TOKEN_ENV_VAR) or None

    def summary(self) -> dict[str, Any]:
        """What the server prints at start (the token itself never appears)."""
        data = self.model_dump(exclude={"token"})
        data["auth"] = "bearer token" if self.resolved_token() else "none"
        return data
