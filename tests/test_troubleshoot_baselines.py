"""Baselines of the troubleshooting gym, through the CLI and the harness."""

from __future__ import annotations

import ast
import inspect
import json

import pytest
from typer.testing import CliRunner

import stackgym
from stackgym.cli import app
from stackgym.core import ResultStore, make_agent, run_episode
from stackgym.envs.troubleshoot import baselines
from stackgym.harness.experiment import run_experiment
from stackgym.harness.spec import load_spec
from troubleshoot_helpers import BUGS, SANDBOXES, prebuild_all


@pytest.fixture(scope="module", autouse=True)
def built():
    prebuild_all()


def play(agent: str, seed: int = 0, **options):
    env = stackgym.make("troubleshoot", **options)
    try:
        return run_episode(env, make_agent(agent, "troubleshoot"), seed=seed)
    finally:
        env.close()


@pytest.mark.parametrize("sandbox", SANDBOXES)
@pytest.mark.parametrize("bug", BUGS)
def test_stackgym_run_oracle_passes_every_sandbox_and_bug(sandbox, bug):
    args = [
        "run",
        "troubleshoot",
        "--sandbox",
        sandbox,
        "--bug",
        bug,
        "--agent",
        "oracle",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["pass_rate"] == 1.0 and summary["actions_before_diagnosis"] == 3
    assert summary["unnecessary_exploration_rate"] == 0.0


def test_heuristic_finds_every_bug_and_needs_more_actions_in_the_warehouse():
    actions = {}
    for bug in BUGS:
        for sandbox in SANDBOXES:
            episode = play("heuristic", sandbox=sandbox, bug=bug)
            grade = episode.steps[-1].info["grade"]
            assert episode.outcome["passed"], (sandbox, bug, grade["reasons"])
            actions[sandbox, bug] = episode.outcome["metrics"]["actions_before_diagnosis"]
        assert actions["troubleshoot-warehouse", bug] > actions["troubleshoot-orm", bug], bug


@pytest.mark.parametrize("data_seed", [1, 2])
def test_heuristic_reads_the_evidence_not_the_answer_on_other_snapshots(data_seed):
    for bug in BUGS:
        episode = play("heuristic", bug=bug, data_seed=data_seed, scale=0.3)
        grade = episode.steps[-1].info["grade"]
        assert episode.outcome["passed"], (bug, data_seed, grade["reasons"])


def test_heuristic_code_never_touches_the_ground_truth():
    tree = ast.parse(inspect.getsource(baselines.HeuristicAgent))
    touched = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    forbidden = {
        "injected_bug",
        "truth",
        "_truth",
        "spec",
        "_facts",
        "dataset_for",
        "affected_rows",
        "sample_ids",
        "etl_log",
        "summary",
    }
    assert not (touched | names) & forbidden
    assert "env" not in {
        n.value.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }  # it never reads the env's state


def test_oracle_keeps_a_turn_for_the_diagnosis_under_a_tight_budget():
    episode = play("oracle", max_turns=2, bug="missing_mapping")
    assert episode.outcome["passed"] and len(episode.steps) == 2
    assert episode.steps[-1].action["type"] == "submit_diagnosis"


def test_random_is_reproducible_per_seed_and_always_ends():
    first = play("random", seed=5, sandbox="troubleshoot-warehouse")
    again = play("random", seed=5, sandbox="troubleshoot-warehouse")
    assert [s.action for s in first.steps] == [s.action for s in again.steps]
    assert first.terminated or first.truncated
    assert len(first.steps) <= 20


def test_quick_preset_runs_the_troubleshoot_experiment_through_the_harness(tmp_path):
    spec = {e.name: e for e in load_spec("quick").experiments}["quick-troubleshoot"]
    outcome = run_experiment(spec, tmp_path / "quick")
    records = list(ResultStore(outcome.folder).records())
    assert len(records) == 12 and all(r.status == "completed" for r in records)
    by = {(r.condition, r.model, r.repeat): r for r in records}
    for condition in SANDBOXES:
        assert by[condition, "oracle", 0].passed and by[condition, "heuristic", 0].passed
    orm = by["troubleshoot-orm", "heuristic", 0].metrics["actions_before_diagnosis"]
    warehouse = by["troubleshoot-warehouse", "heuristic", 0].metrics["actions_before_diagnosis"]
    assert warehouse > orm
    assert len({r.data_snapshot for r in records}) == 1  # both sandboxes, one bugged snapshot
