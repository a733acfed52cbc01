"""Resuming for real: a `stackgym experiment run` subprocess is killed mid-run, then re-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stackgym.core import ResultStore, TraceStore

TESTS = Path(__file__).parent
# The subprocess registers the test env, then runs the real CLI.
BOOT = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); import harness_env; "
    "harness_env.register_vault(); from stackgym.cli import main; "
    "sys.argv = ['stackgym'] + sys.argv[1:]; main()"
)

SPEC = {
    "name": "slow-vault",
    "env": "vault",
    "factor": "room",
    "conditions": ["north", "south"],
    "tasks": ["open", "peek"],
    "models": ["oracle", "wrong"],
    "runs": 3,
    "max_turns": 4,
    "options": {"step_delay": 0.08},
    "concurrency": 2,
}
EXPECTED = {
    f"slow-vault/{room}/{task}/{model}/{repeat}"
    for room in ("north", "south")
    for task in ("open", "peek")
    for model in ("oracle", "wrong")
    for repeat in range(3)
}


def start(spec: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BOOT, "experiment", "run", str(spec), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_records(out: Path, count: int, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 120
    results = out / "results.jsonl"
    while time.monotonic() < deadline:
        lines = results.read_bytes().count(b"\n") if results.exists() else 0
        if lines >= count:
            return lines
        if process.poll() is not None:
            pytest.fail(f"the run ended early: {process.stderr.read()}")
        time.sleep(0.01)
    pytest.fail("no records appeared")


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def run_to_the_end(spec: Path, out: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", BOOT, "experiment", "run", str(spec), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_kill_9_mid_run_then_rerun_ends_with_exactly_the_planned_run_ids(spec_file, tmp_path):
    out = tmp_path / "out"
    process = start(spec_file, out)
    wait_for_records(out, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    partial = [r.run_id for r in ResultStore(out).records()]
    assert 3 <= len(partial) < len(EXPECTED)
    assert json.loads((out / "experiment.json").read_text())["status"] == "running"

    summary = json.loads(run_to_the_end(spec_file, out).stdout)
    assert summary["status"] == "finished" and summary["recorded"] == summary["planned"] == 24

    store = ResultStore(out)
    run_ids = [r.run_id for r in store.records()]
    assert set(run_ids) == EXPECTED
    assert len(run_ids) == len(EXPECTED)  # none duplicated
    assert set(partial) <= set(run_ids)
    traced = [e.run_id for e in TraceStore(out / "traces").episodes()]
    assert sorted(traced) == sorted(EXPECTED)  # no episode played twice either
    record = json.loads((out / "experiment.json").read_text())
    assert [s["skipped"] + s["recovered"] >= 3 for s in record["sessions"][1:]] == [True]


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(spec_file, tmp_path):
    out = tmp_path / "out"
    process = start(spec_file, out)
    wait_for_records(out, 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "stopped: experiment 'slow-vault' has" in " ".join(stderr.split())
    assert "run the same command again to resume" in stderr
    store = ResultStore(out)
    recorded = list(store.records())
    assert store.problems == []  # nothing half-written
    assert 2 <= len(recorded) < len(EXPECTED)
    record = json.loads((out / "experiment.json").read_text())
    assert record["status"] == "interrupted" and record["counts"]["recorded"] == len(recorded)

    run_to_the_end(spec_file, out)
    assert {r.run_id for r in ResultStore(out).records()} == EXPECTED
    assert len(list(ResultStore(out).records())) == len(EXPECTED)
