"""``stackgym envs`` and ``stackgym check-env``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from stackgym.cli.common import console, handles_errors, parse_options, print_json


@handles_errors
def envs(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the registered environments, their options and baseline agents."""
    from stackgym.core.agents import agent_names
    from stackgym.core.registry import registry

    rows = [
        {
            "id": spec.id,
            "description": spec.description,
            "options": {k: list(v) for k, v in spec.choices.items()},
            "agents": list(agent_names(spec.id)),
        }
        for spec in (registry[name] for name in registry)
    ]
    if json_output:
        print_json(rows)
        return
    if not rows:
        console.print("no environments are registered")
        return
    table = Table(show_edge=False, show_lines=True)
    for column in ("id", "description", "options", "agents"):
        table.add_column(column, overflow="fold")
    for row in rows:
        options = "\n".join(f"{k}: {', '.join(v)}" for k, v in row["options"].items())
        table.add_row(row["id"], row["description"], options, ", ".join(row["agents"]))
    console.print(table)


def _variants(env_id: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """With no options given, check each choice of each option in turn."""
    from stackgym.core.registry import registry

    spec = registry[env_id]
    if options or not spec.choices:
        return [options]
    return [{name: value} for name, values in spec.choices.items() for value in values]


@handles_errors
def check_env(
    env_id: str = typer.Argument(..., help="A registered environment id (see `stackgym envs`)."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Env option KEY=VALUE (repeatable). Default: every choice."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Prove an environment honours the protocol (seeding, tools, bad input, JSON)."""
    from stackgym.core.checker import check_env as run_checks

    reports = [run_checks(env_id, variant) for variant in _variants(env_id, parse_options(option))]
    ok = all(r.ok for r in reports)
    if json_output:
        print_json(
            {
                "env_id": env_id,
                "ok": ok,
                "variants": [
                    {
                        "options": r.options,
                        "ok": r.ok,
                        "checks": [vars(c) for c in r.results],
                    }
                    for r in reports
                ],
            }
        )
    else:
        for report in reports:
            label = ", ".join(f"{k}={v}" for k, v in report.options.items()) or "defaults"
            console.print(f"[bold]{env_id}[/] ({label})")
            for result in report.results:
                mark = "[green]ok  [/]" if result.ok else "[red]FAIL[/]"
                detail = f" - {result.detail}" if result.detail else ""
                console.print(f"  {mark} {result.name}{detail}")
        console.print("[green]all checks passed[/]" if ok else "[red]some checks failed[/]")
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("envs")(envs)
    app.command("check-env")(check_env)
