"""EnvServer: sessions of registered environments, driven by protocol-neutral calls.

The HTTP/WebSocket app (:mod:`stackgym.serve.app`) and the MCP server
(:mod:`stackgym.serve.mcp`) both talk to environments through this class, so
seeding, option checks, error codes and the session limit are the same
whichever way a client connects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from stackgym.core.env import Env, ResetNeeded
from stackgym.core.errors import ActionError, StackgymError
from stackgym.core.models import EnvState, StepResult
from stackgym.core.registry import EnvSpec, registry
from stackgym.serve.config import ServeConfig, ServedEnv
from stackgym.serve.sessions import (
    ServeError,
    Session,
    SessionStore,
    execution_error,
    session_error,
    validation_error,
)
from stackgym.serve.wire import parse_reset, reset_payload, step_payload
from stackgym.version import __version__

log = logging.getLogger("stackgym.serve")

T = TypeVar("T")

#: Weight of the newest call in the moving average of an env's call time.
_SMOOTHING = 0.2


class EnvServer:
    """The environments a server offers and the sessions playing them."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.served: dict[str, ServedEnv] = {}
        self.specs: dict[str, EnvSpec] = {}
        for entry in config.envs:
            self.specs[entry.env_id] = registry[entry.env_id]  # unknown id: a clear error now
            self.served[entry.env_id] = entry
        self.store = SessionStore(config.max_sessions, config.idle_ttl_s)
        self._executor = ThreadPoolExecutor(config.threads, thread_name_prefix="stackgym-env")
        self._offload_after_s = config.offload_after_ms / 1000
        #: Env ids whose calls run on worker threads (decided by measured call time).
        self.offloaded: set[str] = set()
        self._call_seconds: dict[str, float] = {}
        self._described: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        #: Seconds one ``make`` of each env took (measured when describing it).
        self._make_seconds: dict[str, float] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._warm_up_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------

    @property
    def default_env(self) -> str | None:
        """The env served at the root paths (only when exactly one is served)."""
        return next(iter(self.served)) if len(self.served) == 1 else None

    def start(self) -> None:
        """Start the idle-session reaper and the warm-up (call from inside the event loop)."""
        if self._reaper is None:
            loop = asyncio.get_running_loop()
            self._reaper = loop.create_task(self._reap_forever())
            self._warm_up_task = loop.create_task(self._warm_up())

    async def _warm_up(self) -> None:
        """Make and reset each env once, so the inline/thread policy starts informed."""
        for env_id in self.served:
            try:
                await self._describe(env_id)
            except Exception:
                log.exception("warming up env %s failed", env_id)

    async def stop(self) -> None:
        for task in (self._reaper, self._warm_up_task):
            if task is not None:
                task.cancel()
        self._reaper = self._warm_up_task = None
        self.store.close_all()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _reap_forever(self) -> None:
        interval = min(max(self.config.idle_ttl_s / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            closed = self.store.reap()
            if closed:
                log.info("closed %d idle session(s)", closed)

    # -- sessions ---------------------------------------------------------------

    def check_env_id(self, env_id: str) -> str:
        """``env_id`` if this server serves it, else a 404 naming the ones it does."""
        if env_id not in self.served:
            raise ServeError(
                "VALIDATION_ERROR",
                f"this server does not serve env {env_id!r}",
                404,
                f"it serves: {', '.join(self.served)}",
            )
        return env_id

    def open_session(self, env_id: str, transport: Literal["ws", "http", "mcp"]) -> Session:
        """A new session of ``env_id`` (its env is made by the first reset)."""
        return self.store.open(self.check_env_id(env_id), transport)

    def close_session(self, session_id: str) -> bool:
        """Close a session and release its env; False when it was not open."""
        return self.store.close(session_id)

    # -- env calls ----------------------------------------------------------------

    async def _call(self, env_id: str, function: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run an env call inline while the env is fast, on a worker thread while it is not.

        A thread hop costs tens of microseconds, most of a fast env's step; a
        slow call inline (a dbt build, a big query) would stall every other
        session. A moving average of each env's call time decides, so one
        hiccup (a GC pause, a busy core) does not move a fast env to threads.
        """
        if env_id in self.offloaded:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, functools.partial(self._timed, env_id, function, *args, **kw)
            )
        return self._timed(env_id, function, *args, **kw)

    def _timed(self, env_id: str, function: Callable[..., T], *args: Any, **kw: Any) -> T:
        started = time.perf_counter()
        try:
            return function(*args, **kw)
        finally:
            elapsed = time.perf_counter() - started
            average = self._call_seconds.get(env_id, elapsed)
            average += _SMOOTHING * (elapsed - average)
            self._call_seconds[env_id] = average
            if average > self._offload_after_s:
                if env_id not in self.offloaded:
                    log.info("env %s is slow; its calls now run on worker threads", env_id)
                self.offloaded.add(env_id)
            elif average < self._offload_after_s / 2:
                self.offloaded.discard(env_id)

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def _make(self, env_id: str, settings: dict[str, Any]) -> Env:
        return self.specs[env_id].make(**settings)

    async def _ensure_env(self, session: Session, settings: dict[str, Any]) -> Env:
        if session.env is not None and session.settings == settings:
            return session.env
        session.release()
        try:
            # Making an env can build data (seconds): off the event loop unless
            # it is known to be fast (a thread hop is most of a toy env's make).
            if self._make_seconds.get(session.env_id, float("inf")) <= self._offload_after_s:
                env = self._make(session.env_id, settings)
            else:
                env = await self._in_thread(self._make, session.env_id, settings)
        except StackgymError as exc:
            raise validation_error(exc.message, exc.hint) from None
        except Exception as exc:
            log.exception("making env %s failed", session.env_id)
            raise execution_error(f"making env {session.env_id!r} failed: {exc}") from None
        session.env, session.settings = env, dict(settings)
        return env

    async def reset(self, session: Session, data: Any) -> dict[str, Any]:
        """Start an episode in ``session``; ``data`` is the reset frame's data."""
        served = self.served[session.env_id]
        choices = dict(self.specs[session.env_id].choices)
        seed, episode_id, options, overrides = parse_reset(data, choices)
        settings = {**served.settings, **overrides}
        async with session.lock:
            env = await self._ensure_env(session, settings)
            try:
                observation, info = await self._call(
                    session.env_id, env.reset, seed, options, episode_id=episode_id
                )
            except StackgymError as exc:
                raise validation_error(exc.message, exc.hint) from None
            except Exception as exc:
                log.exception("reset of env %s failed", session.env_id)
                raise execution_error(f"reset failed: {type(exc).__name__}: {exc}") from None
        session.touch()
        return reset_payload(observation, info)

    async def step(self, session: Session, action: Any) -> dict[str, Any]:
        """Apply ``action`` in ``session``'s episode."""
        env = session.env
        if env is None:
            raise session_error(
                "this session has no episode yet", "send a reset before the first step", 409
            )
        if isinstance(action, dict) and "metadata" in action:
            action = _without_openenv_metadata(env, action)
        if self.config.reject_invalid_actions:
            try:
                action = env.action_set.parse(action)
            except ActionError as exc:
                raise validation_error(exc.message, exc.hint) from None
        async with session.lock:
            try:
                result: StepResult = await self._call(session.env_id, env.step, action)
            except ResetNeeded as exc:
                raise session_error(exc.message, exc.hint, 409) from None
            except Exception as exc:
                log.exception("step of env %s failed", session.env_id)
                raise execution_error(f"step failed: {type(exc).__name__}: {exc}") from None
        session.touch()
        return step_payload(result)

    async def state(self, session: Session) -> dict[str, Any]:
        """The session's :class:`EnvState` as JSON (before any reset: the empty state)."""
        if session.env is None:
            return EnvState(env_id=session.env_id).model_dump(mode="json")
        return session.env.state.model_dump(mode="json")

    async def tools(self, env_id: str, session: Session | None = None) -> list[dict[str, Any]]:
        """OpenAI tool specs of the session's env (or of the env with the server's settings)."""
        if session is not None and session.env is not None:
            return session.env.tools()
        return (await self._describe(env_id))[0]

    async def _describe(self, env_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Tools and full settings (defaults included) of the env as served, made once.

        Making it also measures a make and a reset, which seeds the
        inline/thread policy before the first client arrives.
        """
        described = self._described.get(env_id)
        if described is None:
            settings = dict(self.served[env_id].settings)
            described, made, reset = await self._in_thread(self._probe, env_id, settings)
            self._described[env_id] = described
            self._make_seconds[env_id] = made
            if env_id not in self._call_seconds:
                self._call_seconds[env_id] = reset
                if reset > self._offload_after_s:
                    self.offloaded.add(env_id)
        return described

    def _probe(self, env_id: str, settings: dict[str, Any]) -> tuple[Any, float, float]:
        started = time.perf_counter()
        env = self._make(env_id, settings)
        made = time.perf_counter() - started
        try:
            started = time.perf_counter()
            env.reset(seed=0)
            reset = time.perf_counter() - started
            return (env.tools(), dict(env.settings)), made, reset
        finally:
            env.close()

    # -- descriptions -------------------------------------------------------------

    async def schema(self, env_id: str) -> dict[str, Any]:
        """JSON schemas of actions, observations and state (OpenEnv's /schema)."""
        env_class = self.specs[env_id].load()
        tools = await self.tools(env_id)
        action = {
            "oneOf": [
                {
                    "title": t["function"]["name"],
                    "description": t["function"]["description"],
                    **t["function"]["parameters"],
                    "properties": {
                        "type": {"const": t["function"]["name"]},
                        **t["function"]["parameters"]["properties"],
                    },
                    "required": ["type", *t["function"]["parameters"]["required"]],
                }
                for t in tools
            ]
        }
        return {
            "action": action,
            "observation": env_class.observation_type.model_json_schema(),
            "state": EnvState.model_json_schema(),
        }

    async def metadata(self, env_id: str) -> dict[str, Any]:
        """OpenEnv's EnvironmentMetadata fields, plus the served settings and options."""
        spec = self.specs[env_id]
        _, settings = await self._describe(env_id)
        return {
            "name": env_id,
            "description": spec.description,
            "readme_content": None,
            "version": __version__,
            "author": "stackgym",
            "documentation_url": None,
            "settings": settings,
            "client_options": {k: list(v) for k, v in spec.choices.items()},
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "healthy",
            "envs": list(self.served),
            "sessions": len(self.store),
            "max_sessions": self.config.max_sessions,
        }


def _without_openenv_metadata(env: Env, action: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``metadata`` every OpenEnv ``Action`` carries, unless the tool declares one.

    A typed OpenEnv client sends ``action.model_dump()``, which includes the
    base class's ``metadata`` field; stackgym actions forbid unknown fields.
    """
    for action_type in env.action_set.types:
        if action_type.tool_name == action.get("type"):
            if "metadata" not in action_type.model_fields:
                return {k: v for k, v in action.items() if k != "metadata"}
            break
    return action
