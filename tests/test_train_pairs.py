"""Tier 2's pair mining: seed 003's filters, one pass per group, a funnel that adds up."""

from __future__ import annotations

from stackgym.train.config import load_config
from stackgym.train.experience import Experience
from stackgym.train.pairs import mine_pairs


def experience(
    kind: str, to_go: float, *, task: str = "t", confidence: float | None = None, seed: int = 0
) -> Experience:
    return Experience(
        episode_id=f"{task}-{kind}-{to_go}", env_id="toy", options={}, task=task, seed=seed, step=0,
        observation_text="state", observation={}, action={"type": kind}, history=(),
        candidates=None, reward=to_go, return_to_go=to_go, episode_return=to_go, passed=None,
        confidence=confidence, reasoning=None, agent="test",
    )  # fmt: skip


def group() -> list[Experience]:
    # Returns are divided by value.scale=10: A 0.5, B -0.3, C -0.4, D 0.3 (confidence 0.2),
    # E 0.0, F 0.15, G -0.12; H 0.6 in another task.
    return [
        experience("a", 5.0),
        experience("b", -3.0),
        experience("a", -4.0),
        experience("c", 3.0, confidence=0.2),
        experience("d", 0.0),
        experience("e", 1.5),
        experience("g", -1.2),
        experience("h", 6.0, task="other"),
    ]


def test_funnel_counts_each_filter_as_worked_out_by_hand():
    config = load_config(None, ["value.scale=10"])
    pairs, funnel = mine_pairs(group(), config)
    assert funnel.experiences == 8
    assert funnel.with_alternative == 7
    assert funnel.positive == 4  # a, c, e, h
    assert funnel.chosen_low_confidence == 1  # c
    assert funnel.chosen_candidates == 3  # a, e, h
    assert funnel.rejected_candidates == 3  # b, a(-4), g
    assert funnel.neutral == 1
    assert funnel.combinations == 6  # {a, e} x {b, a, g}; h has no rejected partner
    assert funnel.removed_same_action == 1  # a vs a
    assert funnel.removed_small_gap == 1  # e (0.15) vs g (-0.12): gap 0.27 < 0.3
    assert funnel.eligible == 4
    assert funnel.pairs == len(pairs) == 4
    assert {(p.chosen.action["type"], p.rejected.action["type"]) for p in pairs} == {
        ("a", "b"),
        ("a", "g"),
        ("e", "a"),
        ("e", "b"),
    }


def test_each_chosen_takes_the_largest_gaps_first_up_to_its_cap():
    config = load_config(None, ["value.scale=10", "pairs.pairs_per_chosen=1"])
    pairs, funnel = mine_pairs(group(), config)
    assert {(p.chosen.action["type"], p.rejected.action["type"]) for p in pairs} == {
        ("a", "b"),  # a vs a(-0.4) is the same action; b is the next largest gap
        ("e", "a"),
    }
    assert funnel.removed_by_cap == 2


def test_thresholds_come_from_the_config():
    strict = load_config(None, ["value.scale=10", "pairs.min_gap=0.7"])
    pairs, _ = mine_pairs(group(), strict)
    assert {(p.chosen.action["type"], p.rejected.action["type"]) for p in pairs} == {("a", "b")}
    demanding = load_config(None, ["value.scale=10", "value.unknown_confidence=0"])
    pairs, funnel = mine_pairs(group(), demanding)
    assert pairs == [] and funnel.chosen_low_confidence == 4


def test_state_matching_needs_the_same_seed():
    items = [experience("a", 5.0, seed=1), experience("b", -5.0, seed=2)]
    by_task, _ = mine_pairs(items, load_config(None, ["value.scale=10"]))
    by_state, _ = mine_pairs(items, load_config(None, ["value.scale=10", "pairs.comparable=state"]))
    assert len(by_task) == 1 and by_state == []
