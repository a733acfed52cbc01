"""``stackgym train``: the commands a user runs, on folders the harness really wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SPEC = """\
name: sd-audit
env: stack_doctor
factor: mode
conditions: [blind_diagnosis]
options: {split: train}
models: [heuristic, random]
runs: 6
concurrency: 2
"""
FAST = [
    "--set", "embedder.hashing_dim=64", "--set", "features.hashed_dim=64",
    "--set", "tier2.min_pairs=80", "--set", "tier3.min_traces=100",
]  # fmt: skip


def stackgym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackgym", *args], capture_output=True, text=True, timeout=500
    )


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    spec = root / "spec.yaml"
    spec.write_text(SPEC)
    result = stackgym("experiment", "run", str(spec), "--out", str(root / "runs" / "sd-audit"))
    assert result.returncode == 0, result.stderr
    return root / "runs"


def test_audit_reports_each_tier_and_the_data_of_a_harness_folder(experiment: Path, tmp_path: Path):
    out = tmp_path / "train"
    result = stackgym("train", "audit", str(experiment), "--set", f"out={out}", *FAST)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    store = experiment / "sd-audit" / "traces" / "traces.jsonl"
    assert str(store) in report
    assert "TraceStore.discover" in report
    assert "| 12 | 0 | 0 |" in report  # 12 episodes used, none held out, none unreadable
    assert f"Tier 1 NOT TRAINED: no checkpoint at {out / 'tier1' / 'scorer.pt'}" in report
    assert "DPO NOT RUN yet" in report and "/80 pairs" in report
    assert "SFT NOT RUN yet" in report and "/100 successful traces" in report
    assert "chosen × rejected combinations in the same group" in report
    assert "positive (> 0.1)" in report


def test_tier1_prints_its_config_trains_and_the_audit_sees_the_checkpoint(
    experiment: Path, tmp_path: Path
):
    out = tmp_path / "train"
    result = stackgym(
        "train", "tier1", str(experiment), "--set", f"out={out}", "--set", "tier1.rank=16", *FAST, "--json"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "rank: 16" in result.stderr  # the whole config is printed at start
    assert "found 1 trace store(s)" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    assert summary["details"]["rank"] == 16
    report = stackgym(
        "train", "audit", str(experiment), "--set", f"out={out}", "--set", "tier1.rank=16", *FAST
    )
    assert "Tier 1 COMPLETED: rank 16" in report.stdout
    mismatch = stackgym(
        "train", "audit", str(experiment), "--set", f"out={out}", "--set", "tier1.rank=32", *FAST
    )
    assert "tier1.rank 16 in the checkpoint vs 32 configured" in mismatch.stdout
    refused = stackgym(
        "train", "tier1", str(experiment), "--set", f"out={out}", "--set", "tier1.rank=32", *FAST
    )
    assert refused.returncode == 2
    assert "tier1.rank: checkpoint 16, current config 32" in refused.stderr


def test_lift_compares_the_trained_scorer_with_its_base_agent_on_held_out_seeds(
    experiment: Path, tmp_path: Path
):
    out = tmp_path / "train"
    trained = stackgym("train", "tier1", str(experiment), "--set", f"out={out}", *FAST)
    assert trained.returncode == 0, trained.stderr
    lift = (
        "train", "lift", "stack_doctor", "--mode", "blind_diagnosis", "--split", "eval",
        "-n", "8", "--seed", "3", "--set", f"out={out}", *FAST,
    )  # fmt: skip
    result = stackgym(*lift, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["candidate"].startswith("scorer:heuristic") and data["base"] == "heuristic"
    assert data["seeds"] == [3, 10] and data["reward_lift"]["n"] == 8
    assert data["options"] == {"mode": "blind_diagnosis", "split": "eval"}
    assert data["seeds_deviated"] == sum(g["seeds"] for g in data["deviations"])
    text = stackgym(*lift, "--deviations", "1")
    assert text.returncode == 0, text.stderr
    assert "seeds 3..10 (paired, n=8)" in text.stdout
    assert "fix accuracy:" in text.stdout and "seeds better / worse / same:" in text.stdout
    other = stackgym(*lift, "--set", "tier1.rank=4")  # not the checkpoint's rank
    assert other.returncode == 2
    assert "tier1.rank: checkpoint 32, current config 4" in other.stderr
    missing = stackgym("train", "lift", "stack_doctor", "-n", "4", "--set", f"out={tmp_path / 'x'}")
    assert missing.returncode == 2
    assert f"no Tier 1 checkpoint at {tmp_path / 'x' / 'tier1' / 'scorer.pt'}" in missing.stderr


def test_watch_trains_tier1_on_new_episodes_and_status_reports_it(experiment: Path, tmp_path: Path):
    out = tmp_path / ("train-" + "x" * 80)  # longer than a terminal line: never folded
    result = stackgym(
        "train", "watch", str(experiment), "--cycles", "1", "--set", f"out={out}", *FAST
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "poll 1: 12 new episode(s)" in result.stderr
    state = json.loads((out / "watch.json").read_text())
    assert state["episodes"] == 12 and state["tier1_updates"] == 1
    status = stackgym("train", "status", "--set", f"out={out}")
    assert status.returncode == 0, status.stderr
    assert "12 episodes consumed, 1 Tier 1 update(s)" in status.stdout
    assert f"training folder: {out}\n" in status.stdout
    assert "dpo: never run" in status.stdout


def test_bad_input_exits_2_with_a_message(tmp_path: Path):
    unknown = stackgym("train", "tier1", str(tmp_path), "--set", "tier1.scorer_rank=32")
    assert unknown.returncode == 2
    assert "tier1.scorer_rank: unknown setting" in unknown.stderr
    empty = stackgym("train", "tier1", str(tmp_path), "--set", f"out={tmp_path / 'o'}")
    assert empty.returncode == 2
    assert "no trace store (traces.jsonl)" in empty.stderr
    held = stackgym(
        "train", "collect", "stack_doctor", "--split", "eval", "--out", str(tmp_path / "c")
    )
    assert held.returncode == 2
    assert "held out for evaluation" in held.stderr
