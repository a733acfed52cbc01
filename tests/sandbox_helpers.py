"""Shared helpers of the sandbox and metrics tests (not a test module)."""

from __future__ import annotations

import functools
import os

from stackgym.data import DatasetSpec, dataset_for, metric_tasks
from stackgym.sandboxes import build_sandboxes, get_sandbox, sandbox_ids
from stackgym.sandboxes.workspace import Workspace

TASKS = tuple(metric_tasks())
#: The default snapshot, and two more seeds with each drift mode (smaller, so builds are quick).
DEFAULT = DatasetSpec()
LAG = DatasetSpec(seed=1, scale=0.5, drift="stripe-lag")
MAPPING = DatasetSpec(seed=2, scale=0.5, drift="missing-mapping")
SNAPSHOTS = {"seed0": DEFAULT, "seed1-stripe-lag": LAG, "seed2-missing-mapping": MAPPING}


def checkout(sandbox_id: str, spec: DatasetSpec = DEFAULT) -> Workspace:
    return get_sandbox(sandbox_id).build(spec).checkout()


def write_answer(workspace: Workspace, task: str, text: str) -> None:
    path = workspace.root / workspace.manifest.answer_path(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def expected(spec: DatasetSpec, task: str) -> float:
    """Ground truth from the foundation's reference implementation (no sandbox code)."""
    return float(getattr(dataset_for(spec).truth(), task))


@functools.cache
def prebuilt(name: str) -> DatasetSpec:
    """Snapshot ``name`` with every sandbox built: one dbt process for all its recipes.

    Tests that need builds call this first, so a test run starts dbt once per
    snapshot instead of once per sandbox (workers share the cache and its locks).
    """
    spec = SNAPSHOTS[name]
    build_sandboxes([get_sandbox(s) for s in sandbox_ids()], spec)
    return spec


def write_mock_api(dataset, out) -> None:
    """A ``build: custom`` database builder: the paid invoices as a mock billing API's store."""
    import sqlite3

    invoices = dataset.table("invoices")
    db = sqlite3.connect(out)
    db.execute("CREATE TABLE invoices (id TEXT PRIMARY KEY, amount_paid INTEGER, status TEXT)")
    db.executemany(
        "INSERT INTO invoices VALUES (?, ?, ?)",
        zip(
            invoices["id"].to_pylist(),
            invoices["amount_paid"].to_pylist(),
            invoices["status"].to_pylist(),
            strict=True,
        ),
    )
    db.commit()
    db.close()


def prebuild_all() -> None:
    """Build every snapshot, starting with a different one on each xdist worker.

    Workers then run dbt for different snapshots at the same time instead of
    one waiting on the other's locks.
    """
    names = list(SNAPSHOTS)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    shift = int(worker[2:]) if worker[2:].isdigit() else 0
    for name in names[shift % len(names) :] + names[: shift % len(names)]:
        prebuilt(name)
