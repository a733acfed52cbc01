"""The troubleshooting env: sandboxes, symptom, tools, bad input, ending, metrics."""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow.compute as pc
import pytest

import stackgym
from stackgym.agents.fake_provider import FakeProvider, Reply
from stackgym.agents.llm import LLMAgent, LLMSettings, Provider
from stackgym.core import TraceStore, UnknownNameError, check_env, run_episode
from stackgym.core.errors import ConfigError
from stackgym.data import DatasetSpec, dataset_for
from stackgym.envs.troubleshoot.metrics import metrics_from_trace, summarise
from stackgym.harness.spec import load_spec
from troubleshoot_helpers import BUGS, SANDBOXES, prebuild_all, prebuilt

SPEC = DatasetSpec(bug="idempotency")


@pytest.fixture(scope="module", autouse=True)
def built():
    """Every (sandbox, bug) of the default snapshot, built once (dbt once per bug)."""
    prebuild_all()


@pytest.fixture
def make():
    made = []

    def factory(**options):
        env = stackgym.make("troubleshoot", **options)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


def step(env, **action):
    return env.step(action)


def test_registered_choices_cover_both_sandboxes_and_every_bug_and_quick_preset_loads():
    spec = stackgym.registry["troubleshoot"]
    assert spec.choices == {
        "sandbox": ("troubleshoot-orm", "troubleshoot-warehouse"),
        "bug": ("idempotency", "missing_mapping", "schema_drift", "stale_status"),
    }
    quick = {e.name: e for e in load_spec("quick").experiments}["quick-troubleshoot"]
    assert (quick.env, quick.factor, quick.task_option) == ("troubleshoot", "sandbox", "bug")


def test_surface_maps_give_four_components_to_the_app_and_seven_to_the_warehouse():
    orm = set(prebuilt("troubleshoot-orm", "idempotency").files.values())
    warehouse = set(prebuilt("troubleshoot-warehouse", "idempotency").files.values())
    assert orm == {"app_code", "orm_schema", "app_db", "mock_api", "etl_log"}
    assert warehouse == orm | {"warehouse_raw", "dbt_staging", "dbt_marts", "dbt_docs"}


@pytest.mark.parametrize("bug", BUGS)
def test_symptom_states_the_bugged_metric_and_what_the_source_implies(make, bug):
    env = make(bug=bug)
    observation, info = env.reset(seed=0)
    spec = DatasetSpec(bug=bug)
    metric = info["symptom"]["metric"]
    reported = getattr(dataset_for(spec).truth(), metric)
    implied = getattr(dataset_for(spec.clean()).truth(), metric)
    assert reported != implied
    assert metric in dataset_for(spec).diagnosis.affected_metrics
    shown = (
        [f"${reported / 100:,.2f}", f"${implied / 100:,.2f}"]
        if metric != "org_churn_rate"
        else [f"{reported:.2%}", f"{implied:.2%}"]
    )
    assert all(value in observation.symptom for value in shown)
    assert observation.symptom in observation.text and "Today is 2026-01-01" in observation.text
    assert bug not in observation.text  # the bug type is for the harness, not the agent


def test_app_database_holds_the_bug_and_the_api_the_clean_objects(make):
    env = make(bug="idempotency")
    env.reset(seed=0)
    clean = dataset_for(SPEC.clean()).table("invoices").num_rows
    duplicates = dataset_for(SPEC).diagnosis.affected_rows
    app = step(env, type="query_db", sql="select count(*) as n from invoices")
    assert app.observation.result["rows"] == [[clean + duplicates]]
    api = step(env, type="check_api", resource="invoices", limit=1)
    assert api.observation.result["total_count"] == clean
    assert json.loads(api.observation.text.replace("\n", ""))["total_count"] == clean


def test_warehouse_replicates_the_bugged_app_database(make):
    env = make(sandbox="troubleshoot-warehouse", bug="schema_drift")
    env.reset(seed=0)
    nulls = dataset_for(DatasetSpec(bug="schema_drift")).diagnosis.affected_rows
    for sql in (
        "select count(*) - count(amount_paid) from raw.stripe_invoices",
        "select count(*) - count(amount_paid_cents) from staging.stg_stripe_invoices",
    ):
        result = step(env, type="query_db", database="warehouse", sql=sql)
        assert result.observation.result["rows"] == [[nulls]], result.observation.text
    app = step(env, type="query_db", sql="select count(*) - count(amount_paid) from invoices")
    assert app.observation.result["rows"] == [[nulls]]


