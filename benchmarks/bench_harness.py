"""Harness throughput and overhead with the fake provider (a real HTTP server).

Targets (issue 4):
  * zero provider latency: harness overhead <= 2 ms per agent step, env work excluded;
  * 500 concurrent episodes in one process;
  * 100 ms provider latency, concurrency 64: >= 80 % of the ideal 640 steps/s.

The provider runs in its own process (``python -m stackgym.agents.fake_provider``)
so its CPU time is not charged to the harness. Every figure is the full path:
``stackgym.harness`` runner -> LLMAgent -> openai client -> HTTP -> env step ->
trace store -> result store (fsync per record). Best of ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_harness.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal

import httpx

from stackgym.agents.llm import ClientPool, Provider, _completion_type
from stackgym.core import Action, ActionSet, Agent, Env, Observation, StepResult, TraceStore
from stackgym.core.agents import register_agent
from stackgym.core.registry import register
from stackgym.harness import loop
from stackgym.harness.experiment import run_experiment
from stackgym.harness.spec import parse_spec

STEPS = 10


class Tick(Action):
    """Advance the counter by one."""

    type: Literal["tick"] = "tick"


class Counter(Env):
    """Ten ticks and the episode is passed; a step costs microseconds."""

    env_id = "bench-counter"

    def __init__(self, variant: str = "only") -> None:
        super().__init__(variant=variant)
        self._actions = ActionSet([Tick])
        self.count = 0

    @property
    def action_set(self) -> ActionSet:
        return self._actions

    def _reset(self, seed: int, options: dict[str, Any]):
        self.count = 0
        return Observation(text=f"Tick {STEPS} times."), {}

    def _step(self, action: Action) -> StepResult:
        self.count += 1
        done = self.count >= STEPS
        info = {"outcome": {"passed": True, "metrics": {}}} if done else {}
        return StepResult(
            Observation(text=f"count {self.count}", done=done), 0.0, done, False, info
        )

    def _invalid(self, message: str) -> StepResult:
        return StepResult(Observation(text="invalid", error=message), -1.0, False, False, {})


class Ticker(Agent):
    """An in-process agent: what the harness costs with no provider call at all."""

    name = "ticker"

    async def aact(self, observation: Observation) -> Tick:
        return Tick()

    def act(self, observation: Observation) -> Tick:
        return Tick()


@contextmanager
def provider(latency: float):
    """The fake provider in a subprocess; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stackgym.agents.fake_provider", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def experiment(
    name: str, episodes: int, concurrency: int, model: str, env_thread: str = "never"
) -> Any:
    return parse_spec(
        {
            "name": name,
            "env": "bench-counter",
            "factor": "variant",
            "conditions": ["only"],
            "models": [model],
            "runs": episodes,
            "concurrency": concurrency,
            "env_thread": env_thread,
            "timeouts": {"call_s": 60, "run_s": 600},
        }
    ).experiment


def measure(
    url: str | None, name: str, episodes: int, concurrency: int, env_thread: str = "never"
) -> dict[str, float]:
    """Run one experiment; wall time, CPU time and env time per step.

    With ``url`` None the agent is the in-process :class:`Ticker` (no provider).
    """
    if url is not None:
        os.environ["OPENAI_BASE_URL"] = url
        os.environ["OPENAI_API_KEY"] = "bench"
    model = "openai:bench-model" if url else "ticker"
    spec = experiment(name, episodes, concurrency, model, env_thread)
    with tempfile.TemporaryDirectory() as out:
        cpu = time.process_time()
        wall = time.perf_counter()
        outcome = run_experiment(spec, out)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        steps = env = 0.0
        for episode in TraceStore(os.path.join(out, "traces")).episodes():
            steps += len(episode.steps)
            env += sum(s.env_seconds for s in episode.steps)
        stats = httpx.get(url + "/stats").json() if url else {"max_in_flight": 0}
    assert outcome.record.counts.passed == episodes, outcome.record.counts
    return {
        "wall_s": wall,
        "steps": steps,
        "steps_per_s": steps / wall,
        "wall_ms_per_step": 1000 * (wall - env) / steps,
        "cpu_ms_per_step": 1000 * (cpu - env) / steps,
        "env_ms_per_step": 1000 * env / steps,
        "max_in_flight": stats["max_in_flight"],
    }


