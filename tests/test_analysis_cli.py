"""`stackgym report` on the command line, env summarisers, and folders of `stackgym run`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis_folders import (
    DRIZZLE,
    FAIR,
    make_run,
    pattern_runs,
    seed002_runs,
    spec_data,
    write_experiment,
)
from harness_env import register_vault
from stackgym.cli import app
from stackgym.core.registry import register, registry


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def post1(tmp_path):
    folder = tmp_path / "post1"
    write_experiment(folder, spec_data(), seed002_runs())
    return folder


def test_report_writes_its_files_to_the_default_folder_and_prints_a_summary(post1):
    result = invoke("report", post1, "--no-charts")
    assert result.exit_code == 0, result.output
    assert (post1 / "report" / "report.md").is_file() and (
        post1 / "report" / "summary.json"
    ).is_file()
    assert "app-drizzle: 9/45 (20.0%)" in result.stdout
    assert "warehouse-dbt-fair: 7/45 (15.6%)" in result.stdout
    assert "decision gate: FAIL" in result.stdout and "wrote" in result.stdout


def test_report_json_prints_exactly_summary_json(post1, tmp_path):
    result = invoke("report", post1, "--out", tmp_path / "out", "--json", "--no-charts")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert printed == written and printed["kind"] == "stackgym.report"


def test_report_of_a_missing_folder_exits_2_with_the_path(tmp_path):
    result = invoke("report", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "does not exist" in result.output and "nowhere" in result.output


def test_report_of_a_folder_without_runs_explains_what_it_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("report", tmp_path / "empty")
    assert result.exit_code == 2
    assert "holds no experiment.json, suite.json or results.jsonl" in result.output


def test_report_refuses_mixed_settings_on_the_command_line(post1, tmp_path):
    other = tmp_path / "other"
    write_experiment(
        other, spec_data(name="again", max_turns=12), pattern_runs("again", {DRIZZLE: 1, FAIR: 1})
    )
    result = invoke("report", post1, other, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "max_turns" in result.output
    assert not (tmp_path / "out" / "report.md").exists()


def test_a_bad_taxonomy_file_is_refused_before_anything_is_written(post1, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("schema_version: 1\ncategories: []\nrules: []\n")
    result = invoke("report", post1, "--taxonomy", rules, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "invalid taxonomy rules" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def tally_env():
    register("tally", "harness_env:Vault", metrics="analysis_folders:summarise_tally")
    yield "tally"
    registry.remove("tally")


def test_env_metrics_come_from_the_envs_registered_summariser(tmp_path, tally_env):
    runs = [
        make_run(
            "post1-validation", condition, "active_user_arpu", "oracle", repeat,
            passed=fixed, env_id=tally_env, metrics={"fixed": fixed, "steps": 4},
        )
        for condition, pattern in ((DRIZZLE, [1, 1, 0, 1]), (FAIR, [0, 1, 0, 0]))
        for repeat, fixed in enumerate(pattern)
    ]  # fmt: skip
    data = spec_data(env=tally_env, tasks=["active_user_arpu"], models=["oracle"], runs=4)
    write_experiment(tmp_path / "x", data, runs)
    result = invoke("report", tmp_path / "x", "--json", "--no-charts")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["sections"][0]["env_metrics"]
    assert metrics["summariser"] == "analysis_folders:summarise_tally" and metrics["note"] is None
    assert metrics["by_condition"][DRIZZLE] == {"fix_accuracy": 0.75, "steps_per_fix": 16 / 3}
    assert metrics["by_condition"][FAIR] == {"fix_accuracy": 0.25, "steps_per_fix": 16.0}
    text = (tmp_path / "x" / "report" / "report.md").read_text()
    assert "| fix_accuracy | 0.75 | 0.25 |" in text


def test_an_unregistered_env_gets_its_metrics_averaged_with_a_note(tmp_path):
    runs = [
        make_run(
            "post1-validation", condition, "active_user_arpu", "oracle", repeat,
            passed=bool(repeat), env_id="retired-env", metrics={"score": repeat / 2, "ok": bool(repeat)},
        )
        for condition in (DRIZZLE, FAIR)
        for repeat in range(3)
    ]  # fmt: skip
    data = spec_data(env="retired-env", tasks=["active_user_arpu"], models=["oracle"], runs=3)
    write_experiment(tmp_path / "x", data, runs)
    result = invoke("report", tmp_path / "x", "--json", "--no-charts")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["sections"][0]["env_metrics"]
    assert metrics["summariser"] == "stackgym.core.metrics:mean_of_metrics"
    assert "'retired-env' is not registered" in metrics["note"]
    assert metrics["by_condition"][DRIZZLE] == {"score": 0.5, "ok": pytest.approx(2 / 3)}


def test_a_folder_of_stackgym_run_is_reported_on_its_own(tmp_path):
    register_vault()
    try:
        played = invoke(
            "run",
            "vault",
            "--agent",
            "solver",
            "-n",
            "4",
            "--out",
            tmp_path / "runs",
            "--max-turns",
            "3",
        )
        assert played.exit_code == 0, played.output
        result = invoke("report", tmp_path / "runs", "--json")
    finally:
        registry.remove("vault")
    assert result.exit_code == 0, result.output
    (section,) = json.loads(result.stdout)["sections"]
    assert section["overall"]["runs"] == 4 and section["experiments"][0]["planned"] is None
    assert (
        section["overall"]["pass_rate"]["passed"] == 0
    )  # 3 turns cannot reveal 3 digits and guess
    assert any("no experiment.json" in note for note in section["notes"])
    assert section["gates"] == [] and section["comparisons"] == []
