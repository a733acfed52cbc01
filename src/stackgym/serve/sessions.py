"""Sessions: one environment per WebSocket connection or HTTP session id.

Each session owns its own env instance, so episodes never share state. The
store enforces the session limit, closes sessions idle for longer than the
TTL, and remembers recently closed ids so a late call is told the session was
closed rather than that it never existed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from stackgym.core.env import Env

log = logging.getLogger("stackgym.serve")

#: How many closed session ids are remembered for clearer error messages.
_CLOSED_MEMORY = 4096


class ServeError(Exception):
    """A call the server refuses: an OpenEnv error ``code``, a message and an HTTP status."""

    def __init__(self, code: str, message: str, status: int, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.hint = hint

    def data(self) -> dict[str, Any]:
        """The ``data`` of an OpenEnv error frame."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


def invalid_json(detail: str) -> ServeError:
    return ServeError("INVALID_JSON", f"frame is not valid JSON: {detail}", 400)


def validation_error(message: str, hint: str = "") -> ServeError:
    return ServeError("VALIDATION_ERROR", message, 422, hint)


def execution_error(message: str) -> ServeError:
    return ServeError("EXECUTION_ERROR", message, 500)


def session_error(message: str, hint: str = "", status: int = 404) -> ServeError:
    return ServeError("SESSION_ERROR", message, status, hint)


@dataclass(eq=False)
class Session:
    """One client's environment and episode bookkeeping."""

    id: str
    env_id: str
    transport: Literal["ws", "http", "mcp"]
    env: Env | None = None
    #: Settings ``env`` was made with (None until the first reset builds it).
    settings: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Called when the reaper expires the session (closes a WebSocket).
    on_expire: Callable[[], None] | None = None

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def release(self) -> None:
        """Close the environment (best effort: a failing close is logged, never raised)."""
        env, self.env = self.env, None
        if env is not None:
            try:
                env.close()
            except Exception:
                log.exception("closing the env of session %s failed", self.id)


class SessionStore:
    """Open sessions, bounded in number and idle time."""

    def __init__(self, max_sessions: int, idle_ttl_s: float) -> None:
        self.max_sessions = max_sessions
        self.idle_ttl_s = idle_ttl_s
        self._sessions: dict[str, Session] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, env_id: str, transport: Literal["ws", "http", "mcp"]) -> Session:
        """A new empty session, or CAPACITY_REACHED when the limit is reached."""
        if len(self._sessions) >= self.max_sessions:
            self.reap()
        if len(self._sessions) >= self.max_sessions:
            raise ServeError(
                "CAPACITY_REACHED",
                f"the server holds {len(self._sessions)} sessions, its limit",
                503,
                "close sessions you no longer use (WebSocket close frame, POST /close), "
                "or start the server with a higher --max-sessions",
            )
        session = Session(id=secrets.token_hex(16), env_id=env_id, transport=transport)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, env_id: str) -> Session:
        """The open session ``session_id`` of ``env_id``, or SESSION_ERROR saying why not."""
        if not session_id:
            raise session_error(
                "no session id: this call needs the session that POST /reset opened",
                "send the session_id that /reset returned (body field or X-Session-Id header)",
                status=400,
            )
        session = self._sessions.get(session_id)
        if session is None:
            why = self._closed.get(session_id)
            if why is not None:
                raise session_error(
                    f"session {session_id} was {why}", "POST /reset to start a new session"
                )
            raise session_error(
                f"unknown session id {session_id!r}", "POST /reset to start a new session"
            )
        if session.env_id != env_id:
            raise session_error(
                f"session {session_id} belongs to env {session.env_id!r}, not {env_id!r}",
                f"use the /envs/{session.env_id}/ endpoints for it",
            )
        session.touch()
        return session

    def close(self, session_id: str, why: str = "closed") -> bool:
        """Close a session and release its env; False when it was not open."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        self._closed[session_id] = why
        while len(self._closed) > _CLOSED_MEMORY:
            self._closed.popitem(last=False)
        session.release()
        return True

    def reap(self) -> int:
        """Close sessions idle for longer than the TTL; return how many."""
        deadline = time.monotonic() - self.idle_ttl_s
        idle = [
            s for s in self._sessions.values() if s.last_used < deadline and not s.lock.locked()
        ]
        for session in idle:
            self.close(session.id, f"closed after {self.idle_ttl_s:g} s without a call")
            if session.on_expire is not None:
                session.on_expire()
        return len(idle)

    def close_all(self) -> None:
        for session_id in list(self._sessions):
            self.close(session_id, "closed when the server stopped")

    def counts(self) -> dict[str, int]:
        """Open sessions by transport."""
        out = {"ws": 0, "http": 0, "mcp": 0}
        for session in self._sessions.values():
            out[session.transport] += 1
        return out
