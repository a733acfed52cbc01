"""Troubleshooting gym: speed, and the baselines' cost of a diagnosis per architecture.

    .venv/bin/python benchmarks/bench_troubleshoot.py [--seeds N] [--scale X] [--repeat N]

Part 1 times sandbox builds for a new bugged snapshot (cold cache), resets
and tool calls. Part 2 plays the oracle, the heuristic and the random
baseline on both sandboxes, every bug type and data seeds 0..N-1 (random:
5 episode seeds per snapshot) and prints, per sandbox and bug, the pass rate,
actions before the diagnosis, components audited, tables queried,
unnecessary exploration and transcript tokens. The question it answers for
the scripted investigator: does the warehouse stack cost more actions than
the ORM stack for the same diagnosis?

Runs in a fresh temporary cache. The machine's load matters: the
development machine has 2 shared cores; timings are best-of / percentiles.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="data seeds 0..N-1 for part 2")
    parser.add_argument("--scale", type=float, default=1.0, help="dataset scale")
    parser.add_argument("--repeat", type=int, default=30, help="resets / tool calls per timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stackgym-bench-") as cache:
        os.environ["STACKGYM_CACHE"] = cache
        speed(args.repeat, args.scale)
        baselines(args.seeds, args.scale)


def speed(repeat: int, scale: float) -> None:
    import stackgym
    from stackgym.data import DatasetSpec, dataset_for
    from stackgym.envs.troubleshoot.models import get_sandbox

    print(f"# speed (scale {scale:g})")
    for label, bug in (("first snapshot, cold dbt", "idempotency"), ("second", "stale_status")):
        spec = DatasetSpec(scale=scale, bug=bug)
        generate = timed(lambda spec=spec: (dataset_for(spec), dataset_for(spec.clean())))
        orm = timed(lambda spec=spec: get_sandbox("troubleshoot-orm").build(spec))
        warehouse = timed(lambda spec=spec: get_sandbox("troubleshoot-warehouse").build(spec))
        print(
            f"build, {label} ({bug}): troubleshoot-orm {orm:.1f} s, troubleshoot-warehouse "
            f"{warehouse:.1f} s (+ {generate:.1f} s generating the bugged and clean datasets)"
        )
    calls = {
        "query_db app": {"type": "query_db", "sql": "select count(*) from invoices"},
        "query_db warehouse": {
            "type": "query_db",
            "database": "warehouse",
            "sql": "select count(*) from staging.stg_stripe_invoices",
        },
        "check_api (filtered page)": {
            "type": "check_api",
            "resource": "invoices",
            "filters": {"created[gte]": "2025-11-01", "status": "paid"},
            "limit": 20,
        },
        "inspect_etl_log (job)": {"type": "inspect_etl_log", "job": "invoices_sync"},
        "read_file": {"type": "read_file", "path": "README.md"},
    }
    for sandbox in ("troubleshoot-orm", "troubleshoot-warehouse"):
        env = stackgym.make("troubleshoot", sandbox=sandbox, scale=scale)
        env.reset(seed=0)
        resets = [timed(lambda env=env, i=i: env.reset(seed=i)) for i in range(repeat)]
        print(
            f"reset {sandbox} (cached): p50 {percentile(resets, 0.5) * 1e3:.1f} ms, "
            f"p90 {percentile(resets, 0.9) * 1e3:.1f} ms"
        )
        for name, action in calls.items():
            if "warehouse" in name and sandbox == "troubleshoot-orm":
                continue
            env.reset(seed=0)
            env.step(action)  # first use copies the database into the episode
            times = []
            for _ in range(repeat):
                times.append(timed(lambda env=env, action=action: env.step(action)))
                if env.state.turn >= env.config.max_turns - 1:
                    env.reset(seed=0)
            print(f"  step {name}: p50 {percentile(times, 0.5) * 1e3:.2f} ms")
        env.close()


def baselines(seeds: int, scale: float) -> None:
    import stackgym
    from stackgym.core import make_agent, run_episode
    from stackgym.data import BUG_TYPES
    from stackgym.envs.troubleshoot.metrics import summarise
    from stackgym.envs.troubleshoot.models import sandbox_ids

    print(f"\n# baselines: data seeds 0..{seeds - 1}, scale {scale:g}")
    print("(oracle, heuristic: one episode per snapshot; random: episode seeds 0..4)")
    columns = (
        "pass_rate",
        "actions_before_diagnosis",
        "components_audited",
        "tables_queried",
        "unnecessary_exploration_rate",
        "transcript_tokens_to_diagnosis",
    )
    print(f"| agent | bug | sandbox | episodes | {' | '.join(columns)} |")
    print(f"|---|---|---|---:|{'---:|' * len(columns)}")
    overall: dict[tuple[str, str], list[dict]] = {}
    started = time.perf_counter()
    for agent in ("oracle", "heuristic", "random"):
        episode_seeds = range(5) if agent == "random" else range(1)
        for bug in BUG_TYPES:
            for sandbox in sandbox_ids():
                played = []
                for data_seed in range(seeds):
                    env = stackgym.make(
                        "troubleshoot", sandbox=sandbox, bug=bug, data_seed=data_seed, scale=scale
                    )
                    policy = make_agent(agent, "troubleshoot")
                    for seed in episode_seeds:
                        played.append(run_episode(env, policy, seed=seed).outcome["metrics"])
                    env.close()
                overall.setdefault((agent, sandbox), []).extend(played)
                summary = summarise(played)
                cells = [_cell(name, summary[name]) for name in columns]
                print(f"| {agent} | {bug} | {sandbox} | {len(played)} | {' | '.join(cells)} |")
    print("\nall bugs together:")
    for (agent, sandbox), played in overall.items():
        summary = summarise(played)
        actions = [m["actions_before_diagnosis"] for m in played if m["submitted"]]
        spread = f" (median {statistics.median(actions):g})" if actions else ""
        print(
            f"  {agent:9s} {sandbox:22s} pass {_cell('pass_rate', summary['pass_rate'])}, "
            f"actions before diagnosis {_cell('', summary['actions_before_diagnosis'])}{spread}, "
            f"components {_cell('', summary['components_audited'])}, "
            f"tokens {_cell('', summary['transcript_tokens_to_diagnosis'])}"
        )
    print(f"\n(part 2 took {time.perf_counter() - started:.0f} s, builds included)")


def _cell(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.endswith("rate"):
        return f"{value:.0%}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


if __name__ == "__main__":
    main()
