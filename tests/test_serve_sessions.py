"""Sessions, the slow-env policy and the caller-chosen episode id (a core addition)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Literal

import pytest

import serve_envs  # noqa: F401  (registers the test envs)
from stackgym.core import Action, ActionSet, StepResult
from stackgym.core.registry import register, registry
from stackgym.serve import ServeConfig
from stackgym.serve.envserver import EnvServer
from stackgym.serve.sessions import ServeError, SessionStore
from toy_env import Lockbox


class Nap(Action):
    """Sleep a while (a stand-in for a slow query or build)."""

    type: Literal["nap"] = "nap"
    seconds: float = 0.05


class Sleepy(Lockbox):
    env_id = "sleepy"

    @property
    def action_set(self) -> ActionSet:
        return ActionSet([Nap])

    def _step(self, action: Action) -> StepResult:
        assert isinstance(action, Nap)
        time.sleep(action.seconds)
        return StepResult(self._observe("rested", 0.0, False), 0.0, False, False, {})


@pytest.fixture
def sleepy() -> Iterator[str]:
    """Registered only while a test needs it, so no other test's env list sees it."""
    register("sleepy", "test_serve_sessions:Sleepy")
    yield "sleepy"
    registry.remove("sleepy")


def test_reset_takes_a_caller_chosen_episode_id() -> None:
    env = Lockbox()
    _, info = env.reset(seed=1, episode_id="ep-42")
    assert info["episode_id"] == "ep-42"
    assert env.state.episode_id == "ep-42"
    _, info = env.reset(seed=1)
    assert info["episode_id"] not in ("ep-42", None)


def test_store_refuses_past_its_limit_and_frees_slots_on_close() -> None:
    store = SessionStore(max_sessions=2, idle_ttl_s=60)
    first = store.open("lockbox", "ws")
    store.open("lockbox", "http")
    with pytest.raises(ServeError) as refused:
        store.open("lockbox", "mcp")
    assert refused.value.code == "CAPACITY_REACHED"
    assert refused.value.status == 503
    assert store.close(first.id)
    assert not store.close(first.id)
    assert store.open("lockbox", "mcp").transport == "mcp"
    assert store.counts() == {"ws": 0, "http": 1, "mcp": 1}


def test_store_reaps_idle_sessions_but_not_busy_ones() -> None:
    store = SessionStore(max_sessions=4, idle_ttl_s=0.05)
    idle = store.open("lockbox", "http")
    busy = store.open("lockbox", "http")
    expired = []
    idle.on_expire = lambda: expired.append(idle.id)

    async def hold_lock() -> int:
        async with busy.lock:
            await asyncio.sleep(0.1)
            return store.reap()

    assert asyncio.run(hold_lock()) == 1
    assert expired == [idle.id]
    with pytest.raises(ServeError, match="without a call"):
        store.get(idle.id, "lockbox")
    assert store.get(busy.id, "lockbox") is busy


def test_a_full_store_reaps_before_refusing() -> None:
    store = SessionStore(max_sessions=1, idle_ttl_s=0.01)
    store.open("lockbox", "ws")
    time.sleep(0.05)
    assert store.open("lockbox", "ws")
    assert len(store) == 1


def test_slow_envs_move_to_threads_and_do_not_stall_fast_sessions(sleepy: str) -> None:
    config = ServeConfig(envs=[{"env_id": "sleepy"}, {"env_id": "lockbox"}], offload_after_ms=5)

    async def run() -> list[str]:
        server = EnvServer(config)
        slow = server.open_session("sleepy", "ws")
        fast = server.open_session("lockbox", "ws")
        await server.reset(slow, {"seed": 0})
        await server.reset(fast, {"seed": 0})
        for _ in range(5):  # the average passes 5 ms: later naps run on threads
            await server.step(slow, {"type": "nap", "seconds": 0.02})
        assert "sleepy" in server.offloaded
        assert "lockbox" not in server.offloaded
        finished: list[str] = []

        async def nap() -> None:
            await server.step(slow, {"type": "nap", "seconds": 0.3})
            finished.append("slow")

        async def reveal() -> None:
            await asyncio.sleep(0.01)
            await server.step(fast, {"type": "reveal", "position": 0})
            finished.append("fast")

        await asyncio.gather(nap(), reveal())
        await server.stop()
        return finished

    assert asyncio.run(run()) == ["fast", "slow"]


def test_a_fast_env_stays_inline_through_one_hiccup(sleepy: str) -> None:
    async def run() -> set[str]:
        server = EnvServer(ServeConfig(envs=[{"env_id": "sleepy"}], offload_after_ms=5))
        session = server.open_session("sleepy", "ws")
        await server.reset(session, {})
        for seconds in [0.0] * 10 + [0.012] + [0.0] * 5:
            await server.step(session, {"type": "nap", "seconds": seconds})
        await server.stop()
        return server.offloaded

    assert asyncio.run(run()) == set()


def test_unknown_env_ids_fail_when_the_server_is_built() -> None:
    with pytest.raises(Exception, match="chess"):
        EnvServer(ServeConfig.for_env("chess"))
