"""Stack Doctor throughput: steps and resets per second, in-process, on one core.

Targets (issue 6): >= 50k steps/s for a scripted policy, reset <= 50 µs p50.
The original Stack Doctor environment did about 45k steps/s and 30k resets/s.

The scripted policy plays the four-step episode an agent that knows what it
is doing plays (inspect, inspect, apply_fix, submit) with prebuilt action
models; "with resets" counts only steps but times the whole loop, resets
included. Each figure is the best of several repeats (the machine is shared).

    .venv/bin/python benchmarks/bench_stack_doctor.py
"""

from __future__ import annotations

import gc
import json
import statistics
import time

import stackgym
from stackgym.envs.stack_doctor.models import (
    FIX_FOR,
    ApplyFix,
    Inspect,
    SubmitDiagnosis,
    SubmitRemediation,
)

EPISODES = 20_000
RESETS = 20_000
REPEATS = 5


def scripted_plans(env, mode: str) -> list[list]:
    """One four-step plan per scenario of the split, built before timing."""
    plans = []
    for scenario in env.pool:
        fix = FIX_FOR[scenario.data.root_cause]
        if mode == "blind_diagnosis":
            submit = SubmitDiagnosis(
                root_cause=scenario.data.root_cause, fix=fix, justification="evidence in logs"
            )
        else:
            submit = SubmitRemediation(
                fix=fix, evidence=["logs"], justification="the logs show the failure"
            )
        plans.append(
            [Inspect(target="logs"), Inspect(target="config"), ApplyFix(fix=fix), submit]
        )
    return plans


def steps_per_second(mode: str, form: str) -> tuple[float, float]:
    """(steps/s including resets, steps/s of step() alone), best of REPEATS."""
    env = stackgym.make("stack_doctor", mode=mode, split="all")
    plans = scripted_plans(env, mode)
    if form == "dict":
        plans = [[a.model_dump() for a in plan] for plan in plans]
    elif form == "json":
        plans = [[a.model_dump_json() for a in plan] for plan in plans]
    count = len(plans)
    best_loop = best_step = 0.0
    for _ in range(REPEATS):
        gc.collect()
        steps = 0
        step_time = 0.0
        clock = time.perf_counter
        started = clock()
        for seed in range(EPISODES):
            env.reset(seed=seed)
            before = clock()
            for action in plans[seed % count]:
                env.step(action)
            step_time += clock() - before
            steps += len(plans[seed % count])
        loop = clock() - started
        best_loop = max(best_loop, steps / loop)
        best_step = max(best_step, steps / step_time)
    return best_loop, best_step


def reset_latency(mode: str) -> tuple[float, float, float]:
    """(p50, p90 in µs, resets/s), best p50 of REPEATS."""
    env = stackgym.make("stack_doctor", mode=mode, split="all")
    best = (float("inf"), float("inf"), 0.0)
    for _ in range(REPEATS):
        gc.collect()
        samples = []
        clock = time.perf_counter_ns
        started = time.perf_counter()
        for seed in range(RESETS):
            before = clock()
            env.reset(seed=seed)
            samples.append(clock() - before)
        rate = RESETS / (time.perf_counter() - started)
        samples.sort()
        p50 = statistics.median(samples) / 1_000
        p90 = samples[int(0.9 * len(samples))] / 1_000
        if p50 < best[0]:
            best = (p50, p90, rate)
    return best


def main() -> None:
    figures: dict[str, dict[str, float]] = {}
    for mode in ("blind_diagnosis", "root_cause_visible"):
        row: dict[str, float] = {}
        for form in ("model", "dict", "json"):
            loop, step = steps_per_second(mode, form)
            row[f"steps_per_s_with_resets[{form}]"] = round(loop)
            row[f"steps_per_s_step_only[{form}]"] = round(step)
        p50, p90, rate = reset_latency(mode)
        row["reset_p50_us"] = round(p50, 1)
        row["reset_p90_us"] = round(p90, 1)
        row["resets_per_s"] = round(rate)
        figures[mode] = row
    for mode, row in figures.items():
        print(f"== {mode}")
        for key, value in row.items():
            print(f"  {key:36s} {value:>10,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
