"""`make demo`, the main job, end to end: data, the `quick` experiment, its report, the audit."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stackgym.core.results import ResultStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo")
    config = out / "train.yaml"  # keep the audit away from any runs/train of the checkout
    config.write_text(f"out: {out / 'train'}\n")
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_DIR={out}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "STACKGYM_TRAIN_CONFIG": str(config)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout


def test_demo_prints_the_ground_truth_of_every_task(demo: tuple[Path, str]) -> None:
    out, stdout = demo
    for task in ("active_user_arpu", "org_churn_rate", "avg_org_ltv"):
        assert task in stdout
    snapshot = json.loads((out / "data" / "dataset.json").read_text())["snapshot"]
    assert snapshot in (out / "report" / "report.md").read_text()  # the report names its data


def test_demo_runs_every_baseline_on_every_environment(demo: tuple[Path, str]) -> None:
    out, _ = demo
    expected = {  # conditions × tasks × models × runs, from the quick preset
        "quick-metrics": 2 * 3 * 3 * 1,
        "quick-stack-doctor": 2 * 1 * 3 * 10,
        "quick-troubleshoot": 2 * 1 * 3 * 2,
    }
    for name, count in expected.items():
        records = list(ResultStore(out / "quick" / name).records())
        assert len(records) == count, name
        assert {r.model for r in records} == {"oracle", "heuristic", "random"}
        assert not [r for r in records if r.status == "infra_error"], name
        # the oracle solves every task of every environment it is given
        assert all(r.passed for r in records if r.model == "oracle"), name


def test_demo_writes_the_report_and_a_training_audit_of_its_traces(demo: tuple[Path, str]) -> None:
    out, _ = demo
    report = (out / "report" / "report.md").read_text()
    for name in ("quick-metrics", "quick-stack-doctor", "quick-troubleshoot"):
        assert name in report
    for name in ("quick-metrics", "quick-stack-doctor", "quick-troubleshoot"):
        assert (out / "report" / "charts" / name / "pass-rate-matrix.png").stat().st_size > 0
    audit = (out / "train-audit.md").read_text()
    for name in ("quick-metrics", "quick-stack-doctor", "quick-troubleshoot"):
        assert str(out / "quick" / name / "traces" / "traces.jsonl") in audit
    # Stack Doctor ran on the held-out split: 60 episodes reported as held out, not trained on
    assert "| 0 | 60 | 0 |" in audit
    assert "DPO NOT RUN yet" in audit and "SFT NOT RUN yet" in audit
    assert f"no checkpoint at {out / 'train' / 'tier1' / 'scorer.pt'}" in audit
