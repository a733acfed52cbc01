"""Running experiments in-process: records, the folder contract, resume, failures."""

from __future__ import annotations

import json

import pytest

from harness_env import register_vault
from stackgym.agents.fake_provider import ChatRequest, FakeProvider, Reply
from stackgym.core import ConfigError, ResultStore, TraceStore
from stackgym.core.registry import registry
from stackgym.harness.experiment import run_experiment, run_spec
from stackgym.harness.folder import ExperimentFolder
from stackgym.harness.spec import parse_spec
from stackgym.version import __version__


@pytest.fixture(scope="module", autouse=True)
def vault():
    yield register_vault()
    registry.remove("vault")


def spec_of(**changes):
    data = {
        "name": "vault-test",
        "env": "vault",
        "factor": "room",
        "conditions": ["north", "south"],
        "tasks": ["open", "peek"],
        "models": ["oracle", "wrong"],
        "runs": 2,
        "max_turns": 5,
        "data": {"seed": 3},
        "concurrency": 3,
    }
    data.update(changes)
    return parse_spec(data).experiment


def expected_ids(spec) -> set[str]:
    """Written out from the spec, independently of the planner."""
    return {
        f"{spec.name}/{c.name}/{t}/{m}/{r}"
        for c in spec.conditions
        for t in (spec.tasks or ["-"])
        for m in spec.models
        for r in range(spec.runs)
    }


def test_an_experiment_records_every_run_with_its_design_fields(tmp_path):
    spec = spec_of()
    outcome = run_experiment(spec, tmp_path, source="test")
    records = list(ResultStore(tmp_path).records())
    assert {r.run_id for r in records} == expected_ids(spec) and len(records) == 16
    oracle = next(r for r in records if r.run_id == "vault-test/south/peek/oracle/1")
    assert (oracle.experiment, oracle.factor, oracle.condition, oracle.task) == (
        "vault-test",
        "room",
        "south",
        "peek",
    )
    assert (oracle.model, oracle.repeat, oracle.seed, oracle.status, oracle.passed) == (
        "oracle",
        1,
        1,
        "completed",
        True,
    )
    assert oracle.settings["room"] == "south" and oracle.settings["task"] == "peek"
    assert oracle.settings["max_turns"] == 5 and oracle.settings["data_seed"] == 3
    assert oracle.settings["max_steps"] == 1000 and oracle.data_snapshot == "vault-data-3"
    episodes = {e.episode_id: e for e in TraceStore(tmp_path / "traces").episodes()}
    assert set(episodes) == {r.episode_id for r in records}
    assert episodes[oracle.episode_id].run_id == oracle.run_id
    assert sum(r.passed is True for r in records) == 8  # every oracle run; "wrong" fails them
    assert outcome.record.counts.pass_rate == 0.5


def test_experiment_json_describes_the_folder(tmp_path):
    spec = spec_of()
    run_experiment(spec, tmp_path, source="spec.yaml")
    raw = json.loads((tmp_path / "experiment.json").read_text())
    assert raw["kind"] == "stackgym.experiment" and raw["status"] == "finished"
    assert raw["spec"]["factor"] == "room" and raw["spec"]["runs"] == 2
    assert raw["parity"]["ok"] is True and raw["parity"]["conditions"] == {
        "north": "north",
        "south": "south",
    }
    assert raw["parity"]["shared"]["max_turns"] == 5
    assert raw["data_snapshot"] == "vault-data-3"
    assert raw["data_snapshots"] == {"north": {"open": "vault-data-3", "peek": "vault-data-3"}} | {
        "south": {"open": "vault-data-3", "peek": "vault-data-3"}
    }
    assert raw["stackgym_version"] == __version__ and raw["started_at"] and raw["finished_at"]
    assert raw["counts"]["planned"] == raw["counts"]["completed"] == 16
    assert raw["files"] == {
        "results": "results.jsonl",
        "traces": "traces/traces.jsonl",
        "log": "run.log",
    }
    record = ExperimentFolder(tmp_path).read()
    assert record.spec == spec and record.sessions[0].ran == 16
    assert "parity ok" in (tmp_path / "run.log").read_text()


