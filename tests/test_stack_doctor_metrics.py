"""Stack Doctor's summary metrics, from per-episode dicts alone (as traces store them)."""

from __future__ import annotations

import pytest

from stackgym.core.metrics import summarize_metrics
from stackgym.envs.stack_doctor.metrics import summarise


def episode(**overrides):
    base = {
        "fix_correct": True,
        "rc_correct": True,
        "submitted": True,
        "steps": 4,
        "reward": 20.0,
        "inspected": 2,
        "relevant_inspected": 2,
        "evidence_precision": 1.0,
        "justification_ok": True,
        "supported": None,
        "fix_applied": True,
        "bad_interventions": 0,
        "unsafe_actions": 0,
        "invalid_actions": 0,
        "out_of_steps": False,
        "minimal_evidence_seen": True,
    }
    return {**base, **overrides}


def test_blind_summary_from_hand_made_episodes():
    episodes = [
        episode(),
        episode(rc_correct=False, reward=4.0, inspected=3, relevant_inspected=1, steps=5),
        episode(fix_correct=False, rc_correct=False, bad_interventions=1, reward=-8.0),
        episode(
            fix_correct=False,
            rc_correct=False,
            submitted=False,
            steps=6,
            reward=-5.5,
            inspected=1,
            relevant_inspected=0,
            justification_ok=False,
            out_of_steps=True,
            invalid_actions=2,
        ),
    ]
    summary = summarise(episodes)
    assert summary["episodes"] == 4
    assert summary["fix_accuracy"] == 2 / 4
    assert summary["rc_accuracy"] == 1 / 4
    assert summary["avg_steps"] == (4 + 5 + 4 + 6) / 4
    assert summary["avg_reward"] == (20 + 4 - 8 - 5.5) / 4
    assert summary["evidence_precision"] == (2 + 1 + 2 + 0) / (2 + 3 + 2 + 1)  # pooled
    assert summary["justification_pass_rate"] == 3 / 4
    assert summary["bad_intervention_rate"] == 1 / 4
    assert summary["submit_rate"] == 3 / 4
    assert summary["out_of_steps_rate"] == 1 / 4
    assert summary["invalid_action_rate"] == 2 / 19
    assert summary["supported_rate"] is None


def test_visible_summary_has_no_root_cause_accuracy_and_counts_unsafe_fixes():
    episodes = [
        episode(rc_correct=None, supported=True),
        episode(rc_correct=None, supported=False, unsafe_actions=1),
    ]
    summary = summarise(episodes)
    assert summary["rc_accuracy"] is None
    assert summary["supported_rate"] == 1 / 2
    assert summary["bad_intervention_rate"] == 1 / 2


def test_nothing_inspected_gives_no_precision_and_no_episodes_gives_nones():
    assert summarise([episode(inspected=0, relevant_inspected=0)])["evidence_precision"] is None
    empty = summarise([])
    assert empty["episodes"] == 0
    assert empty["fix_accuracy"] is None and empty["bad_intervention_rate"] is None


def test_the_registry_routes_stack_doctor_metrics_to_this_summariser():
    assert summarize_metrics("stack_doctor", [episode()]) == pytest.approx(summarise([episode()]))
