"""``stackgym report``: tables, tests, failure taxonomy, gate and charts from run folders."""

from __future__ import annotations

from pathlib import Path

import typer

from stackgym.cli.common import console, handles_errors, print_json


@handles_errors
def report(
    run_dirs: list[Path] = typer.Argument(
        ...,
        help="Experiment folders (analysed together; their settings must match), suite "
        "folders (one section per experiment) or `stackgym run --out` folders.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Report folder [default: FIRST_RUN_DIR/report]."
    ),
    taxonomy: Path | None = typer.Option(
        None, "--taxonomy", help="Failure taxonomy rules (YAML) instead of the shipped ones."
    ),
    comparators: Path | None = typer.Option(
        None, "--comparators", help="Documented fair/realistic comparators (YAML) for the gate."
    ),
    charts: bool = typer.Option(True, "--charts/--no-charts", help="Draw the PNG charts."),
    json_output: bool = typer.Option(False, "--json", help="Print summary.json to stdout."),
) -> None:
    """Write report.md, summary.json and PNG charts for finished (or partial) runs.

    Pass rates with Wilson 95% intervals (infrastructure errors counted apart),
    cost and turns, condition comparisons (Fisher, McNemar on paired repeats,
    stratified by model, power), the failure taxonomy, surfaces touched, the
    env's own metrics and the spec's decision gate. Nothing is re-run.
    """
    from stackgym.analysis.gate import load_comparators
    from stackgym.analysis.report import REPORT_FILE, write_report
    from stackgym.analysis.taxonomy import load_taxonomy

    folder = out or run_dirs[0] / "report"
    summary = write_report(
        run_dirs,
        folder,
        taxonomy=load_taxonomy(taxonomy) if taxonomy else None,
        comparators=load_comparators(comparators) if comparators else None,
        charts=charts,
    )
    if json_output:
        print_json(summary)
        return
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    for section in summary.sections:
        overall = section.overall.pass_rate
        rate = "-" if overall.rate is None else f"{overall.rate:.1%}"
        console.print(
            f"[bold]{section.name}[/]: {section.overall.runs} runs, "
            f"{overall.passed}/{overall.judged} passed ({rate}), "
            f"{section.overall.infra_errors} infra error(s)"
        )
        for row in section.by_condition:
            r = row.pass_rate
            shown = "-" if r.rate is None else f"{r.rate:.1%}"
            console.print(f"  {row.condition}: {r.passed}/{r.judged} ({shown})")
        for note in section.notes:
            console.print(f"  [yellow]note:[/] {note}")
        for gate in section.gates:
            verdict = "[green]PASS[/]" if gate.passed else "[red]FAIL[/]"
            console.print(f"  decision gate: {verdict}")
            for criterion in gate.criteria:
                mark = "ok " if criterion.passed else "no "
                console.print(f"    {mark}{criterion.title}", markup=False)
    console.print(f"wrote {folder / REPORT_FILE}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