def test_running_again_resumes_and_plays_nothing_twice(tmp_path):
    spec = spec_of()
    run_experiment(spec, tmp_path)
    again = run_experiment(spec.model_copy(update={"concurrency": 1}), tmp_path)
    assert again.record.sessions[-1].ran == 0 and again.record.sessions[-1].skipped == 16
    assert len(list(ResultStore(tmp_path).records())) == 16
    assert len(list(TraceStore(tmp_path / "traces").episodes())) == 16


def test_a_run_recorded_in_traces_but_not_in_results_is_recovered_not_replayed(tmp_path):
    spec = spec_of()
    run_experiment(spec, tmp_path)
    results = tmp_path / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    lost = json.loads(lines[-1])
    results.write_bytes(b"".join(lines[:-1]))  # as if killed between the trace and the record
    again = run_experiment(spec, tmp_path)
    assert again.record.sessions[-1].recovered == 1 and again.record.sessions[-1].ran == 0
    final = ExperimentFolder(tmp_path).final_records()
    assert {r.run_id for r in final} == expected_ids(spec)
    restored = next(r for r in final if r.run_id == lost["run_id"])
    assert restored.episode_id == lost["episode_id"] and restored.passed == lost["passed"]
    assert len(list(TraceStore(tmp_path / "traces").episodes())) == 16


def test_a_changed_spec_is_refused_in_the_same_folder_naming_the_change(tmp_path):
    run_experiment(spec_of(), tmp_path)
    with pytest.raises(ConfigError) as caught:
        run_experiment(spec_of(max_turns=7), tmp_path)
    assert "run with other settings: max_turns (5 -> 7)" in caught.value.message
    with pytest.raises(ConfigError, match="holds experiment 'vault-test', not 'other'"):
        run_experiment(spec_of(name="other"), tmp_path)


def test_resume_only_refuses_a_folder_without_the_experiment(tmp_path):
    with pytest.raises(ConfigError, match=r"--resume: .* holds no experiment to resume"):
        run_experiment(spec_of(), tmp_path / "new", resume_only=True)
    assert not (tmp_path / "new").exists()


def test_conditions_serving_different_data_are_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:
        run_experiment(spec_of(conditions=["north", "drifty"]), tmp_path)
    message = caught.value.message
    assert "serve different data" in message
    assert 'data_snapshot[open] (north: "vault-data-3", drifty: "vault-data-3-drifted")' in message
    assert not (tmp_path / "experiment.json").exists()


def test_a_crashing_run_is_recorded_as_infra_error_and_the_rest_complete(tmp_path):
    spec = spec_of(options={"crash_seed": 1})
    outcome = run_experiment(spec, tmp_path)
    records = ExperimentFolder(tmp_path).final_records()
    crashed = [r for r in records if r.status == "infra_error"]
    assert {r.repeat for r in crashed} == {1} and len(crashed) == 8
    assert all(r.error == "run crashed: RuntimeError: the vault's lock jammed" for r in crashed)
    assert all(r.passed is None for r in crashed)
    assert outcome.record.counts.completed == 8 and outcome.record.counts.pass_rate == 0.5
    assert "Traceback" in (tmp_path / "run.log").read_text()


@pytest.mark.parametrize(("mode", "thread"), [("always", "stackgym-env"), ("never", "MainThread")])
def test_env_work_runs_where_env_thread_says(tmp_path, mode, thread):
    run_experiment(spec_of(env_thread=mode, models=["wrong"]), tmp_path)
    threads = {
        s.observation["metadata"]["thread"]
        for e in TraceStore(tmp_path / "traces").episodes()
        for s in e.steps
    }
    assert {t.rsplit("_", 1)[0] for t in threads} == {thread}


