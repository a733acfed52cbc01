"""Benchmark: `stackgym report` over 100k run records, charts included (target <= 10 s).

Writes one experiment folder shaped like post1-validation at scale (5 models x
2 conditions x 3 tasks x 3,334 repeats = 100,020 runs, metrics-env metrics,
a mix of error texts, token counts and costs), then times the whole command
(`python -m stackgym report DIR --out OUT`: interpreter start, imports, reading,
analysis, charts, writing) in a fresh process, best of N. It also times the
stages in-process and checks that two reports of the same input are
byte-identical.

    .venv/bin/python benchmarks/bench_analysis.py [--runs 100020] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stackgym.core.results import ResultStore, RunRecord
from stackgym.core.traces import Usage
from stackgym.harness.experiment import spec_hash
from stackgym.harness.folder import ExperimentFolder, ExperimentRecord, count
from stackgym.harness.parity import check_parity, resolve_all
from stackgym.harness.plan import design, run_id_for
from stackgym.harness.spec import parse_spec

MODELS = [f"openrouter:lab-{i}/model-{i}" for i in range(5)]
CONDITIONS = ["app-drizzle", "warehouse-dbt-fair"]
TASKS = ["active_user_arpu", "org_churn_rate", "avg_org_ltv"]
LAYERS = [
    "app_code",
    "orm_schema",
    "app_db",
    "warehouse_raw",
    "dbt_staging",
    "dbt_marts",
    "dbt_docs",
    "mock_api",
    "etl_log",
]
ERRORS = [
    None,
    "Binder Error: No function matches the given name and argument types "
    "'-(VARCHAR, INTERVAL)'. You might need to add explicit type casts.",
    'Binder Error: Referenced column "created_at" not found in FROM clause!',
    "no answer: models/answer.sql was not written",
    "TypeError: Cannot read properties of undefined (reading 'orgId')",
    'Parser Error: syntax error at or near "FORM"',
]


def spec_data(runs_wanted: int) -> dict:
    repeats = -(-runs_wanted // (len(MODELS) * len(CONDITIONS) * len(TASKS)))
    return {
        "name": "bench-analysis",
        "env": "metrics",
        "factor": "sandbox",
        "conditions": CONDITIONS,
        "tasks": TASKS,
        "models": MODELS,
        "runs": repeats,
        "max_turns": 10,
        "lint": "none",
        "data": {"seed": 0, "scale": 1, "drift": "none"},
        "gate": {"orm": "app-drizzle", "dbt_fair": "warehouse-dbt-fair"},
    }


def make_folder(folder: Path, runs_wanted: int) -> int:
    spec = parse_spec(spec_data(runs_wanted)).experiment
    assert spec is not None
    rng = random.Random(0)
    skill = {m: 0.1 + 0.15 * i for i, m in enumerate(MODELS)}
    records = []
    for condition, task, model, repeat in design(spec):
        passed = rng.random() < skill[model] + (0.05 if condition == "app-drizzle" else 0.0)
        infra = rng.random() < 0.01
        reads = {layer: rng.randrange(3) for layer in LAYERS}
        app = reads["app_code"] + reads["orm_schema"] + reads["app_db"] > 0
        warehouse = reads["dbt_staging"] + reads["dbt_marts"] + reads["warehouse_raw"] > 0
        metrics = {
            "score": rng.random(),
            "runtime": 1.0,
            "output": float(passed),
            "schema": 1.0,
            "tool_usage": rng.random(),
            "expected": 42.0,
            "actual": 42.0 if passed else 40.0,
            "context_files_read": rng.randrange(7),
            "context_files_total": 6,
            **{f"reads_{layer}": n for layer, n in reads.items()},
            "touched_app_surface": app,
            "touched_warehouse_surface": warehouse,
            "cross_layer": app and warehouse,
            "turns": rng.randrange(1, 11),
            "lint_turns": 0,
        }
        turns = rng.randrange(1, 11)
        records.append(
            RunRecord(
                run_id=run_id_for(spec.name, condition, task, model, repeat),
                experiment=spec.name,
                env_id="metrics",
                factor="sandbox",
                condition=condition,
                task=task,
                model=model,
                repeat=repeat,
                seed=repeat,
                status="infra_error" if infra else "completed",
                passed=None if infra else passed,
                reward=float(passed),
                turns=turns,
                truncated=turns == 10 and not passed,
                usage=Usage(
                    prompt_tokens=rng.randrange(2000, 20000),
                    completion_tokens=rng.randrange(100, 2000),
                    calls=turns,
                    cost_usd=rng.random() / 50,
                ),
                duration_s=rng.random() * 60,
                error="HTTP 401: the API key was refused"
                if infra
                else None
                if passed
                else rng.choice(ERRORS),
                metrics=metrics,
                settings={"sandbox": condition, "task": task, "max_turns": 10, "lint": "none"},
                data_snapshot="bench-snapshot",
                episode_id=f"ep{len(records)}",
            )
        )
    planned = len(records)
    record = ExperimentRecord(
        name=spec.name,
        source="bench",
        spec=spec,
        spec_hash=spec_hash(spec),
        parity=check_parity(spec),
        conditions={n: r.flat(spec.factor) for n, r in resolve_all(spec).items()},
        data_snapshot="bench-snapshot",
        planned_runs=planned,
        counts=count(records, planned),
        status="finished",
    )
    ExperimentFolder(folder).write(record)
    with ResultStore(folder, durable=False) as store:
        store.write_many(records)
    return planned


CLI = (
    "import resource, sys\n"
    "from stackgym.cli import main\n"
    "sys.argv = ['stackgym', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def digest(folder: Path) -> str:
    hashes = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hashes.update(path.relative_to(folder).as_posix().encode())
            hashes.update(path.read_bytes())
    return hashes.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_020)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_folder(args.generate, args.runs)
        return
    root = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    try:
        folder = root / "experiment"
        started = time.perf_counter()
        # In a child, so this process stays small: a forked child's peak RSS
        # starts at its parent's.
        subprocess.run(
            [sys.executable, __file__, "--generate", str(folder), "--runs", str(args.runs)],
            check=True,
        )
        runs = (folder / "results.jsonl").read_bytes().count(b"\n")
        size = (folder / "results.jsonl").stat().st_size
        print(
            f"wrote {runs:,} run records ({size / 2**20:.0f} MiB results.jsonl) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        walls, cpus, peaks = [], [], []
        for attempt in range(args.repeat):
            out = root / f"report-{attempt}"
            before = _children_cpu()
            started = time.perf_counter()
            # The CLI's own entry point, printing its peak RSS on stderr.
            done = subprocess.run(
                [sys.executable, "-c", CLI, "report", str(folder), "--out", str(out)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            walls.append(time.perf_counter() - started)
            cpus.append(_children_cpu() - before)
            peaks.append(int(done.stderr.strip().splitlines()[-1]))
        load = os.getloadavg()[0]
        print(
            f"stackgym report, {runs:,} runs, charts included (target <= 10 s): wall best "
            f"{min(walls):.2f} s, median {sorted(walls)[len(walls) // 2]:.2f} s; CPU (user+sys) "
            f"best {min(cpus):.2f} s of {len(walls)} runs; load average {load:.1f} on "
            f"{os.cpu_count()} cores; peak RSS {max(peaks) / 1024:.0f} MiB"
        )
        same = len({digest(root / f"report-{i}") for i in range(args.repeat)}) == 1
        print(f"reports byte-identical across {args.repeat} runs: {same}")
        stages(folder, root / "report-stages")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stages(folder: Path, out: Path) -> None:
    """Where the CPU time goes, in this process (imports timed first)."""
    started = time.process_time()
    for module in (
        "matplotlib.backends.backend_agg",
        "scipy.stats",
        "statsmodels.stats.contingency_tables",
        "statsmodels.stats.power",
        "statsmodels.stats.proportion",
    ):
        importlib.import_module(module)

    from stackgym.analysis import charts, report
    from stackgym.analysis.aggregate import RunTable, env_metrics
    from stackgym.analysis.load import load, release
    from stackgym.analysis.markdown import render

    figures = {"imports": time.process_time() - started}

    def timed(name, function, *args):
        began = time.process_time()
        result = function(*args)
        figures[name] = time.process_time() - began
        return result

    loaded = timed("read", load, [folder])
    taxonomy, comparators = report.load_taxonomy(), report.load_comparators()
    table = timed("columns + taxonomy", RunTable.build, loaded.sections[0], taxonomy)
    timed("env summariser", env_metrics, table, "metrics")
    section = timed(
        "whole analysis", report.analyse_section, loaded.sections[0], "b", taxonomy, comparators
    )
    section.summary.charts = timed(
        "charts", charts.draw_section, section.summary, section.table, out / "charts", out
    )
    timed("markdown", render, report.ReportSummary(sources=["x"], sections=[section.summary]))
    del loaded, section, table
    release()
    print(
        "CPU by stage (in-process): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in figures.items())
    )


if __name__ == "__main__":
    main()
