"""The command line, run as a user runs it (a real subprocess) where it matters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stackgym.cli import app
from stackgym.core import Agent, ResultStore, TraceStore
from stackgym.core.agents import register_agent
from stackgym.core.registry import register, registry
from stackgym.data import Dataset


def stackgym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackgym", *args], capture_output=True, text=True, timeout=300
    )


def test_generate_then_truth_json_prints_the_three_metrics(tmp_path):
    out = tmp_path / "data"
    generated = stackgym("data", "generate", "--seed", "2", "--scale", "0.5", "--out", str(out))
    assert generated.returncode == 0, generated.stderr
    assert "snapshot" in generated.stdout
    truth = stackgym("data", "truth", str(out), "--json")
    assert truth.returncode == 0, truth.stderr
    values = json.loads(truth.stdout)
    assert set(values) == {"active_user_arpu", "org_churn_rate", "avg_org_ltv"}
    assert values == Dataset.open(out).truth().model_dump()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--scale", "0"], "scale: Input should be greater than 0"),
        (["--scale", "-3"], "scale: Input should be greater than 0"),
        (["--anchor", "last tuesday"], "cannot parse anchor 'last tuesday'"),
        (["--drift", "solar-flare"], "'solar-flare' is not one of"),
    ],
)
def test_bad_generate_options_exit_2_with_a_message(tmp_path, args, fragment):
    result = stackgym("data", "generate", "--out", str(tmp_path / "d"), *args)
    assert result.returncode == 2
    assert fragment in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_truth_on_a_folder_that_is_not_a_dataset_says_so(tmp_path):
    result = stackgym("data", "truth", str(tmp_path))
    assert result.returncode == 2
    assert "dataset.json is missing" in result.stderr


def test_truth_names_a_missing_table_file(tmp_path):
    out = tmp_path / "d"
    assert stackgym("data", "generate", "--scale", "0.1", "--out", str(out)).returncode == 0
    (out / "invoices.parquet").unlink()
    result = stackgym("data", "truth", str(out))
    assert result.returncode == 2
    assert "invoices.parquet" in result.stderr


def test_every_command_has_help():
    for args in (["--help"], ["data", "--help"], ["data", "generate", "--help"], ["run", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output


class SolveFromReveals(Agent):
    name = "solver"

    def act(self, observation):
        if len(observation.revealed) < 3:
            return {"type": "reveal", "position": len(observation.revealed)}
        return {
            "type": "guess",
            "code": "".join(str(observation.revealed[str(i)]) for i in range(3)),
        }


@pytest.fixture
def lockbox():
    register("lockbox-run", "toy_env:Lockbox", choices={"guesses": ("1", "3")})
    register_agent("lockbox-run", "solver", "test_cli:SolveFromReveals")
    yield "lockbox-run"
    registry.remove("lockbox-run")


def test_run_json_summary_and_resume_without_duplicates(lockbox, tmp_path):
    runner = CliRunner()
    args = ["run", lockbox, "--guesses", "2", "--agent", "solver", "-n", "3", "--seed", "4"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path), "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["episodes"] == 3 and summary["passed"] == 3 and summary["pass_rate"] == 1.0
    assert summary["mean_steps"] == 4.0
    assert summary["mean_reward"] == pytest.approx(1.0 - 0.3)
    again = runner.invoke(
        app, [*[a if a != "3" else "5" for a in args], "--out", str(tmp_path), "--json"]
    )
    assert json.loads(again.stdout)["skipped_already_done"] == 3
    records = list(ResultStore(tmp_path).records())
    assert len(records) == 5 and len({r.run_id for r in records}) == 5
    assert all(r.settings == {"guesses": 2} for r in records)
    assert [e.seed for e in TraceStore(tmp_path / "traces").episodes()] == [4, 5, 6, 7, 8]


def test_run_with_unknown_agent_lists_the_known_ones(lockbox):
    result = CliRunner().invoke(app, ["run", lockbox, "--agent", "psychic"])
    assert result.exit_code == 2
    assert "solver" in result.output


def test_run_with_a_dangling_env_option_says_it_needs_a_value(lockbox):
    result = CliRunner().invoke(app, ["run", lockbox, "--agent", "solver", "--guesses"])
    assert result.exit_code == 2
    assert "needs a value" in result.output
