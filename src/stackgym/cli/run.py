"""``stackgym run``: play episodes of one agent in one environment."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from stackgym.cli.common import console, err_console, handles_errors, parse_options, print_json
from stackgym.core.errors import ConfigError


def env_options_from_args(args: list[str]) -> dict[str, Any]:
    """``["--sandbox", "app-drizzle", "--max-turns", "10"]`` -> env options.

    Dashes become underscores; values are parsed as JSON where they are valid
    JSON (``10`` -> 10, ``true`` -> True) and kept as text otherwise.
    """
    pairs: list[str] = []
    index = 0
    while index < len(args):
        flag = args[index]
        if not flag.startswith("--") or len(flag) == 2:
            raise ConfigError(f"unexpected argument {flag!r}", "env options look like --sandbox X")
        name, sep, value = flag[2:].partition("=")
        if not sep:
            if index + 1 >= len(args) or args[index + 1].startswith("--"):
                raise ConfigError(f"env option {flag} needs a value", f"e.g. {flag} VALUE")
            value = args[index + 1]
            index += 1
        pairs.append(f"{name.replace('-', '_')}={value}")
        index += 1
    return parse_options(pairs)


def run_id_for(env_id: str, options: dict[str, Any], agent: str, seed: int) -> str:
    """Stable id of one episode of ``stackgym run`` (re-running the command resumes)."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    return f"run-{env_id}-{digest}-{agent}-seed{seed}"


def summarize(env_id: str, records: list) -> dict[str, Any]:
    """Pass rate, reward, steps and the env's own metrics over finished runs.

    Infrastructure errors are counted apart and left out of every rate and mean.
    """
    from stackgym.core.metrics import summarize_metrics

    scored = [r for r in records if r.status != "infra_error"]
    judged = [r.passed for r in scored if r.passed is not None]
    passed = sum(judged)
    count = len(scored)
    costs = [r.usage.cost_usd for r in records if r.usage.cost_usd is not None]
    summary: dict[str, Any] = {
        "env_id": env_id,
        "episodes": count,
        "passed": passed,
        "pass_rate": passed / len(judged) if judged else None,
        "mean_reward": sum(r.reward for r in scored) / count if count else None,
        "mean_steps": sum(r.turns for r in scored) / count if count else None,
        "infra_errors": len(records) - count,
        "tokens": sum(r.usage.total_tokens for r in records),
        "cost_usd": sum(costs) if costs else None,
    }
    metrics = summarize_metrics(env_id, [r.metrics for r in scored])
    for key, value in metrics.items():
        summary.setdefault(key, value)
    return summary


@handles_errors
def run(
    ctx: typer.Context,
    env_id: str = typer.Argument(..., help="Environment id (see `stackgym envs`)."),
    agent: str = typer.Option("random", "--agent", "-a", help="Agent name, e.g. oracle."),
    episodes: int = typer.Option(1, "--episodes", "-n", min=1, help="Episodes to play."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the first episode (then +1…)."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for results.jsonl and traces/ (re-running resumes)."
    ),
    option: list[str] = typer.Option([], "--option", "-o", help="Env option KEY=VALUE."),
    concurrency: int = typer.Option(
        1, "--concurrency", "-c", min=1, help="Episodes played at once (LLM agents gain most)."
    ),
    env_url: str | None = typer.Option(
        None, "--env-url", help="Play against the env served at this URL (`stackgym serve`)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Play episodes of one agent in one environment.

    Any other `--name value` is passed to the environment as an option, e.g.
    `stackgym run stack_doctor --mode blind_diagnosis --agent oracle -n 20`.
    LLM agents: `--agent openai:MODEL` (OPENAI_BASE_URL, OPENAI_API_KEY) or
    `--agent openrouter:MODEL` (OPENROUTER_API_KEY).
    """
    from stackgym.agents.llm import LLMSettings, is_llm_agent
    from stackgym.core.agents import make_agent
    from stackgym.core.results import ResultStore
    from stackgym.core.traces import TraceStore
    from stackgym.harness import loop
    from stackgym.harness.plan import PlannedRun
    from stackgym.harness.runner import Runner, open_env

    options = {**env_options_from_args(list(ctx.args)), **parse_options(option)}
    open_env(env_id, options, env_url).close()  # bad ids, options, URLs fail before any run
    llm = LLMSettings() if is_llm_agent(agent) else None
    make_agent(agent, env_id, **({"settings": llm} if llm else {})).close()
    results = ResultStore(out) if out else None
    done = results.completed_ids() if results else set()
    planned = [
        PlannedRun(
            run_id=run_id_for(env_id, options, agent, episode_seed),
            experiment="run",
            env_id=env_id,
            options=options,
            model=agent,
            seed=episode_seed,
            settings=options,
            llm=llm,
            env_url=env_url,
        )
        for episode_seed in range(seed, seed + episodes)
    ]
    todo = [p for p in planned if p.run_id not in done]

    def report(record: Any, _: Any) -> None:
        if json_output:
            return
        verdict = {True: "[green]pass[/]", False: "[red]fail[/]", None: "-"}[record.passed]
        problem = f" ({record.error})" if record.status == "infra_error" else ""
        console.print(
            f"seed {record.seed}: {verdict} reward {record.reward:+.2f} "
            f"in {record.turns} steps{problem}"
        )

    runner = Runner(
        todo,
        results=results,
        traces=TraceStore(out / "traces") if out else None,
        concurrency=concurrency,
        on_record=report,
    )
    try:
        records = loop.run(runner.run())
    finally:
        if results is not None:
            results.close()
        if runner.traces is not None:
            runner.traces.close()
    skipped = episodes - len(todo)
    summary = summarize(env_id, records)
    summary["skipped_already_done"] = skipped
    if json_output:
        print_json(summary)
        return
    if skipped:
        err_console.print(f"{skipped} episode(s) already in {out}; skipped")
    table = Table(show_header=False, show_edge=False)
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command(
        "run",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(run)
