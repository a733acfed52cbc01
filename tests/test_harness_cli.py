"""`stackgym experiment …` and `stackgym run` with the harness underneath."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from harness_env import register_vault
from stackgym.agents.fake_provider import ChatRequest, FakeProvider, Reply
from stackgym.cli import app
from stackgym.core import ResultStore
from stackgym.core.registry import registry


@pytest.fixture(scope="module", autouse=True)
def vault():
    yield register_vault()
    registry.remove("vault")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def spec_file(tmp_path, **changes):
    spec = {
        "name": "cli-vault",
        "env": "vault",
        "factor": "room",
        "conditions": ["north", "south"],
        "tasks": ["open"],
        "models": ["oracle", "wrong"],
        "runs": 2,
        "max_turns": 3,
    }
    spec.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_experiment_list_shows_every_preset():
    result = invoke("experiment", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"architecture-all", "dbt-realistic-pregate", "post1-validation", "quick"}
    (post1,) = rows["post1-validation"]["experiments"]
    assert post1["conditions"] == ["app-drizzle", "warehouse-dbt-fair"] and post1["runs"] == 5
    table = invoke("experiment", "list")
    assert table.exit_code == 0 and "post1-validation" in table.stdout


def test_experiment_show_prints_resolved_settings_and_parity(tmp_path):
    result = invoke("experiment", "show", spec_file(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["parity"]["ok"] is True and shown["planned_runs"] == 8
    assert shown["conditions"]["south"] == shown["conditions"]["north"] | {"room": "south"}
    text = invoke("experiment", "show", spec_file(tmp_path))
    assert "parity ok" in text.stdout and "max_turns" in text.stdout


def test_experiment_show_names_the_fields_that_break_parity(tmp_path):
    path = spec_file(
        tmp_path, conditions=["north", {"name": "south", "overrides": {"max_turns": 9}}]
    )
    result = invoke("experiment", "show", path)
    assert result.exit_code == 1
    assert "parity broken: max_turns (north: 3, south: 9)" in " ".join(result.stdout.split())
    refused = invoke("experiment", "run", path, "--out", str(tmp_path / "out"))
    assert refused.exit_code == 2 and "breaks parity" in refused.stderr
    assert not (tmp_path / "out").exists()


def test_experiment_run_json_summary_and_resume(tmp_path):
    out = tmp_path / "out"
    first = invoke("experiment", "run", spec_file(tmp_path), "--out", str(out), "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["status"] == "finished" and summary["planned"] == summary["completed"] == 8
    assert summary["by_condition"]["north"] == {
        "runs": 4,
        "passed": 2,
        "judged": 4,
        "infra_errors": 0,
        "pass_rate": 0.5,
    }
    assert "cli-vault" in first.stderr and "parity ok" in first.stderr  # the spec, printed at start
    again = invoke("experiment", "run", spec_file(tmp_path), "--out", str(out))
    assert again.exit_code == 0 and "8 already done (resuming)" in again.stderr


def test_experiment_run_of_an_unknown_preset_lists_presets():
    result = invoke("experiment", "run", "post9")
    assert result.exit_code == 2
    assert "unknown preset 'post9'" in result.stderr and "post1-validation" in result.stderr


def lockpick(request: ChatRequest) -> Reply:
    results = [
        m["content"]
        for m in request.messages
        if m["role"] == "tool" and m["content"].startswith("digit")
    ]
    if len(results) < 3:
        return Reply.tool("reveal", {"position": len(results)})
    return Reply.tool("guess", {"code": "".join(r[-1] for r in results)})


def test_run_with_an_llm_agent_prints_the_contract_summary(tmp_path, monkeypatch):
    with FakeProvider(lockpick, cost_per_token=1e-6) as provider:
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        args = ["run", "vault", "--room", "south", "--max-turns", "6", "--agent", "openai:m"]
        result = invoke(
            *args, "-n", "3", "-c", "3", "--seed", "2", "--out", str(tmp_path), "--json"
        )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["episodes"] == 3 and summary["passed"] == 3 and summary["pass_rate"] == 1.0
    assert summary["mean_steps"] == 4.0 and summary["mean_reward"] == pytest.approx(1.0 - 0.3)
    assert summary["turns"] == 4.0  # the env's own metric, at top level
    assert summary["tokens"] > 0 and summary["cost_usd"] > 0 and summary["infra_errors"] == 0
    records = list(ResultStore(tmp_path).records())
    assert len(records) == 3 and all(r.run_id for r in records)
    assert {r.seed for r in records} == {2, 3, 4}


def test_run_with_a_refused_key_reports_infra_errors_not_failures(tmp_path, monkeypatch):
    with FakeProvider(lockpick, api_key="sk-right") as provider:
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        result = invoke("run", "vault", "--agent", "openai:m", "-n", "2", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["infra_errors"] == 2 and summary["episodes"] == 0
    assert summary["passed"] == 0 and summary["pass_rate"] is None


def test_run_with_llm_agent_and_no_key_fails_before_running(monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    result = invoke("run", "vault", "--agent", "openrouter:x-ai/grok-code-fast-1")
    assert result.exit_code == 2 and "OPENROUTER_API_KEY is not set" in result.stderr