def test_auto_moves_a_slow_env_onto_threads(tmp_path):
    run_experiment(
        spec_of(models=["wrong"], options={"step_delay": 0.03}, concurrency=1, runs=1), tmp_path
    )
    episodes = list(TraceStore(tmp_path / "traces").episodes())
    first = {s.observation["metadata"]["thread"] for s in episodes[0].steps}
    later = {
        s.observation["metadata"]["thread"].rsplit("_", 1)[0]
        for e in episodes[-2:]
        for s in e.steps
    }
    assert first == {"MainThread"} and later == {"stackgym-env"}


def lockpick(request: ChatRequest) -> Reply:
    """A model that reveals the digits, then guesses."""
    results = [
        m["content"]
        for m in request.messages
        if m["role"] == "tool" and m["content"].startswith("digit")
    ]
    if len(results) < 3:
        return Reply.tool("reveal", {"position": len(results)})
    return Reply.tool("guess", {"code": "".join(r[-1] for r in results)})


@pytest.fixture
def llm_env(monkeypatch):
    def point(provider):
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

    return point


FAST = {"retries": {"max_retries": 1, "backoff_s": 0.001}, "timeouts": {"call_s": 5, "run_s": 30}}


def test_a_401_provider_is_infra_error_not_a_failed_task_and_retry_errors_replays_it(
    tmp_path, llm_env
):
    denied = {"on": True}

    def provider_logic(request: ChatRequest) -> Reply:
        if request.model == "locked-out" and denied["on"]:
            return Reply.error(401, "invalid key for this model")
        return lockpick(request)

    spec = spec_of(models=["openai:good", "openai:locked-out"], tasks=["open"], **FAST)
    with FakeProvider(provider_logic) as provider:
        llm_env(provider)
        outcome = run_experiment(spec, tmp_path)
        records = ExperimentFolder(tmp_path).final_records()
        bad = [r for r in records if r.model == "openai:locked-out"]
        assert {r.status for r in bad} == {"infra_error"} and all(r.passed is None for r in bad)
        assert "API key was refused (HTTP 401)" in bad[0].error
        assert outcome.record.counts.infra_error == 4
        assert outcome.record.counts.pass_rate == 1.0  # 4/4 judged runs; the 401s are not counted
        assert outcome.tally.infra_errors == 4

        resumed = run_experiment(spec, tmp_path)
        assert resumed.record.sessions[-1].ran == 0  # infra errors are kept unless asked

        denied["on"] = False
        retried = run_experiment(spec, tmp_path, retry_errors=True)
    assert retried.record.sessions[-1].retried == 4 and retried.record.sessions[-1].ran == 4
    final = ExperimentFolder(tmp_path).final_records()
    assert {r.status for r in final} == {"completed"} and all(r.passed for r in final)
    assert len(list(ResultStore(tmp_path).records())) == 12  # history kept; the last line wins


def test_llm_runs_record_tokens_cost_and_their_agent_settings(tmp_path, llm_env):
    spec = spec_of(
        models=["openai:m"], tasks=["open"], runs=1, agent={"temperature": 0.1, "seed": 40}, **FAST
    )
    with FakeProvider(lockpick, cost_per_token=1e-6) as provider:
        llm_env(provider)
        run_experiment(spec, tmp_path)
        seeds = {r.body["seed"] for r in provider.requests}
    records = ExperimentFolder(tmp_path).final_records()
    assert all(r.passed and r.usage.calls == 4 and r.usage.cost_usd > 0 for r in records)
    assert records[0].settings["agent"]["temperature"] == 0.1
    assert records[0].settings["agent"]["call_timeout_s"] == 5
    assert seeds == {40}  # repeat 0 sends the configured seed


