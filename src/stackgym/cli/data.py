"""``stackgym data``: generate datasets and print their ground truth."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from stackgym.cli.common import config_error, console, handles_errors, print_json

data_app = typer.Typer(
    help="Generate synthetic datasets and compute their ground truth.", no_args_is_help=True
)


class DriftChoice(StrEnum):
    none = "none"
    stripe_lag = "stripe-lag"
    missing_mapping = "missing-mapping"


class BugChoice(StrEnum):
    none = "none"
    idempotency = "idempotency"
    missing_mapping = "missing_mapping"
    schema_drift = "schema_drift"
    stale_status = "stale_status"


@data_app.command("generate")
@handles_errors
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the dataset into."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same data."),
    scale: float = typer.Option(1.0, help="Row-count multiplier (1 = 100k api_usage rows)."),
    anchor: str | None = typer.Option(
        None, help="ISO-8601 'now' of the dataset [default: 2026-01-01T00:00:00Z]."
    ),
    drift: DriftChoice = typer.Option(DriftChoice.none, help="Inject a drift mode."),
    bug: BugChoice = typer.Option(
        BugChoice.none, help="Inject a pipeline bug into the app data (see docs)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Generate a dataset: eleven Parquet tables plus a manifest with its snapshot hash."""
    from stackgym.data import DatasetSpec, generate_dataset

    fields: dict[str, object] = {
        "seed": seed,
        "scale": scale,
        "drift": drift.value,
        "bug": bug.value,
    }
    if anchor is not None:
        fields["anchor"] = anchor
    try:
        spec = DatasetSpec.model_validate(fields)
    except ValidationError as exc:
        raise config_error(exc, "dataset options") from None
    dataset = generate_dataset(spec, out)
    manifest = dataset.manifest
    if json_output:
        print_json({"path": str(out), **manifest.model_dump(mode="json")})
        return
    table = Table(title=f"dataset {out}", show_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, info in manifest.tables.items():
        table.add_row(name, f"{info.rows:,}")
    console.print(table)
    console.print(
        f"seed {spec.seed}, scale {spec.scale:g}, anchor {spec.anchor.isoformat()}Z, "
        f"drift {spec.drift}, bug {spec.bug}\nsnapshot {manifest.snapshot}"
    )
    if manifest.bug is not None:
        console.print(f"injected bug: {manifest.bug.summary}")


@data_app.command("truth")
@handles_errors
def truth(
    folder: Path = typer.Argument(..., help="A folder made by `stackgym data generate`."),
    json_output: bool = typer.Option(False, "--json", help="Print the three metrics as JSON."),
    verify: bool = typer.Option(False, help="Re-hash every file against the manifest first."),
) -> None:
    """Print the ground-truth value of every metric task on a dataset."""
    from stackgym.data import Dataset, metric_tasks

    dataset = Dataset.open(folder)
    if verify:
        dataset.verify()
    values, details = dataset.truth_details()
    if json_output:
        print_json(values)
        return
    tasks = metric_tasks()
    table = Table(title=f"ground truth, snapshot {dataset.snapshot[:12]}", show_edge=False)
    for column in ("task", "value", "unit", "tolerance"):
        table.add_column(column, justify="right" if column != "task" else "left")
    for name, value in values.model_dump().items():
        task = tasks[name]
        table.add_row(name, f"{value:,}", task.unit, f"±{task.tolerance:g}")
    console.print(table)
    console.print(
        f"{details.active_users:,} of {details.users:,} users active "
        f"(latest usage {details.latest_usage_at}); "
        f"{details.churned_orgs} of {details.orgs_with_users} orgs with users churned"
    )
    if dataset.diagnosis is not None:
        console.print(
            f"these are the values the app database reports; injected bug "
            f"{dataset.diagnosis.bug!r} moved {', '.join(dataset.diagnosis.affected_metrics)}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
