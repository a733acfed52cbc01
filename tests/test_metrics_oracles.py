"""Every (sandbox, task) is solvable, and the grader rejects plausible wrong answers.

The oracle answers and the naive answers are data files in the catalog. They
run for real (DuckDB after a real dbt build, Node.js + tsx, Python) on three
data snapshots: seed 0, seed 1 with stripe-lag drift, seed 2 with
missing-mapping drift. Expected values come from the foundation's reference
implementation, which shares no code with the answers.
"""

from __future__ import annotations

import pytest

from sandbox_helpers import SNAPSHOTS, TASKS, checkout, expected, prebuilt, write_answer
from stackgym.data import metric_tasks
from stackgym.envs.metrics.rubric import grade
from stackgym.sandboxes import get_sandbox, run_answer, sandbox_ids

FAILURE_KINDS = {
    "schema_error": {"schema"},
    "runtime_error": {"type", "runtime", "syntax", "timeout"},
}


WAREHOUSES = [s for s in sandbox_ids() if get_sandbox(s).manifest.answer.runtime == "sql"]


@pytest.mark.parametrize("name", list(SNAPSHOTS))
@pytest.mark.parametrize("sandbox_id", sandbox_ids())
def test_oracle_answers_pass_on_every_snapshot(name, sandbox_id):
    snapshot = prebuilt(name)
    sandbox = get_sandbox(sandbox_id)
    workspace = checkout(sandbox_id, snapshot)
    try:
        for task in TASKS:
            write_answer(workspace, task, sandbox.oracle_file(task).read_text())
            result = run_answer(workspace, task)
            truth = expected(snapshot, task)
            assert result.error is None, (sandbox_id, task, result.error)
            assert metric_tasks()[task].accepts(truth, result.value), (result.value, truth)
            scored = grade(result, metric_tasks()[task], truth, context_read=1, context_total=1)
            assert scored.passed and scored.score == 1.0
    finally:
        workspace.close()


# Code answers take a second or two each, so their naive answers run on the
# default snapshot; SQL answers are cheap and run on all three.
NAIVE_CASES = [("seed0", s) for s in sandbox_ids()] + [
    (name, s) for name in SNAPSHOTS if name != "seed0" for s in WAREHOUSES
]


@pytest.mark.parametrize(("name", "sandbox_id"), NAIVE_CASES)
def test_naive_answers_fail_the_way_the_catalog_says(name, sandbox_id):
    snapshot = prebuilt(name)
    sandbox = get_sandbox(sandbox_id)
    workspace = checkout(sandbox_id, snapshot)
    try:
        for naive, path in sandbox.naive_answers():
            write_answer(workspace, naive.task, path.read_text())
            result = run_answer(workspace, naive.task)
            truth = expected(snapshot, naive.task)
            scored = grade(
                result, metric_tasks()[naive.task], truth, context_read=1, context_total=1
            )
            assert not scored.passed, (sandbox_id, naive.file, result.value, truth)
            if naive.fails_with == "wrong_value":
                assert result.error is None and result.value is not None, (naive.file, result.error)
                assert scored.runtime == 1.0 and scored.schema == 1.0
            else:
                assert result.error_kind in FAILURE_KINDS[naive.fails_with], (
                    naive.file,
                    result.error_kind,
                    result.error,
                )
                assert scored.runtime == 0.0
                assert scored.schema == (0.0 if naive.fails_with == "schema_error" else 1.0)
    finally:
        workspace.close()


@pytest.mark.parametrize("name", list(SNAPSHOTS))
def test_string_timestamp_math_fails_only_where_staging_keeps_text(name):
    """The -(VARCHAR, INTERVAL) trap: the same SQL fails on warehouse-dbt, passes once cast."""
    snapshot = prebuilt(name)
    source = get_sandbox("warehouse-dbt").find("naive/arpu_string_timestamp_math.sql").read_text()
    truth = expected(snapshot, "active_user_arpu")
    outcomes = {}
    for sandbox_id in ("warehouse-dbt", "warehouse-dbt-documented", "warehouse-dbt-cast"):
        workspace = checkout(sandbox_id, snapshot)
        try:
            write_answer(workspace, "active_user_arpu", source)
            outcomes[sandbox_id] = run_answer(workspace, "active_user_arpu")
        finally:
            workspace.close()
    for plain in ("warehouse-dbt", "warehouse-dbt-documented"):
        assert "'-(VARCHAR, INTERVAL)'" in outcomes[plain].error
    assert metric_tasks()["active_user_arpu"].accepts(truth, outcomes["warehouse-dbt-cast"].value)