def test_api_pages_like_stripe_newest_first_without_gaps_or_overlaps(make):
    env = make()
    env.reset(seed=0)
    window = {"created[gte]": "2025-11-20", "created[lt]": "2025-11-23"}
    seen, after = [], None
    while True:
        page = step(
            env,
            type="check_api",
            resource="invoices",
            filters=window,
            limit=30,
            starting_after=after,
        ).observation.result
        seen += page["data"]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    invoices = dataset_for(SPEC.clean()).table("invoices")
    created = invoices["created_at"].to_pylist()
    expected = sum(datetime(2025, 11, 20) <= t < datetime(2025, 11, 23) for t in created)
    assert len(seen) == len({i["id"] for i in seen}) == page["total_count"] == expected
    stamps = [(i["created"], i["id"]) for i in seen]
    assert stamps == sorted(stamps, reverse=True)


def test_api_lists_subscriptions_without_canceled_ones_unless_asked(make):
    env = make(bug="stale_status")
    env.reset(seed=0)
    status = dataset_for(DatasetSpec(bug="stale_status").clean()).table("subscriptions")["status"]
    canceled = pc.sum(pc.equal(status, "canceled")).as_py()
    default = step(env, type="check_api", resource="subscriptions", limit=1).observation.result
    every = step(
        env, type="check_api", resource="subscriptions", filters={"status": "all"}, limit=1
    ).observation.result
    only = step(
        env, type="check_api", resource="subscriptions", filters={"status": "canceled"}, limit=1
    ).observation.result
    assert every["total_count"] == len(status)
    assert default["total_count"] == len(status) - canceled
    assert only["total_count"] == canceled


def test_customers_carry_the_app_users_linked_to_them(make):
    env = make(bug="missing_mapping")
    env.reset(seed=0)
    bug = dataset_for(DatasetSpec(bug="missing_mapping")).diagnosis
    users = dataset_for(DatasetSpec(bug="missing_mapping").clean()).table("users")
    customer_of = dict(
        zip(users["id"].to_pylist(), users["stripe_customer_id"].to_pylist(), strict=True)
    )
    user = int(bug.sample_ids[0])
    app = step(env, type="query_db", sql=f"select stripe_customer_id from users where id = {user}")
    assert app.observation.result["rows"] == [[None]]  # the bug lost the link
    found = step(env, type="check_api", resource="customers", filters={"app_user_id": user})
    [customer] = found.observation.result["data"]
    assert customer["id"] == customer_of[user]
    assert str(user) in customer["metadata"]["app_user_ids"].split(",")


def test_etl_log_filters_by_job_and_day_and_shows_the_rerun(make):
    env = make()
    env.reset(seed=0)
    bug = dataset_for(SPEC).diagnosis
    since = f"{bug.window_end:%Y-%m-%d}"
    result = step(env, type="inspect_etl_log", job="invoices_sync", since=since, until=since)
    runs = result.observation.result["runs"]
    assert runs and all(r["job"] == "invoices_sync" for r in runs)
    assert all(since <= r["started_at"][:10] <= since for r in runs) or len(runs) == 0
    later = step(env, type="inspect_etl_log", job="invoices_sync", since=since, limit=200)
    reruns = [r for r in later.observation.result["runs"] if "re-run" in r["message"]]
    assert len(reruns) == 1 and reruns[0]["rows_loaded"] == bug.affected_rows
    everything = step(env, type="inspect_etl_log", limit=200).observation.result
    assert everything["total"] == len(dataset_for(SPEC).etl_log())


@pytest.mark.parametrize(
    ("action", "fragment"),
    [
        ({"type": "check_api", "resource": "charges"}, "no resource 'charges'"),
        ({"type": "check_api", "resource": "invoices", "filters": {"amount": 5}}, "no filter"),
        (
            {"type": "check_api", "resource": "invoices", "filters": {"created[gte]": "soon"}},
            "not a date",
        ),
        ({"type": "check_api", "resource": "invoices", "starting_after": "in_nope"}, "in_nope"),
        ({"type": "inspect_etl_log", "job": "payroll_sync"}, "no job 'payroll_sync'"),
        ({"type": "inspect_etl_log", "since": "tomorrow-ish"}, "not a date"),
        ({"type": "query_db", "database": "stripe_api", "sql": "select 1"}, "check_api"),
        ({"type": "query_db", "database": "warehouse", "sql": "select 1"}, "databases: app"),
        ({"type": "query_db", "sql": "delete from invoices"}, "only SELECT"),
        ({"type": "query_db", "sql": "attach database '/tmp/x.db' as x"}, "only"),
        ({"type": "query_db", "sql": "select * from no_such_table"}, "no such table"),
        ({"type": "read_file", "path": "../../../../etc/passwd"}, "outside"),
        ({"type": "read_file", "path": "/etc/passwd"}, "absolute"),
        ({"type": "read_file", "path": "mock-api/stripe.db"}, "check_api"),
        ({"type": "read_file", "path": "etl/runs.db"}, "inspect_etl_log"),
        (
            {
                "type": "submit_diagnosis",
                "diagnosis": "x",
                "table": "invoices",
                "window_start": "someday",
                "source": "etl",
            },
            "does not parse",
        ),
        (
            {
                "type": "submit_diagnosis",
                "diagnosis": "x",
                "table": " ",
                "window_start": "2025-11-20",
                "source": "etl",
            },
            "table is empty",
        ),
    ],
)
def test_bad_tool_input_is_an_error_the_agent_reads_and_the_episode_goes_on(make, action, fragment):
    env = make()
    env.reset(seed=0)
    result = env.step(action)
    assert result.observation.error and not result.observation.done
    assert fragment.lower() in (result.observation.text + result.observation.error).lower()
    assert result.info["failed"] and result.observation.turns_left == 19
    assert not env.step({"type": "list_files"}).observation.error  # still usable


