"""``stackgym eval``: measure an agent on an environment with the env's own metrics.

Works for every registered environment: it plays seeds ``S .. S+N-1`` with
:func:`~stackgym.core.rollout.run_episode` and summarises them with
:func:`stackgym.cli.run.summarize` (pass rate, reward, steps, plus the
metrics the env's summariser defines). ``--table`` plays every registered
baseline agent on every value of every option the command line leaves open
and prints one Markdown table, which is how the README's baseline tables are
regenerated.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import typer

from stackgym.cli.common import console, handles_errors, parse_options, print_json
from stackgym.cli.run import env_options_from_args, run_id_for, summarize
from stackgym.core.errors import ConfigError

#: Summary keys the table never shows as columns (they are identity or plumbing).
_NOT_METRICS = {"env_id", "agent", "options", "seed", "tokens", "infra_errors", "passed"}


def evaluate(
    env_id: str,
    options: dict[str, Any],
    agent: str,
    *,
    episodes: int,
    seed: int = 0,
    out: Path | None = None,
) -> dict[str, Any]:
    """Play ``episodes`` seeded episodes of ``agent`` and return the summary.

    With ``out``, every episode goes to ``out/traces`` and ``out/results.jsonl``
    (the same layout as ``stackgym run --out``), so analysis can read them.
    """
    import stackgym
    from stackgym.core.agents import make_agent
    from stackgym.core.results import ResultStore, run_record_from_episode
    from stackgym.core.rollout import run_episode
    from stackgym.core.traces import TraceStore

    env = stackgym.make(env_id, **options)
    policy = make_agent(agent, env_id)
    results = ResultStore(out) if out else None
    traces = TraceStore(out / "traces") if out else None
    played = []
    try:
        for episode_seed in range(seed, seed + episodes):
            run_id = run_id_for(env_id, options, agent, episode_seed)
            episode = run_episode(env, policy, seed=episode_seed, run_id=run_id, traces=traces)
            record = run_record_from_episode(
                episode, run_id=run_id, experiment="eval", model=agent, settings=options
            )
            played.append(record)
            if results is not None:
                results.write(record)
    finally:
        env.close()
        policy.close()
        if results is not None:
            results.close()
        if traces is not None:
            traces.close()
    summary = summarize(env_id, played)
    return {"env_id": env_id, "agent": agent, "options": options, "seed": seed, **summary}


def _selected(summary: dict[str, Any], metrics: list[str] | None) -> dict[str, Any]:
    if metrics is None:
        return summary
    unknown = [m for m in metrics if m not in summary]
    if unknown:
        known = sorted(k for k in summary if k not in _NOT_METRICS)
        raise ConfigError(f"unknown metrics {unknown}", f"known metrics: {', '.join(known)}")
    keep = {"env_id", "agent", "options", "seed", "episodes"}
    return {k: v for k, v in summary.items() if k in keep or k in metrics}


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if name.endswith(("accuracy", "rate", "precision")):
        return f"{100 * value:.1f} %"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict[str, Any]], metrics: list[str] | None = None) -> str:
    """Summaries as one Markdown table: options, agent, episodes, then metrics."""
    option_names = sorted({k for row in rows for k in row["options"]})
    if metrics is None:
        metrics = []
        for row in rows:
            for key, value in row.items():
                if key in _NOT_METRICS or key == "episodes" or key in metrics:
                    continue
                if isinstance(value, int | float) or value is None:
                    metrics.append(key)
        metrics = [m for m in metrics if any(row.get(m) is not None for row in rows)]
    header = [*option_names, "agent", "episodes", *metrics]
    lines = [
        "| " + " | ".join(header) + " |",
        "|"
        + "|".join("---" if i < len(option_names) + 1 else "---:" for i in range(len(header)))
        + "|",
    ]
    for row in rows:
        cells = [str(row["options"].get(name, "")) for name in option_names]
        cells += [row["agent"], str(row["episodes"])]
        cells += [_cell(m, row.get(m)) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table_variants(env_id: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the values of the env's options the user left open."""
    from stackgym.core.registry import registry

    open_choices = {k: v for k, v in registry[env_id].choices.items() if k not in options}
    names = sorted(open_choices)
    return [
        {**options, **dict(zip(names, values, strict=True))}
        for values in itertools.product(*(open_choices[n] for n in names))
    ]


def _baseline_agents(env_id: str) -> list[str]:
    from stackgym.core.agents import agent_names

    return [name for name in agent_names(env_id) if not name.endswith(":…")]


@handles_errors
def eval_command(
    ctx: typer.Context,
    env_id: str = typer.Argument(..., help="Environment id (see `stackgym envs`)."),
    agent: str = typer.Option("random", "--agent", "-a", help="Agent name, e.g. heuristic."),
    episodes: int = typer.Option(100, "--episodes", "-n", min=1, help="Episodes to play."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the first episode (then +1…)."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Keep traces/ and results.jsonl here (one subfolder per row with --table).",
    ),
    option: list[str] = typer.Option([], "--option", "-o", help="Env option KEY=VALUE."),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Comma-separated metric names to show (default: all)."
    ),
    table: bool = typer.Option(
        False,
        "--table",
        help="Play every baseline agent on every value of each option left open; print Markdown.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Measure an agent with the environment's own metrics.

    Any other `--name value` is an env option, e.g.
    `stackgym eval stack_doctor --mode blind_diagnosis --split eval --agent heuristic --json`.
    With `--table`, the agent option is ignored: every baseline of the env plays.
    """
    options = {**env_options_from_args(list(ctx.args)), **parse_options(option)}
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if not table:
        summary = _selected(
            evaluate(env_id, options, agent, episodes=episodes, seed=seed, out=out), wanted
        )
        if json_output:
            print_json(summary)
            return
        console.print(markdown_table([summary], wanted), soft_wrap=True)
        return
    rows = []
    for variant in _table_variants(env_id, options):
        for name in _baseline_agents(env_id):
            label = "-".join([*(str(v) for v in variant.values()), name])
            folder = out / label if out else None
            summary = evaluate(env_id, variant, name, episodes=episodes, seed=seed, out=folder)
            rows.append(_selected(summary, wanted))
    if json_output:
        print_json(rows)
        return
    console.print(markdown_table(rows, wanted), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(
        "eval",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(eval_command)
