"""Experiences come from trace stores only: what the harness writes is what training finds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stackgym.core.errors import DataError, TraceSchemaError
from stackgym.core.traces import TraceStore
from stackgym.train.experience import discover
from train_helpers import small_config

SPEC = """\
name: sd-train
env: stack_doctor
factor: mode
conditions: [blind_diagnosis, root_cause_visible]
options: {split: train}
models: [heuristic, random]
runs: 3
concurrency: 2
"""


def stackgym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackgym", *args], capture_output=True, text=True, timeout=300
    )


def test_traces_written_by_stackgym_run_are_what_the_trainers_find(tmp_path: Path):
    out = tmp_path / "run"
    result = stackgym(
        "run", "stack_doctor", "--split", "train", "--agent", "heuristic", "-n", "4",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = small_config(tmp_path / "train")
    corpus = discover(tmp_path, config)
    assert [s.path for s in corpus.stores] == [out / "traces" / "traces.jsonl"]
    assert len(corpus.episodes) == 4
    experiences = corpus.experiences(config)
    written = list(TraceStore(out / "traces").episodes())
    assert len(experiences) == sum(len(e.steps) for e in written)
    first = experiences[0]
    assert first.env_id == "stack_doctor"
    assert first.observation_text == written[0].reset_observation["text"]
    assert first.action == written[0].steps[0].action
    assert first.candidates and any(c["chosen"] for c in first.candidates)
    assert first.return_to_go == pytest.approx(written[0].total_reward)
    assert first.task == written[0].outcome["scenario"]
    assert first.reasoning == written[0].steps[0].reasoning


def test_an_experiment_folder_of_the_harness_is_discovered_store_by_store(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    result = stackgym("experiment", "run", str(spec), "--out", str(tmp_path / "exp"))
    assert result.returncode == 0, result.stderr
    corpus = discover(tmp_path / "exp", small_config(tmp_path / "train"))
    assert len(corpus.stores) == 1
    # 2 conditions x 2 models x 3 runs.
    assert len(corpus.episodes) == 12
    assert {e.agent.name for e in corpus.episodes} == {"heuristic", "random"}


def test_episodes_of_a_held_out_split_are_counted_and_left_out(tmp_path: Path):
    result = stackgym(
        "run", "stack_doctor", "--split", "eval", "--agent", "random", "-n", "3",
        "--out", str(tmp_path / "held"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    corpus = discover(tmp_path, small_config(tmp_path / "train"))
    assert corpus.episodes == []
    assert corpus.stores[0].held_out == 3


def test_a_folder_of_json_files_is_not_mistaken_for_traces(tmp_path: Path):
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "trace_001.json").write_text(json.dumps({"prompt": "hi"}))
    with pytest.raises(DataError) as error:
        discover(tmp_path, small_config(tmp_path / "train"))
    assert "traces.jsonl" in str(error.value)
    assert "trace_001.json" in str(error.value)


def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path: Path):
    config = small_config(tmp_path / "train")
    with pytest.raises(DataError, match="no trace store"):
        discover(tmp_path, config)
    with pytest.raises(DataError, match="does not exist"):
        discover(tmp_path / "nowhere", config)


def test_traces_of_an_unknown_schema_version_are_refused(tmp_path: Path):
    folder = tmp_path / "traces"
    folder.mkdir()
    (folder / "traces.jsonl").write_text(
        json.dumps({"schema_version": 99, "episode_id": "x"}) + "\n"
    )
    with pytest.raises(TraceSchemaError, match="schema version 99"):
        discover(tmp_path, small_config(tmp_path / "train"))


def test_a_corrupt_line_is_skipped_and_reported(tmp_path: Path):
    result = stackgym(
        "run", "stack_doctor", "--split", "train", "--agent", "random", "-n", "2",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = tmp_path / "run" / "traces" / "traces.jsonl"
    with path.open("a") as handle:
        handle.write('{"not": "an episode"}\n')
    corpus = discover(tmp_path, small_config(tmp_path / "train"))
    assert len(corpus.episodes) == 2
    assert len(corpus.stores[0].problems) == 1
