"""The metrics environment: protocol, tools, turn budget, lint window, drift, metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import stackgym
from sandbox_helpers import DEFAULT, LAG, MAPPING, expected, prebuild_all
from stackgym.core import UnknownNameError, check_env, make_agent, run_episode
from stackgym.core.errors import ConfigError
from stackgym.data import DatasetSpec, metric_tasks
from stackgym.envs.metrics.models import DRIFTS, TASKS
from stackgym.sandboxes import LAYERS, get_sandbox

STRING_MATH = get_sandbox("warehouse-dbt").find("naive/arpu_string_timestamp_math.sql")
REQUIRED_METRICS = {
    "score",
    "runtime",
    "output",
    "schema",
    "tool_usage",
    "expected",
    "actual",
    "context_files_read",
    "context_files_total",
    "touched_app_surface",
    "touched_warehouse_surface",
    "cross_layer",
    "turns",
    "lint_turns",
} | {f"reads_{layer}" for layer in LAYERS}


@pytest.fixture(scope="module", autouse=True)
def built():
    """Every sandbox of the snapshots these tests use, built once (one dbt run each)."""
    prebuild_all()


def oracle_text(sandbox: str, task: str) -> str:
    return get_sandbox(sandbox).oracle_file(task).read_text()


@pytest.fixture
def make():
    made = []

    def factory(**options):
        env = stackgym.make("metrics", **options)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


def test_registered_choices_match_the_dataset_and_catalog():
    spec = stackgym.registry["metrics"]
    assert spec.choices["task"] == tuple(metric_tasks())
    assert spec.choices["drift"] == DRIFTS
    assert set(spec.choices["sandbox"]) >= {"app-drizzle", "warehouse-dbt-realistic"}
    assert tuple(metric_tasks()) == TASKS


def test_reset_gives_prompts_tools_and_answer_path(make):
    env = make(sandbox="warehouse-dbt-fair", task="org_churn_rate")
    observation, info = env.reset(seed=0)
    assert observation.tools == ["read_file", "write_file", "list_files", "done"]
    assert observation.answer_path == "models/metrics/org_churn_rate.sql"
    assert metric_tasks()["org_churn_rate"].definition in observation.text
    assert "{{ ref('model') }}" in observation.text  # dbt syntax survives the template
    assert observation.system_prompt and observation.text.startswith(observation.system_prompt)
    assert observation.turns_left == 10
    assert info["data_snapshot"] == env.state.data_snapshot
    assert info["context_files"] == get_sandbox("warehouse-dbt-fair").manifest.context_files
    assert "expected" not in info  # nothing an agent could read gives the answer away


def test_extra_tools_are_on_only_when_configured(make):
    plain = make(sandbox="warehouse-dbt")
    plain.reset(seed=0)
    refused = plain.step({"type": "run_sql", "sql": "select 1"})
    assert "unknown action type" in refused.info["invalid_action"]
    extended = make(sandbox="warehouse-dbt", tools="run_sql,lint")
    observation, _ = extended.reset(seed=0)
    assert observation.tools[-2:] == ["run_sql", "lint"]
    assert [t["function"]["name"] for t in extended.tools()][-2:] == ["run_sql", "lint"]


def test_the_episode_seed_never_changes_the_data_snapshot(make):
    env = make(sandbox="warehouse-dbt")
    first, _ = env.reset(seed=0)
    snapshot = env.data_snapshot
    again, _ = env.reset(seed=12345)
    assert env.data_snapshot == snapshot
    assert again.text == first.text
    other = make(sandbox="warehouse-dbt", data_seed=LAG.seed, scale=LAG.scale, drift=LAG.drift)
    other.reset(seed=0)
    assert other.data_snapshot != snapshot


def test_oracle_episode_in_the_realistic_sandbox_crosses_layers(make):
    env = make(sandbox="warehouse-dbt-realistic", task="avg_org_ltv")
    episode = run_episode(env, make_agent("oracle", "metrics"), seed=0)
    outcome = episode.outcome
    metrics = outcome["metrics"]
    assert outcome["passed"] is True and outcome["error"] is None
    assert set(metrics) >= REQUIRED_METRICS
    assert all(v is None or isinstance(v, (bool, int, float)) for v in metrics.values())
    assert metrics["score"] == 1.0 and metrics["tool_usage"] == 1.0
    assert metrics["expected"] == expected(DEFAULT, "avg_org_ltv") == metrics["actual"]
    assert metrics["reads_orm_schema"] == 1 and metrics["reads_app_code"] == 1
    assert metrics["reads_dbt_staging"] == 4 and metrics["reads_dbt_docs"] == 2
    assert metrics["touched_app_surface"] and metrics["touched_warehouse_surface"]
    assert metrics["cross_layer"] is True
    assert metrics["turns"] == 10 == len(episode.steps)


def test_each_step_records_the_files_and_their_layers(make):
    env = make(sandbox="app-drizzle", task="avg_org_ltv")
    env.reset(seed=0)
    read = env.step({"type": "read_file", "path": "src/db/schema.ts"})
    assert read.info["accesses"] == [
        {"op": "read", "path": "src/db/schema.ts", "layer": "orm_schema"}
    ]
    assert 'sqliteTable("users"' in read.observation.text
    listed = env.step({"type": "list_files", "path": "src"})
    assert listed.info["accesses"][0]["op"] == "list"
    assert "src/db/client.ts" in listed.observation.text
    written = env.step({"type": "write_file", "path": "src/metrics/avg_org_ltv.ts", "content": "x"})
    assert written.info["accesses"][0] == {
        "op": "write",
        "path": "src/metrics/avg_org_ltv.ts",
        "layer": "app_code",
    }
    escape = env.step({"type": "read_file", "path": "../../etc/passwd"})
    assert "outside the sandbox root" in escape.observation.error
    assert not escape.terminated and escape.observation.turn == 4


def test_run_sql_answers_queries_and_attributes_them_to_layers(make):
    env = make(sandbox="warehouse-dbt-realistic", tools=["run_sql"])
    env.reset(seed=0)
    staged = env.step({"type": "run_sql", "sql": "select count(*) from stg_app_users"})
    assert "1200" in staged.observation.text
    assert staged.info["layers"] == ["dbt_staging"]
    app = env.step({"type": "run_sql", "sql": "select count(*) from users", "database": "app"})
    assert app.info["layers"] == ["app_db"] and "1200" in app.observation.text
    hostile = env.step({"type": "run_sql", "sql": "select * from read_csv('/etc/passwd')"})
    assert hostile.observation.error and "disabled by configuration" in hostile.observation.error
    wrong_db = env.step({"type": "run_sql", "sql": "select 1", "database": "nope"})
    assert "no database 'nope'" in wrong_db.observation.error
    metrics = env.step({"type": "done"}).info["outcome"]["metrics"]
    assert metrics["sql_queries"] == 3 and metrics["tool_errors"] == 2
    assert metrics["reads_app_db"] == 1 and metrics["reads_dbt_staging"] == 1
    assert metrics["cross_layer"] is True


def test_the_turn_budget_ends_the_episode_and_grades_the_answer_as_it_stands(make):
    env = make(sandbox="warehouse-dbt-cast", task="org_churn_rate", max_turns=2)
    env.reset(seed=0)
    first = env.step(
        {
            "type": "write_file",
            "path": "models/metrics/org_churn_rate.sql",
            "content": oracle_text("warehouse-dbt-cast", "org_churn_rate"),
        }
    )
    assert not first.truncated and first.observation.turns_left == 1
    last = env.step({"type": "list_files"})
    assert last.truncated and not last.terminated
    assert last.info["outcome"]["passed"] is True
    assert last.info["outcome"]["metrics"]["max_turns_reached"] is True
    assert "turn budget (2) is used up" in last.observation.text
    after = env.step({"type": "done"})
    assert after.truncated and "invalid_action" in after.info


def test_done_without_an_answer_fails_every_rubric_part_but_tool_usage(make):
    env = make(sandbox="app-typed", task="active_user_arpu")
    env.reset(seed=0)
    env.step({"type": "read_file", "path": "src/types.ts"})
    result = env.step({"type": "done"})
    outcome = result.info["outcome"]
    assert result.terminated and outcome["passed"] is False
    assert "src/metrics/active_user_arpu.ts was not written" in outcome["error"]
    metrics = outcome["metrics"]
    assert (metrics["runtime"], metrics["output"], metrics["schema"]) == (0.0, 0.0, 0.0)
    assert metrics["tool_usage"] == pytest.approx(1 / 3)
    assert result.reward == pytest.approx(metrics["score"]) == pytest.approx(1 / 12)


def test_the_answers_database_error_is_the_outcome_error_verbatim(make):
    env = make(sandbox="warehouse-dbt", task="active_user_arpu")
    env.reset(seed=0)
    env.step(
        {
            "type": "write_file",
            "path": "models/metrics/active_user_arpu.sql",
            "content": STRING_MATH.read_text(),
        }
    )
    result = env.step({"type": "done"})
    error = result.info["outcome"]["error"]
    assert error.startswith("Binder Error: No function matches the given name and argument types")
    assert "'-(VARCHAR, INTERVAL)'" in error
    assert result.info["grade"]["error_kind"] == "type"
    assert result.info["outcome"]["metrics"]["runtime"] == 0.0


def test_lint_policy_gives_one_fix_window(make):
    env = make(sandbox="warehouse-dbt", task="active_user_arpu", lint="lint")
    env.reset(seed=0)
    path = "models/metrics/active_user_arpu.sql"
    env.step({"type": "write_file", "path": path, "content": STRING_MATH.read_text()})
    linted = env.step({"type": "done"})
    assert not linted.terminated and linted.observation.fix_window == 3
    assert (
        "DuckDB EXPLAIN" in linted.observation.text
        and "-(VARCHAR, INTERVAL)" in linted.observation.text
    )
    assert linted.info["lint"]["ok"] is False
    env.step(
        {
            "type": "write_file",
            "path": path,
            "content": oracle_text("warehouse-dbt", "active_user_arpu"),
        }
    )
    final = env.step({"type": "done"})
    assert final.terminated and final.info["outcome"]["passed"] is True
    assert final.info["outcome"]["metrics"]["lint_turns"] == 2
    assert final.info["outcome"]["metrics"]["turns"] == 4


def test_the_fix_window_closes_after_three_turns_and_grades(make):
    env = make(sandbox="warehouse-dbt", task="active_user_arpu", lint="lint", max_turns=2)
    env.reset(seed=0)
    path = "models/metrics/active_user_arpu.sql"
    env.step({"type": "write_file", "path": path, "content": STRING_MATH.read_text()})
    window = env.step({"type": "done"})
    assert window.observation.fix_window == 3 and not (window.terminated or window.truncated)
    for turn in range(3):
        result = env.step({"type": "read_file", "path": "README.md"})
        assert result.terminated == (turn == 2)
    assert result.info["outcome"]["passed"] is False
    assert result.info["outcome"]["metrics"]["lint_turns"] == 3
    assert "-(VARCHAR, INTERVAL)" in result.info["outcome"]["error"]


def test_clean_answers_pass_lint_without_a_window(make):
    env = make(sandbox="app-typed", task="org_churn_rate", lint="lint", tools=["lint"])
    env.reset(seed=0)
    path = "src/metrics/org_churn_rate.ts"
    env.step({"type": "write_file", "path": path, "content": "export const x: number = 'text';\n"})
    report = env.step({"type": "lint"})
    assert "error TS" in report.observation.text and not report.terminated
    env.step(
        {
            "type": "write_file",
            "path": path,
            "content": oracle_text("app-typed", "org_churn_rate"),
        }
    )
    final = env.step({"type": "done"})
    assert final.terminated and final.info["outcome"]["passed"] is True
    assert final.info["outcome"]["metrics"]["lint_turns"] == 0


def test_drift_changes_the_expected_value_and_the_oracle_follows(make):
    env = make(sandbox="warehouse-dbt-fair", task="active_user_arpu")
    for drifted in (LAG, MAPPING):
        options = {"data_seed": drifted.seed, "scale": drifted.scale, "drift": drifted.drift}
        _, info = env.reset(seed=0, options=options)
        assert info["dataset"]["drift"] == drifted.drift
        env.step(
            {
                "type": "write_file",
                "path": "models/metrics/active_user_arpu.sql",
                "content": oracle_text("warehouse-dbt-fair", "active_user_arpu"),
            }
        )
        result = env.step({"type": "done"})
        undrifted = DatasetSpec(seed=drifted.seed, scale=drifted.scale)
        assert result.info["expected"] == expected(drifted, "active_user_arpu")
        assert result.info["expected"] != expected(undrifted, "active_user_arpu")
        assert result.info["outcome"]["passed"] is True


def test_invalid_actions_use_a_turn_and_say_what_is_valid(make):
    env = make(sandbox="warehouse-dbt", max_turns=3)
    env.reset(seed=0)
    result = env.step("{not json")
    assert "not valid JSON" in result.observation.error
    assert result.observation.turn == 1 and "read_file" in result.info["invalid_action"]
    env.step({"type": "read_file"})
    last = env.step({"type": "nope"})
    assert last.truncated and last.info["outcome"]["metrics"]["invalid_actions"] == 3


def test_bad_options_are_refused_with_a_hint(make):
    with pytest.raises(UnknownNameError) as caught:
        stackgym.make("metrics", sandbox="warehouse-nope")
    assert "warehouse-dbt-fair" in caught.value.hint
    with pytest.raises(ConfigError, match="tools"):
        stackgym.make("metrics", tools="bash")
    with pytest.raises(ConfigError, match="max_turns"):
        stackgym.make("metrics", max_turns=0)
    with pytest.raises(ConfigError) as seed:
        stackgym.make("metrics", seed=3)
    assert "data_seed" in seed.value.hint
    env = make(sandbox="warehouse-dbt")
    with pytest.raises(ConfigError, match="cannot change per episode"):
        env.reset(seed=0, options={"max_turns": 3})


@pytest.mark.parametrize(
    "options",
    [
        {"sandbox": "warehouse-dbt-documented"},
        {"sandbox": "app-typed", "lint": "lint", "tools": ["run_sql", "lint"]},
    ],
)
def test_check_env_passes(options):
    report = check_env("metrics", options)
    assert report.ok, [(f.name, f.detail) for f in report.failures()]


def test_heuristic_reads_everything_but_computes_the_wrong_value(make):
    env = make(sandbox="app-drizzle", task="avg_org_ltv")
    episode = run_episode(env, make_agent("heuristic", "metrics"), seed=0)
    metrics = episode.outcome["metrics"]
    assert episode.outcome["passed"] is False
    assert metrics["tool_usage"] == 1.0 and metrics["runtime"] == 1.0
    assert metrics["actual"] != metrics["expected"]


def test_random_agent_stays_within_the_budget(make):
    env = make(sandbox="warehouse-dbt-cast", max_turns=6, tools=["run_sql"])
    for seed in range(3):
        episode = run_episode(env, make_agent("random", "metrics"), seed=seed)
        assert 1 <= len(episode.steps) <= 6
        assert episode.outcome["passed"] is False


def test_stackgym_run_oracle_passes_from_the_command_line():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackgym",
            "run",
            "metrics",
            "--sandbox",
            "app-typed",
            "--task",
            "org_churn_rate",
            "--agent",
            "oracle",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["pass_rate"] == 1.0 and summary["score"] == 1.0
