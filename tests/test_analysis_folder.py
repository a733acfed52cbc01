"""What analysis added to the folder reader: results with their problems, outcome views, the design."""

from __future__ import annotations

import json

import pytest

from analysis_folders import make_run, seed002_runs, spec_data, write_experiment
from stackgym.core import TraceSchemaError
from stackgym.core.errors import DataError
from stackgym.core.results import ResultStore, RunOutcome, RunRecord
from stackgym.harness.folder import SUITE_FILE, ExperimentFolder, SuiteRecord, read_suite
from stackgym.harness.plan import design, plan_runs, run_id_for
from stackgym.harness.spec import parse_spec


def test_read_results_keeps_the_last_line_of_each_run_and_names_bad_lines(tmp_path):
    first = make_run("e", "a", "t", "m", 0, passed=None, status="infra_error", error="HTTP 401")
    second = make_run("e", "a", "t", "m", 1, passed=False)
    retried = make_run("e", "a", "t", "m", 0, passed=True)
    with ResultStore(tmp_path, durable=False) as store:
        store.write_many([first, second])
    with open(tmp_path / "results.jsonl", "a") as handle:
        handle.write("garbage\n")
    with ResultStore(tmp_path, durable=False) as store:
        store.write(retried)
    results = ExperimentFolder(tmp_path).read_results()
    assert [r.run_id for r in results.final] == [first.run_id, second.run_id]
    assert results.final[0] == retried and results.lines == 3 and results.superseded == 1
    (problem,) = results.problems
    assert problem.line == 3 and "not a valid results record" in problem.reason
    assert ExperimentFolder(tmp_path).final_records() == results.final


def test_the_outcome_view_reads_the_same_values_as_the_full_record(tmp_path):
    runs = seed002_runs()
    with ResultStore(tmp_path, durable=False) as store:
        store.write_many(runs)
    outcomes = ExperimentFolder(tmp_path).read_results(view=RunOutcome).final
    assert all(isinstance(o, RunOutcome) for o in outcomes)
    for run, outcome in zip(runs, outcomes, strict=True):
        assert outcome.model_dump() == run.model_dump(include=set(RunOutcome.model_fields))
    assert set(RunOutcome.model_fields) < set(RunRecord.model_fields)


def test_the_outcome_view_still_refuses_another_schema_version(tmp_path):
    line = json.loads(make_run("e", "a", "t", "m", 0, passed=True).model_dump_json())
    line["schema_version"] = 2
    (tmp_path / "results.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(TraceSchemaError, match="schema version 2"):
        ExperimentFolder(tmp_path).read_results(view=RunOutcome)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"runs": 3, "tasks": []},
        {
            "conditions": [
                "app-drizzle",
                {"name": "warehouse-dbt-fair", "overrides": {"runs": 2}},
            ]
        },
    ],
)
def test_the_design_lists_exactly_the_planned_runs(changes):
    spec = parse_spec(spec_data(**changes)).experiment
    cells = list(design(spec))
    assert len(cells) == len(set(cells))
    assert {run_id_for(spec.name, *cell) for cell in cells} == {p.run_id for p in plan_runs(spec)}


def test_read_suite_reads_suite_json_and_refuses_what_is_not_one(tmp_path):
    record = SuiteRecord(name="s", source="test", experiments={"a": "a"})
    (tmp_path / SUITE_FILE).write_text(record.model_dump_json())
    assert read_suite(tmp_path).experiments == {"a": "a"}
    with pytest.raises(DataError, match="not a suite folder"):
        read_suite(tmp_path / "missing")
    (tmp_path / SUITE_FILE).write_text('{"kind": "stackgym.suite"}')
    with pytest.raises(DataError, match="not a valid suite record"):
        read_suite(tmp_path)


def test_a_written_fixture_folder_reads_back_as_an_experiment(tmp_path):
    write_experiment(tmp_path, spec_data(), seed002_runs())
    folder = ExperimentFolder(tmp_path)
    assert folder.read().planned_runs == 90 and len(folder.final_records()) == 90