def client_floor(url: str, calls: int = 300) -> dict[str, float]:
    """Wall and CPU ms per bare client call to the same server, as the agent makes it.

    The same pooled openai client and transport the agent uses, a mid-episode
    conversation (system, task, five tool exchanges), one call at a time.
    """
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an agent." * 20},
        {"role": "user", "content": f"Tick {STEPS} times."},
    ]
    for index in range(5):
        call = {
            "id": f"c{index}",
            "type": "function",
            "function": {"name": "tick", "arguments": "{}"},
        }
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{index}", "content": f"count {index + 1}"},
        ]
    body = {"model": "m", "messages": messages, "tools": Counter().tools()}

    async def go() -> dict[str, float]:
        pool = ClientPool()
        client = pool.async_client(Provider("openai", url, "OPENAI_API_KEY", "bench"))
        post = partial(client.post, "/chat/completions", cast_to=_completion_type(), body=body)
        await post()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            await post()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await pool.aclose()
        return {"wall_ms": 1000 * wall / calls, "cpu_ms": 1000 * cpu / calls}

    return loop.run(go())


def best(runs: list[dict[str, float]], key: str, lower: bool = True) -> dict[str, float]:
    return (min if lower else max)(runs, key=lambda r: r[key])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    register("bench-counter", "__main__:Counter")
    register_agent("bench-counter", "ticker", "__main__:Ticker")
    load = os.getloadavg()[0]
    print(
        f"harness benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at start, best of {args.repeat})"
    )

    def repeat(key: str, *args_: Any) -> dict[str, float]:
        return best([measure(*args_) for _ in range(args.repeat)], key)

    alone = repeat("cpu_ms_per_step", None, "alone-c1", 200, 1)
    threaded = repeat("cpu_ms_per_step", None, "thread-c1", 200, 1, "always")
    alone_wide = repeat("cpu_ms_per_step", None, "alone-c500", 500, 500)
    with provider(0.0) as url:
        floor = best([client_floor(url) for _ in range(args.repeat)], "cpu_ms")
        one = repeat("cpu_ms_per_step", url, "zero-c1", 60, 1)
        wide = repeat("cpu_ms_per_step", url, "zero-c500", 500, 500)
    print("\n[zero latency] target: harness overhead <= 2 ms per agent step (env excluded)")
    print("  (CPU ms of the harness process per step, env work excluded; wall ms in brackets)")
    print(
        f"  stackgym alone, in-process agent (no HTTP), concurrency 1: "
        f"{alone['cpu_ms_per_step']:.3f} ({alone['wall_ms_per_step']:.3f}); env on a thread: "
        f"{threaded['cpu_ms_per_step']:.3f} ({threaded['wall_ms_per_step']:.3f}); "
        f"concurrency 500: {alone_wide['cpu_ms_per_step']:.3f} "
        f"({alone_wide['wall_ms_per_step']:.3f})"
    )
    print(
        f"  bare client call (openai client + HTTP round trip): "
        f"{floor['cpu_ms']:.2f} ({floor['wall_ms']:.2f})"
    )
    print(
        f"  LLM agent step, concurrency 1: {one['cpu_ms_per_step']:.2f} "
        f"({one['wall_ms_per_step']:.2f}); concurrency 500: {wide['cpu_ms_per_step']:.2f} "
        f"({wide['steps_per_s']:.0f} steps/s)"
    )

    with provider(0.05) as url:
        many = repeat("wall_s", url, "c500", 500, 500)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n[500 concurrent episodes] target: 500 episodes in flight in one process")
    print(
        f"  500 episodes x {STEPS} steps at 50 ms latency: {many['wall_s']:.2f} s "
        f"({many['steps_per_s']:.0f} steps/s), {many['max_in_flight']} calls in flight at once, "
        f"peak RSS {peak:.0f} MiB"
    )

    with provider(0.1) as url:
        c64 = repeat("wall_s", url, "c64", 256, 64)
    print("\n[100 ms latency, concurrency 64] target: >= 80 % of 640 steps/s")
    print(
        f"  {c64['steps_per_s']:.0f} steps/s = {100 * c64['steps_per_s'] / 640:.1f} % of ideal "
        f"({int(c64['steps'])} steps in {c64['wall_s']:.2f} s, {c64['max_in_flight']} in flight, "
        f"{c64['cpu_ms_per_step']:.2f} CPU ms per step)"
    )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
