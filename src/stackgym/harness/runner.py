"""The async runner: plays planned runs with a concurrency limit and records each.

``concurrency`` workers take planned runs in order. Each run makes its agent
(LLM agents share one HTTP client per endpoint), plays one episode with
:func:`~stackgym.core.rollout.arun_episode`, writes the episode to the trace
store and then one :class:`RunRecord` to the result store. A record is one
``write`` of one line, so a run killed at any moment has either a whole
record or none, and a resumed experiment never duplicates one.

Env work: environments are synchronous. Fast ones (microseconds a step) run
on the event loop; slow ones (sandbox copies, dbt, Node.js) would stall every
other episode, so each worker then owns one thread where its envs are made,
reset, stepped and closed (one thread per env keeps thread-bound handles such
as SQLite connections valid). ``env_thread: auto`` picks per env
configuration from the preflight reset time and switches a configuration to
a thread when one of its steps turns out slow; ``always``/``never`` force it.

Failures: an :class:`InfraError` from the agent (401, hung provider, retries
exhausted) or the per-run time limit ends the episode as ``infra_error``. Any
other exception in a run (an env or agent bug) is recorded as ``infra_error``
too, with the exception named and its traceback in the log, so one broken
run never sinks an experiment of thousands; the summary counts them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from stackgym.agents.llm import ClientPool, is_llm_agent
from stackgym.core.agents import Agent, make_agent
from stackgym.core.env import Env
from stackgym.core.errors import InfraError
from stackgym.core.registry import make
from stackgym.core.results import ResultStore, RunRecord, run_record_from_episode
from stackgym.core.rollout import arun_episode
from stackgym.core.traces import TraceStore
from stackgym.harness.plan import PlannedRun

log = logging.getLogger("stackgym.harness")

#: A reset slower than this puts the configuration's env work on a thread (auto).
SLOW_RESET_S = 0.005
#: A step slower than this moves the configuration onto a thread (auto).
SLOW_STEP_S = 0.02
#: Envs each worker keeps open for reuse (one per recent configuration).
ENVS_PER_WORKER = 4

EnvThread = Literal["auto", "always", "never"]


def open_env(env_id: str, options: dict[str, Any], env_url: str | None = None) -> Env:
    """``make(env_id, **options)``, or a session on the served env at ``env_url``.

    The one place runs get their env, so an experiment plays the same way
    in-process and against `stackgym serve` (``--env-url``). Scripted
    baselines that read an env's internals (``oracle``, ``heuristic``) need the
    in-process env; LLM agents only need its tools.
    """
    if env_url is None:
        return make(env_id, **options)
    from stackgym.client import remote_env  # needs the `serve` extra

    try:
        return remote_env(env_url, env_id, **options)  # type: ignore[return-value]
    except OSError as exc:
        raise InfraError(
            f"cannot reach the env server at {env_url}: {exc}",
            f"start it with `stackgym serve {env_id}` or fix --env-url",
        ) from None


def options_key(env_id: str, options: dict[str, Any]) -> str:
    """A stable key of one env configuration."""
    return env_id + json.dumps(options, sort_keys=True, default=str)


@dataclass
class Tally:
    """Running totals, shown by the progress bar and returned at the end."""

    total: int = 0
    skipped: int = 0
    done: int = 0
    passed: int = 0
    failed: int = 0
    unjudged: int = 0
    infra_errors: int = 0
    crashed: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def add(self, record: RunRecord, *, crashed: bool = False) -> None:
        self.done += 1
        self.crashed += crashed
        if record.status == "infra_error":
            self.infra_errors += 1
        elif record.passed is True:
            self.passed += 1
        elif record.passed is False:
            self.failed += 1
        else:
            self.unjudged += 1
        self.tokens += record.usage.total_tokens
        self.cost_usd += record.usage.cost_usd or 0.0

    @property
    def pass_rate(self) -> float | None:
        """Passed over judged runs; infrastructure errors are not in the denominator."""
        judged = self.passed + self.failed
        return self.passed / judged if judged else None


class EnvThreadPolicy:
    """Decides, per environment, whether env work runs on worker threads.

    ``auto`` starts from the preflight (an env with a slow warm reset is
    threaded) and moves an env onto threads for good once one of its steps is
    slow. The decision is per env id: slowness comes from what an env does
    (copies, databases, subprocesses), which its configurations share.
    """

    def __init__(self, mode: EnvThread, slow_envs: set[str] | None = None) -> None:
        self.mode = mode
        self._slow = set(slow_envs or ())

    def threaded(self, env_id: str) -> bool:
        if self.mode != "auto":
            return self.mode == "always"
        return env_id in self._slow

    def observe(self, env_id: str, slowest_step_s: float) -> None:
        if self.mode == "auto" and slowest_step_s > SLOW_STEP_S and env_id not in self._slow:
            self._slow.add(env_id)
            log.info(
                "%s steps take up to %.0f ms; its env work moves onto worker threads",
                env_id,
                slowest_step_s * 1000,
            )


class _WorkerEnvs:
    """The envs one worker keeps open, and the thread they live on when threaded."""

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self._envs: OrderedDict[tuple[str, bool], Env] = OrderedDict()

    async def _call(self, threaded: bool, function: Callable[[], Any]) -> Any:
        if not threaded:
            return function()
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="stackgym-env")
        return await asyncio.get_running_loop().run_in_executor(self.executor, function)

    async def get(self, key: str, threaded: bool, run: PlannedRun) -> Env:
        slot = (key, threaded)
        env = self._envs.get(slot)
        if env is not None:
            self._envs.move_to_end(slot)
            return env
        env = await self._call(threaded, partial(open_env, run.env_id, run.options, run.env_url))
        self._envs[slot] = env
        while len(self._envs) > ENVS_PER_WORKER:
            (_, old_threaded), old = self._envs.popitem(last=False)
            await self._call(old_threaded, old.close)
        return env

    async def discard(self, key: str, threaded: bool) -> None:
        env = self._envs.pop((key, threaded), None)
        if env is not None:
            try:
                await self._call(threaded, env.close)
            except Exception:
                log.exception("closing a failed env raised")

    async def close(self) -> None:
        for (_, threaded), env in list(self._envs.items()):
            try:
                await self._call(threaded, env.close)
            except Exception:
                log.exception("closing an env raised")
        self._envs.clear()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None


def _accepts(factory_kwargs: dict[str, Any], name: str) -> dict[str, Any]:
    """LLM settings and the shared client pool go to the agents that take them."""
    return factory_kwargs if is_llm_agent(name) else {}


async def _close_agent(agent: Agent) -> None:
    closer = getattr(agent, "aclose", None)
    if closer is not None and inspect.iscoroutinefunction(closer):
        await closer()
    else:
        agent.close()


class Runner:
    """Plays planned runs concurrently; writes traces and run records as they finish."""

    def __init__(
        self,
        runs: Iterable[PlannedRun],
        *,
        results: ResultStore | None = None,
        traces: TraceStore | None = None,
        concurrency: int = 4,
        run_timeout_s: float | None = None,
        env_thread: EnvThreadPolicy | None = None,
        on_record: Callable[[RunRecord, Tally], None] | None = None,
    ) -> None:
        self._queue: deque[PlannedRun] = deque(runs)
        self.results = results
        self.traces = traces
        self.concurrency = max(1, concurrency)
        self.run_timeout_s = run_timeout_s
        self.policy = env_thread or EnvThreadPolicy("auto")
        self.on_record = on_record
        self.tally = Tally(total=len(self._queue))
        self.records: list[RunRecord] = []
        self.clients = ClientPool()
        self._stopping = False
        self._closing: list[asyncio.Future[None]] = []

    def stop(self) -> None:
        """Start no new run; runs in flight finish and are recorded."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def remaining(self) -> int:
        return len(self._queue)

    async def run(self) -> list[RunRecord]:
        """Play every planned run (or until :meth:`stop`); return the new records."""
        workers = [
            asyncio.create_task(self._worker(), name=f"stackgym-worker-{i}")
            for i in range(min(self.concurrency, len(self._queue)) or 0)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*self._closing, return_exceptions=True)
            await self.clients.aclose()
        return self.records

    async def _worker(self) -> None:
        envs = _WorkerEnvs()
        try:
            while not self._stopping and self._queue:
                planned = self._queue.popleft()
                record, crashed = await self._play(planned, envs)
                await self._record(record, crashed)
        finally:
            # Envs close even when the worker is cancelled; run() waits for it.
            closing = asyncio.ensure_future(envs.close())
            self._closing.append(closing)
            await asyncio.shield(closing)

    async def _play(self, planned: PlannedRun, envs: _WorkerEnvs) -> tuple[RunRecord, bool]:
        key = options_key(planned.env_id, planned.options)
        # a remote env blocks on its socket: keep it off the event loop
        threaded = self.policy.threaded(planned.env_id) or planned.env_url is not None
        agent: Agent | None = None
        try:
            env = await envs.get(key, threaded, planned)
            kwargs = {"settings": planned.llm, "clients": self.clients, "repeat": planned.repeat}
            agent = make_agent(planned.model, planned.env_id, **_accepts(kwargs, planned.model))
            episode = await arun_episode(
                env,
                agent,
                seed=planned.seed,
                run_id=planned.run_id,
                max_steps=planned.max_steps,
                traces=self.traces,
                env_executor=envs.executor if threaded else None,
                timeout_s=self.run_timeout_s,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run %s crashed", planned.run_id)
            await envs.discard(key, threaded)
            return self._crash_record(planned, exc), True
        finally:
            if agent is not None:
                try:
                    await _close_agent(agent)
                except Exception:
                    log.exception("closing agent %s raised", planned.model)
        if not threaded and episode.steps:
            self.policy.observe(planned.env_id, max(s.env_seconds for s in episode.steps))
        record = run_record_from_episode(
            episode,
            run_id=planned.run_id,
            experiment=planned.experiment,
            model=planned.model,
            factor=planned.factor,
            condition=planned.condition,
            task=planned.task,
            repeat=planned.repeat,
            settings=planned.settings,
        )
        return record, False

    @staticmethod
    def _crash_record(planned: PlannedRun, exc: Exception) -> RunRecord:
        message = str(exc).splitlines()[0] if str(exc) else ""
        return RunRecord(
            run_id=planned.run_id,
            experiment=planned.experiment,
            env_id=planned.env_id,
            factor=planned.factor,
            condition=planned.condition,
            task=planned.task,
            model=planned.model,
            repeat=planned.repeat,
            seed=planned.seed,
            status="infra_error",
            error=f"run crashed: {type(exc).__name__}: {message}",
            settings={**planned.options, **planned.settings},
        )

    async def _record(self, record: RunRecord, crashed: bool) -> None:
        if self.results is not None:
            # One line, fsynced: milliseconds the event loop should not wait for.
            # Shielded, so a cancelled run still counts a record that was written.
            write = asyncio.ensure_future(asyncio.to_thread(self.results.write, record))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                await write
                self._count(record, crashed)
                raise
        self._count(record, crashed)

    def _count(self, record: RunRecord, crashed: bool) -> None:
        self.records.append(record)
        self.tally.add(record, crashed=crashed)
        log.info(
            "run %s: %s%s",
            record.run_id,
            record.status
            if record.status != "completed"
            else {True: "pass", False: "fail"}.get(record.passed, "done"),
            f" ({record.error})" if record.status != "completed" and record.error else "",
        )
        if self.on_record is not None:
            self.on_record(record, self.tally)
