"""``stackgym experiment``: run, list and show controlled experiments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from stackgym.cli.common import console, err_console, fail, handles_errors, print_json

experiment_app = typer.Typer(
    help="Run controlled experiments (specs or presets), resumably.", no_args_is_help=True
)

#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def _default_out(name: str) -> Path:
    return Path("runs") / name


@experiment_app.command("run")
@handles_errors
def run(
    spec: str = typer.Argument(..., help="A spec YAML file or a preset name (see `list`)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Experiment folder [default: runs/NAME]. Re-running resumes."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Only continue an experiment already in --out; never start one."
    ),
    retry_errors: bool = typer.Option(
        False, "--retry-errors", help="Play infra-error runs again (e.g. after fixing an API key)."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", min=1, help="Override the spec's concurrency."
    ),
    env_url: str | None = typer.Option(
        None, "--env-url", help="Play against the env served at this URL (`stackgym serve`)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run an experiment: parity check, preflight, then every run with progress.

    Finished runs are recorded as they end; run the same command again to
    resume after Ctrl-C, a crash or `kill -9`.
    """
    from stackgym.harness.experiment import RunInterrupted, run_spec
    from stackgym.harness.spec import load_spec

    loaded = load_spec(spec)
    folder = out or _default_out(loaded.name)
    try:
        outcomes = run_spec(
            loaded,
            folder,
            resume_only=resume,
            retry_errors=retry_errors,
            concurrency=concurrency,
            env_url=env_url,
            console=err_console,
        )
    except RunInterrupted as exc:
        fail(exc)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    summaries = [_summary(o) for o in outcomes]
    if json_output:
        print_json(
            summaries[0]
            if loaded.suite is None
            else {"suite": loaded.name, "experiments": summaries}
        )
        return
    for outcome, summary in zip(outcomes, summaries, strict=True):
        _print_summary(outcome, summary)


def _summary(outcome: Any) -> dict[str, Any]:
    record = outcome.record
    by_condition: dict[str, dict[str, Any]] = {}
    for run in outcome.records:
        row = by_condition.setdefault(
            run.condition or "-", {"runs": 0, "passed": 0, "judged": 0, "infra_errors": 0}
        )
        row["runs"] += 1
        if run.status == "infra_error":
            row["infra_errors"] += 1
        elif run.passed is not None:
            row["judged"] += 1
            row["passed"] += run.passed
    for row in by_condition.values():
        row["pass_rate"] = row["passed"] / row["judged"] if row["judged"] else None
    return {
        "experiment": outcome.name,
        "folder": str(outcome.folder),
        "status": record.status,
        **record.counts.model_dump(),
        "tokens": sum(r.usage.total_tokens for r in outcome.records),
        "cost_usd": sum(r.usage.cost_usd or 0.0 for r in outcome.records),
        "data_snapshot": record.data_snapshot,
        "by_condition": by_condition,
    }


def _print_summary(outcome: Any, summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['experiment']} ({summary['status']})", show_edge=False)
    for column in ("condition", "runs", "passed", "pass rate", "infra errors"):
        table.add_column(column, justify="left" if column == "condition" else "right")
    for condition, row in summary["by_condition"].items():
        rate = "-" if row["pass_rate"] is None else f"{row['pass_rate']:.1%}"
        table.add_row(
            condition,
            str(row["runs"]),
            f"{row['passed']}/{row['judged']}",
            rate,
            str(row["infra_errors"]),
        )
    console.print(table)
    console.print(
        f"{summary['recorded']}/{summary['planned']} runs recorded, "
        f"{summary['tokens']:,} tokens, ${summary['cost_usd']:.4f}; folder {summary['folder']}"
    )
    if summary["infra_error"]:
        console.print(
            f"[yellow]{summary['infra_error']} infra-error run(s), not counted in pass rates; "
            f"see {outcome.folder / 'run.log'}; `--retry-errors` plays them again[/]"
        )


@experiment_app.command("list")
@handles_errors
def list_presets(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the shipped presets."""
    from stackgym.harness.plan import plan_runs
    from stackgym.harness.spec import preset_names, read_spec

    rows = []
    for name in preset_names():
        loaded = read_spec(name)
        rows.append(
            {
                "name": name,
                "description": loaded.description,
                "experiments": [
                    {
                        "name": e.name,
                        "env": e.env,
                        "factor": e.factor,
                        "conditions": [c.name for c in e.conditions],
                        "tasks": e.tasks,
                        "models": e.models,
                        "runs": e.runs,
                    }
                    for e in loaded.experiments
                ],
            }
        )
    if json_output:
        print_json(rows)
        return
    table = Table(show_edge=False, show_lines=True)
    table.add_column("preset", no_wrap=True)
    table.add_column("experiments", overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("description", overflow="fold")
    for name in preset_names():
        loaded = read_spec(name)
        lines = [
            f"{e.env}: {e.factor} = {', '.join(c.name for c in e.conditions)}; "
            f"{len(e.models)} model(s) x {max(len(e.tasks), 1)} task(s) x {e.runs}"
            for e in loaded.experiments
        ]
        planned = sum(len(plan_runs(e)) for e in loaded.experiments)
        table.add_row(name, "\n".join(lines), str(planned), loaded.description)
    console.print(table)


@experiment_app.command("show")
@handles_errors
def show(
    spec: str = typer.Argument(..., help="A spec YAML file or a preset name."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show the resolved settings of each condition and the parity check's result."""
    from stackgym.harness.parity import check_parity, resolve_all
    from stackgym.harness.plan import plan_runs
    from stackgym.harness.spec import load_spec

    loaded = load_spec(spec)
    shown = []
    for experiment in loaded.experiments:
        report = check_parity(experiment)
        shown.append(
            {
                "experiment": experiment.name,
                "source": loaded.source,
                "spec": experiment.model_dump(mode="json"),
                "conditions": {
                    name: r.flat(experiment.factor) | {experiment.factor: r.level}
                    for name, r in resolve_all(experiment).items()
                },
                "planned_runs": len(plan_runs(experiment)),
                "parity": report.model_dump(mode="json"),
            }
        )
    if json_output:
        print_json(
            shown[0] if loaded.suite is None else {"suite": loaded.name, "experiments": shown}
        )
    else:
        for item in shown:
            _print_show(item)
    if not all(item["parity"]["ok"] for item in shown):
        raise typer.Exit(1)


def _print_show(item: dict[str, Any]) -> None:
    spec = item["spec"]
    console.print(
        f"[bold]{item['experiment']}[/] ({item['source']}): "
        f"env {spec['env']}, factor {spec['factor']}"
    )
    table = Table(show_edge=False)
    table.add_column("setting")
    names = list(item["conditions"])
    for name in names:
        table.add_column(name)
    fields = sorted({f for settings in item["conditions"].values() for f in settings})
    different = {d["field"] for d in item["parity"]["differences"]}
    for field in fields:
        values = [item["conditions"][n].get(field) for n in names]
        style = "bold red" if field in different else ("bold" if field == spec["factor"] else "")
        table.add_row(field, *(json.dumps(v, default=str) for v in values), style=style)
    console.print(table)
    console.print(f"{item['planned_runs']} runs planned")
    parity = item["parity"]
    if parity["ok"]:
        console.print(f"[green]parity ok[/]: conditions differ only in {parity['factor']!r}")
    else:
        for difference in parity["differences"]:
            shown = ", ".join(
                f"{k}: {json.dumps(v, default=str)}" for k, v in difference["values"].items()
            )
            console.print(f"[red]parity broken[/]: {difference['field']} ({shown})")


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
