"""Experiments against a served env (`--env-url`) play exactly as in-process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from serve_harness import running_server
from stackgym.cli import app
from stackgym.core import Agent, ResultStore
from stackgym.core.agents import register_agent, unregister_agent
from stackgym.harness.experiment import run_experiment
from stackgym.harness.spec import ExperimentSpec
from stackgym.serve import ServeConfig


class ReadsOnlyObservations(Agent):
    """Inspects the logs, then submits the root cause the logs point at by keyword.

    It reads nothing but observations, as an LLM would, so it can play remotely.
    """

    name = "reads-observations"

    def reset(self, env, observation, info):
        self.inspected = False

    def act(self, observation):
        if not self.inspected:
            self.inspected = True
            return {"type": "inspect", "target": "logs"}
        text = observation.text.lower()
        guess = (
            ("memory_oom", "tune_memory_config")
            if "memory" in text
            else ("driver_compat", "update_driver_config")
        )
        return {
            "type": "submit",
            "root_cause": guess[0],
            "fix": guess[1],
            "justification": "chosen from what the logs said",
        }


@pytest.fixture(scope="module", autouse=True)
def observation_agent():
    """Registered only while this module runs: `eval --table` elsewhere plays every agent."""
    register_agent(
        "stack_doctor", "reads-observations", "test_harness_remote:ReadsOnlyObservations"
    )
    yield
    unregister_agent("stack_doctor", "reads-observations")


@pytest.fixture(scope="module")
def server_url():
    with running_server(ServeConfig(envs=[{"env_id": "stack_doctor"}])) as url:
        yield url


def spec(**extra) -> ExperimentSpec:
    return ExperimentSpec(
        name="remote",
        env="stack_doctor",
        factor="mode",
        conditions=["blind_diagnosis", "root_cause_visible"],
        options={"split": "eval"},
        models=["reads-observations"],
        runs=4,
        concurrency=3,
        **extra,
    )


def outcomes(folder) -> list[tuple[str, float, bool | None, int]]:
    return sorted((r.run_id, r.reward, r.passed, r.turns) for r in ResultStore(folder).records())


def test_experiment_against_a_served_env_matches_in_process(server_url, tmp_path):
    run_experiment(spec(), tmp_path / "local")
    run_experiment(spec(env_url=server_url), tmp_path / "remote")
    local, remote = outcomes(tmp_path / "local"), outcomes(tmp_path / "remote")
    assert len(remote) == 8
    assert remote == local
    recorded = json.loads((tmp_path / "remote" / "experiment.json").read_text())
    assert recorded["spec"]["env_url"] == server_url


def test_run_command_env_url_gives_the_same_summary(server_url):
    args = ["run", "stack_doctor", "--mode", "root_cause_visible", "--split", "eval"]
    args += ["--agent", "reads-observations", "-n", "5", "--json"]
    local = CliRunner().invoke(app, args)
    remote = CliRunner().invoke(app, [*args, "--env-url", server_url])
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_env_url_with_nothing_listening_is_a_clear_error():
    result = CliRunner().invoke(
        app,
        ["run", "stack_doctor", "--agent", "reads-observations", "--env-url", "http://127.0.0.1:9"],
    )
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output


def test_env_url_must_be_a_url():
    with pytest.raises(ValueError, match="env_url"):
        spec(env_url="localhost:8000")
