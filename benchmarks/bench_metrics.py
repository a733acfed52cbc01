"""Metrics environment speed: sandbox builds, resets, grading.

Targets (issue 3): first build of all warehouse sandboxes for a new snapshot
<= 60 s; reset of a cached sandbox <= 50 ms p50 at scale 1; grading a SQL
answer <= 200 ms p50.

    .venv/bin/python benchmarks/bench_metrics.py [--repeat N]

Runs in a fresh, temporary cache (so "first build" really is the first),
then reports best-of and percentiles. The machine's load matters: the
development machine has 2 shared cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return ordered[index]


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=40, help="resets/gradings per measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stackgym-bench-") as cache:
        os.environ["STACKGYM_CACHE"] = cache
        run(args.repeat, Path(cache))


def run(repeat: int, cache: Path) -> None:
    import stackgym
    from stackgym.data import DatasetSpec, dataset_for
    from stackgym.sandboxes import build_sandboxes, get_sandbox, run_answer, sandbox_ids

    warehouses = [s for s in sandbox_ids() if s.startswith("warehouse-")]
    for label, spec in (
        ("first snapshot, cold dbt", DatasetSpec(seed=0)),
        ("second snapshot, parsed dbt", DatasetSpec(seed=1)),
    ):
        generate = timed(lambda spec=spec: dataset_for(spec))
        build = timed(lambda spec=spec: build_sandboxes([get_sandbox(s) for s in warehouses], spec))
        print(
            f"build all {len(warehouses)} warehouse sandboxes, {label}: {build:.1f} s "
            f"(+ {generate:.1f} s dataset generation; target <= 60 s)"
        )
    apps = [s for s in sandbox_ids() if not s.startswith("warehouse-")]
    build = timed(lambda: build_sandboxes([get_sandbox(s) for s in apps], DatasetSpec(seed=0)))
    print(f"build all {len(apps)} app sandboxes (SQLite + generated code): {build:.1f} s")

    for sandbox in ("warehouse-dbt-fair", "warehouse-dbt-realistic", "app-drizzle"):
        env = stackgym.make("metrics", sandbox=sandbox)
        env.reset(seed=0)  # warm: the build is cached from here on
        times = [timed(lambda env=env, i=i: env.reset(seed=i)) for i in range(repeat)]
        env.close()
        print(
            f"reset {sandbox} (cached, scale 1): p50 {percentile(times, 0.5) * 1e3:.1f} ms, "
            f"p90 {percentile(times, 0.9) * 1e3:.1f} ms (target p50 <= 50 ms)"
        )

    task = "active_user_arpu"
    sandbox = get_sandbox("warehouse-dbt-fair")
    build = sandbox.build(DatasetSpec(seed=0))
    oracle = sandbox.oracle_file(task).read_text()
    grading = []
    for _ in range(repeat):
        workspace = build.checkout()
        path = workspace.root / sandbox.manifest.answer_path(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(oracle)
        grading.append(timed(lambda workspace=workspace: run_answer(workspace, task)))
        workspace.close()
    print(
        f"grade a SQL answer (oracle ARPU, new DuckDB connection each): "
        f"p50 {percentile(grading, 0.5) * 1e3:.0f} ms, p90 {percentile(grading, 0.9) * 1e3:.0f} ms "
        "(target p50 <= 200 ms)"
    )
    env = stackgym.make("metrics", sandbox="warehouse-dbt-fair", task=task)
    steps = []
    for i in range(repeat):
        env.reset(seed=0)
        env.step({"type": "write_file", "path": "models/metrics/active_user_arpu.sql",
                  "content": f"{oracle}\n-- variant {i}\n"})  # fmt: skip
        steps.append(timed(lambda: env.step({"type": "done"})))
    env.close()
    print(
        f"env step `done` with a new SQL answer (run + rubric): "
        f"p50 {percentile(steps, 0.5) * 1e3:.0f} ms, p90 {percentile(steps, 0.9) * 1e3:.0f} ms"
    )
    for sandbox_id in ("app-drizzle", "app-typed", "app-python"):
        code = get_sandbox(sandbox_id)
        workspace = code.build(DatasetSpec(seed=0)).checkout()
        path = workspace.root / code.manifest.answer_path(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code.oracle_file(task).read_text())
        times = [timed(lambda workspace=workspace: run_answer(workspace, task)) for _ in range(5)]
        workspace.close()
        print(
            f"grade a {code.manifest.answer.runtime} answer ({sandbox_id}, oracle ARPU): "
            f"median {statistics.median(times):.2f} s, best {min(times):.2f} s"
        )


if __name__ == "__main__":
    sys.exit(main())
