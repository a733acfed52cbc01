"""``stackgym eval``: Stack Doctor's metrics on the command line, and the command on any env."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stackgym.cli import app
from stackgym.core import ResultStore, TraceStore
from stackgym.core.agents import register_agent
from stackgym.core.registry import register, registry
from stackgym.envs.stack_doctor.metrics import summarise

ISSUE_METRICS = {
    "fix_accuracy",
    "rc_accuracy",
    "avg_steps",
    "avg_reward",
    "evidence_precision",
    "justification_pass_rate",
    "bad_intervention_rate",
}


def stackgym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackgym", *args], capture_output=True, text=True, timeout=300
    )


def test_eval_json_puts_the_metric_names_at_top_level():
    result = stackgym(
        "eval", "stack_doctor", "--mode", "blind_diagnosis", "--split", "eval",
        "--agent", "heuristic", "--episodes", "20", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) >= ISSUE_METRICS
    assert summary["episodes"] == 20
    assert summary["options"] == {"mode": "blind_diagnosis", "split": "eval"}
    assert summary["agent"] == "heuristic"
    assert 0.5 <= summary["fix_accuracy"] <= 1.0


def test_eval_out_keeps_traces_that_reproduce_the_printed_metrics(tmp_path):
    runner = CliRunner()
    args = ["eval", "stack_doctor", "--mode", "root_cause_visible", "--split", "eval"]
    result = runner.invoke(
        app, [*args, "--agent", "random", "-n", "25", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    from_traces = summarise(
        [e.outcome["metrics"] for e in TraceStore(tmp_path / "traces").episodes()]
    )
    from_results = summarise([r.metrics for r in ResultStore(tmp_path).records()])
    for name in ISSUE_METRICS:
        assert from_traces[name] == printed[name] == from_results[name]


def test_eval_table_plays_every_baseline_in_both_modes():
    result = CliRunner().invoke(
        app,
        ["eval", "stack_doctor", "--split", "eval", "--table", "-n", "10",
         "--metrics", "fix_accuracy,rc_accuracy,avg_reward"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].split("|")[1:-1] == [
        " mode ", " split ", " agent ", " episodes ", " fix_accuracy ", " rc_accuracy ",
        " avg_reward ",
    ]  # fmt: skip
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]]
    assert [(r[0], r[2]) for r in rows] == [
        (mode, agent)
        for mode in ("blind_diagnosis", "root_cause_visible")
        for agent in ("heuristic", "oracle", "random")
    ]
    oracle = [r for r in rows if r[2] == "oracle"]
    assert all(r[4] == "100.0 %" for r in oracle)
    assert next(r for r in rows if r[0] == "root_cause_visible")[5] == "–"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--agent", "psychic"], "heuristic"),
        (["--mode", "easy"], "root_cause_visible"),
        (["--metrics", "happiness"], "fix_accuracy"),
        (["--scenario", "no-such-incident"], "ag-capability-list"),
    ],
)
def test_eval_refuses_bad_input_with_what_is_valid(args, fragment):
    result = CliRunner().invoke(app, ["eval", "stack_doctor", "-n", "2", *args])
    assert result.exit_code == 2
    assert fragment in result.output


@pytest.fixture
def lockbox():
    register("lockbox-eval", "toy_env:Lockbox", choices={"guesses": ("1", "3")})
    register_agent("lockbox-eval", "solver", "test_cli:SolveFromReveals")
    yield "lockbox-eval"
    registry.remove("lockbox-eval")


def test_eval_works_on_any_registered_env(lockbox):
    result = CliRunner().invoke(
        app, ["eval", lockbox, "--guesses", "3", "--agent", "solver", "-n", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pass_rate"] == 1.0 and summary["episodes"] == 4
    assert summary["mean_reward"] == pytest.approx(1.0 - 0.3)