def test_the_run_time_limit_ends_a_slow_run_as_infra_error_with_its_steps(tmp_path, llm_env):
    spec = spec_of(
        models=["openai:slow"],
        tasks=["open"],
        conditions=["north"],
        runs=1,
        timeouts={"run_s": 0.5},
    )
    with FakeProvider(lockpick, latency=0.2) as provider:
        llm_env(provider)
        run_experiment(spec, tmp_path)
    (record,) = ExperimentFolder(tmp_path).final_records()
    assert record.status == "infra_error" and "time limit of 0.5 s" in record.error
    (episode,) = TraceStore(tmp_path / "traces").episodes()
    assert 1 <= len(episode.steps) < 4 and episode.run_id == record.run_id


def test_concurrency_overlaps_provider_calls_up_to_the_limit(tmp_path, llm_env):
    spec = spec_of(models=["openai:m"], tasks=["open"], runs=4, concurrency=3, **FAST)
    with FakeProvider(lockpick, latency=0.1) as provider:
        llm_env(provider)
        run_experiment(spec, tmp_path)
        assert provider.max_in_flight == 3


def test_a_missing_api_key_stops_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENROUTER_API_KEY is not set"):
        run_experiment(
            spec_of(models=["oracle", "openrouter:x-ai/grok-code-fast-1"]), tmp_path / "out"
        )
    assert not (tmp_path / "out").exists()


def test_a_suite_runs_each_experiment_into_its_own_folder(tmp_path):
    loaded = parse_spec(
        {
            "name": "pair",
            "experiments": [
                spec_of(name="first").model_dump(mode="json"),
                spec_of(name="second", tasks=[], runs=1).model_dump(mode="json"),
            ],
        }
    )
    outcomes = run_spec(loaded, tmp_path)
    assert [o.folder for o in outcomes] == [tmp_path / "first", tmp_path / "second"]
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert suite["status"] == "finished" and suite["experiments"] == {
        "first": "first",
        "second": "second",
    }
    assert [f.root.name for f in ExperimentFolder.discover(tmp_path)] == ["first", "second"]
    second = ExperimentFolder(tmp_path / "second").final_records()
    assert sorted(r.run_id for r in second) == [
        "second/north/-/oracle/0",
        "second/north/-/wrong/0",
        "second/south/-/oracle/0",
        "second/south/-/wrong/0",
    ]
    assert all(r.task is None and r.settings["task"] == "open" for r in second)  # the env's default


def test_runs_may_grow_on_resume_but_never_shrink(tmp_path):
    run_experiment(spec_of(runs=1), tmp_path)
    grown = run_experiment(spec_of(runs=2), tmp_path)
    assert grown.record.sessions[-1].skipped == 8 and grown.record.sessions[-1].ran == 8
    assert grown.record.planned_runs == 16 and grown.record.spec.runs == 2
    assert {r.run_id for r in ExperimentFolder(tmp_path).final_records()} == expected_ids(spec_of())
    with pytest.raises(ConfigError, match="runs may grow on resume"):
        run_experiment(spec_of(runs=1), tmp_path)


def test_a_retried_run_killed_before_its_record_is_recovered_from_its_new_trace(tmp_path, llm_env):
    spec = spec_of(models=["openai:m"], tasks=["open"], conditions=["north"], runs=1, **FAST)
    with FakeProvider(lambda request: Reply.error(401, "no")) as provider:
        llm_env(provider)
        run_experiment(spec, tmp_path)
    with FakeProvider(lockpick) as provider:
        llm_env(provider)
        run_experiment(spec, tmp_path, retry_errors=True)
    results = tmp_path / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["status"] for line in lines] == ["infra_error", "completed"]
    results.write_bytes(lines[0])  # the retry's record never landed
    again = run_experiment(spec, tmp_path)
    assert again.record.sessions[-1].recovered == 1 and again.record.sessions[-1].ran == 0
    (final,) = ExperimentFolder(tmp_path).final_records()
    assert final.status == "completed" and final.passed is True