def test_hostile_sql_cannot_reach_host_files_from_the_warehouse(make):
    env = make(sandbox="troubleshoot-warehouse")
    env.reset(seed=0)
    for sql in (
        "select * from read_csv('/etc/passwd')",
        "select * from glob('/*')",
        "copy (select 1) to '/tmp/stackgym-leak.csv'",
        "select 1; select 2",
    ):
        result = step(env, type="query_db", database="warehouse", sql=sql)
        assert result.observation.error, sql
        assert "root:" not in result.observation.text


def test_malformed_actions_are_refused_and_use_a_turn(make):
    env = make()
    env.reset(seed=0)
    for raw in ("not json", {"type": "drop_table"}, {"type": "check_api", "limit": 500}):
        result = env.step(raw)
        assert "invalid_action" in result.info and result.observation.error
    assert env.state.turn == 3


def test_a_diagnosis_ends_the_episode_with_a_graded_outcome(make):
    env = make(bug="stale_status")
    env.reset(seed=0)
    bug = dataset_for(DatasetSpec(bug="stale_status")).diagnosis
    result = step(
        env,
        type="submit_diagnosis",
        diagnosis="Cancellations were never propagated; subscriptions still read active.",
        table="subscriptions",
        window_start=f"{bug.window_start:%Y-%m-%d}",
        window_end=f"{bug.window_end:%Y-%m-%d}",
        source="subscriptions_sync cursor stalled",
    )
    assert result.terminated and not result.truncated and result.reward == 1.0
    outcome = result.info["outcome"]
    assert outcome["passed"] and outcome["metrics"]["actions_before_diagnosis"] == 0
    assert result.info["truth"]["table"] == "subscriptions"
    after = step(env, type="list_files")
    assert "invalid_action" in after.info and after.terminated


def test_running_out_of_turns_truncates_without_a_diagnosis(make):
    env = make(max_turns=3)
    env.reset(seed=0)
    results = [step(env, type="list_files", path=".") for _ in range(3)]
    last = results[-1]
    assert last.truncated and not last.terminated and last.reward == 0.0
    metrics = last.info["outcome"]["metrics"]
    assert last.info["outcome"]["passed"] is False and metrics["max_turns_reached"]
    assert metrics["actions_before_diagnosis"] is None and not metrics["submitted"]
    assert metrics["unnecessary_actions"] == 2  # the two repeats of the first listing


def test_exploration_metrics_count_what_the_agent_touched(make):
    """A scripted investigation whose metrics are counted by hand (idempotency: invoices)."""
    env = make()
    env.reset(seed=0)
    actions = [
        {"type": "list_files"},  # orientation: necessary, no layer
        {"type": "query_db", "sql": "select name from sqlite_master"},  # orientation too
        {"type": "query_db", "sql": "select count(*) from invoices"},  # on the path
        {"type": "query_db", "sql": "select count(*) from users"},  # off: users
        {"type": "query_db", "sql": "select count(*) from invoices"},  # a repeat
        {"type": "check_api", "resource": "customers"},  # off: not the invoices' source
        {"type": "check_api", "resource": "invoices", "limit": 1},  # on
        {"type": "inspect_etl_log", "job": "users_mapping_sync"},  # off: another job
        {"type": "inspect_etl_log", "job": "invoices_sync"},  # on
        {"type": "read_file", "path": "src/db/schema.ts"},  # on: mentions invoices
        {"type": "query_db", "sql": "select nope from invoices"},  # fails
    ]
    for action in actions:
        env.step(action)
    result = step(
        env,
        type="submit_diagnosis",
        diagnosis="duplicate invoices",
        table="invoices",
        window_start="2025-11-20",
        window_end="2025-11-22",
        source="invoices_sync re-run",
    )
    metrics = result.info["outcome"]["metrics"]
    assert metrics["actions_before_diagnosis"] == 11
    assert metrics["unnecessary_actions"] == 5
    assert metrics["unnecessary_exploration_rate"] == 5 / 11
    assert metrics["components_audited"] == 4  # app_db, mock_api, etl_log, orm_schema
    assert metrics["components_total"] == 5
    assert metrics["tables_queried"] == 2  # app:main.invoices, app:main.users
    assert (metrics["sql_queries"], metrics["api_calls"], metrics["etl_log_calls"]) == (5, 2, 2)
    assert metrics["tool_errors"] == 1 and metrics["passed"]


