"""Trace store throughput: step records written and read per second.

Target (issue 2): >= 50k step records/s written, >= 200k/s read.

    .venv/bin/python benchmarks/bench_traces.py
"""

from __future__ import annotations

import gc
import tempfile
import time

from stackgym.core import EpisodeRecord, TraceStore
from stackgym.core.traces import AgentInfo, StepRecord, Usage

EPISODES = 5_000
STEPS = 10


def episode(i: int) -> EpisodeRecord:
    return EpisodeRecord(
        episode_id=f"ep{i}",
        env_id="stack_doctor",
        seed=i,
        settings={"mode": "blind_diagnosis"},
        agent=AgentInfo(name="heuristic"),
        reset_observation={"text": "incident: p99 latency up 4x after driver rollout"},
        steps=[
            StepRecord(
                index=k,
                action={"type": "inspect", "target": "logs"},
                observation={"text": "CUDA error: no kernel image is available", "done": False},
                reward=-0.25,
                usage=Usage(prompt_tokens=900, completion_tokens=40, calls=1),
            )
            for k in range(STEPS)
        ],
        total_reward=-2.5,
        outcome={"passed": True, "metrics": {"fix_correct": True}},
    )


def main() -> None:
    steps = EPISODES * STEPS
    with tempfile.TemporaryDirectory() as tmp:
        records = [episode(i) for i in range(EPISODES)]
        store = TraceStore(tmp)
        started = time.perf_counter()
        for record in records:
            store.write(record)
        store.close()
        write = time.perf_counter() - started
        # A reader is another process: it does not hold the writer's objects.
        del records
        gc.collect()
        read = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            count = sum(len(e.steps) for e in TraceStore(tmp).episodes())
            read = min(read, time.perf_counter() - started)
    assert count == steps
    print(f"trace write: {steps / write:,.0f} step records/s, flushed per episode (target >= 50k)")
    print(f"trace read:  {steps / read:,.0f} step records/s, best of 3 (target >= 200k)")


if __name__ == "__main__":
    main()