def test_metrics_recomputed_from_a_trace_match_the_env_and_add_llm_tokens(make, tmp_path):
    """An LLM agent (real openai client, fake provider on 127.0.0.1) investigates and submits."""
    env = make(sandbox="troubleshoot-warehouse")
    usage = [(900, 40), (1_100, 35), (1_300, 50), (1_500, 120)]
    calls = [
        ("query_db", {"database": "warehouse", "sql": "select count(*) from raw.stripe_invoices"}),
        ("query_db", {"database": "warehouse", "sql": "select * from marts.fct_mrr limit 1"}),
        ("check_api", {"resource": "invoices", "limit": 1}),
        (
            "submit_diagnosis",
            {
                "diagnosis": "duplicates",
                "table": "invoices",
                "window_start": "2025-11-20",
                "window_end": "2025-11-22",
                "source": "etl",
            },
        ),
    ]
    script = [
        Reply.tool(name, args, prompt_tokens=p, completion_tokens=c)
        for (name, args), (p, c) in zip(calls, usage, strict=True)
    ]
    store = TraceStore(tmp_path)
    with FakeProvider(script) as provider:
        agent = LLMAgent(
            "fake-model",
            Provider("openai", provider.url, "OPENAI_API_KEY", "sk-test"),
            settings=LLMSettings(call_timeout_s=10),
        )
        try:
            episode = run_episode(env, agent, seed=0, traces=store)
        finally:
            agent.close()
    store.close()
    [read] = list(TraceStore(tmp_path).episodes())
    recomputed = metrics_from_trace(read)
    recorded = episode.outcome["metrics"]
    for key in (
        "actions_before_diagnosis",
        "components_audited",
        "tables_queried",
        "unnecessary_exploration_rate",
        "transcript_tokens",
        "reads_dbt_marts",
    ):
        assert recomputed[key] == recorded[key], key
    assert recorded["actions_before_diagnosis"] == 3 and recorded["tokens_to_diagnosis"] is None
    assert recomputed["tokens_to_diagnosis"] == sum(p + c for p, c in usage)
    assert recorded["unnecessary_actions"] == 1  # fct_mrr reads subscriptions, not invoices
    assert recorded["touched_warehouse_surface"] and not recorded["touched_app_surface"]


def test_summary_pools_exploration_and_averages_diagnosis_cost_over_submissions():
    per_episode = [
        {
            "passed": True,
            "submitted": True,
            "actions_before_diagnosis": 4,
            "investigative_actions": 4,
            "unnecessary_actions": 1,
            "turns": 5,
        },
        {
            "passed": False,
            "submitted": True,
            "actions_before_diagnosis": 8,
            "investigative_actions": 8,
            "unnecessary_actions": 5,
            "turns": 9,
        },
        {
            "passed": False,
            "submitted": False,
            "actions_before_diagnosis": None,
            "investigative_actions": 20,
            "unnecessary_actions": 0,
            "turns": 20,
        },
    ]
    summary = summarise(per_episode)
    assert summary["pass_rate"] == pytest.approx(1 / 3)
    assert summary["submit_rate"] == pytest.approx(2 / 3)
    assert summary["actions_before_diagnosis"] == 6
    assert summary["actions_before_correct_diagnosis"] == 4
    assert summary["unnecessary_exploration_rate"] == pytest.approx(6 / 32)


def test_options_and_reset_overrides_are_validated(make):
    with pytest.raises(UnknownNameError) as caught:
        make(sandbox="app-drizzle")
    assert "troubleshoot-orm" in caught.value.hint
    with pytest.raises(ConfigError, match="bug"):
        make(bug="gremlins")
    with pytest.raises(ConfigError, match="data_seed"):
        make(seed=3)
    env = make()
    with pytest.raises(ConfigError, match="max_turns"):
        env.reset(seed=0, options={"max_turns": 5})
    _, info = env.reset(seed=0, options={"bug": "schema_drift"})
    assert info["bug"] == "schema_drift" and env.truth.bug == "schema_drift"


@pytest.mark.parametrize(
    "options",
    [{"sandbox": sandbox, "bug": bug} for sandbox in SANDBOXES for bug in BUGS],
    ids=lambda o: f"{o['sandbox']}-{o['bug']}",
)
def test_env_checker_passes_for_every_sandbox_and_bug(options):
    report = check_env("troubleshoot", options, seeds=(0, 1), steps=8)
    assert report.ok, [(r.name, r.detail) for r in report.failures()]
