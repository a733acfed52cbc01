"""Tier 2's preference pairs, mined in one pass grouped by comparable state.

Seed 003 kept DPO honest with strict filters: a *chosen* response needs
reward > 0.1 and an evaluation confidence ≥ 0.5, a *rejected* one reward
< −0.1, and the two a reward gap ≥ 0.3, within similar requests. Here the
reward of an action is its normalised return-to-go (the step's reward and
everything after it, divided by the env's scale), and "similar requests" are
experiences of the same env, options, task and history
(``pairs.comparable: task``) or the very same state (``state``).

Experiences are bucketed by that key once; in each bucket the rejected side
is sorted by reward, so each chosen experience takes the rejected ones with
the largest gap first, and the funnel counts (how many combinations each
filter removed) come from binary searches instead of an all-pairs scan.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stackgym.train.config import TrainConfig
from stackgym.train.experience import Experience, action_key, normalised, state_key, value_scales


@dataclass(frozen=True, slots=True)
class Pair:
    """A preferred and a dispreferred action from comparable states."""

    chosen: Experience
    rejected: Experience
    chosen_reward: float
    rejected_reward: float

    @property
    def gap(self) -> float:
        return self.chosen_reward - self.rejected_reward


@dataclass
class Funnel:
    """How many experiences and combinations each filter kept or removed."""

    experiences: int = 0
    comparable: str = "task"
    groups: int = 0
    #: Experiences in a group where at least one other action was taken.
    with_alternative: int = 0
    positive: int = 0
    chosen_low_confidence: int = 0
    confidence_stated: int = 0
    chosen_candidates: int = 0
    rejected_candidates: int = 0
    neutral: int = 0
    groups_with_both: int = 0
    #: chosen × rejected within the same group: the pairs strict filtering starts from.
    combinations: int = 0
    removed_same_action: int = 0
    removed_small_gap: int = 0
    eligible: int = 0
    removed_by_cap: int = 0
    pairs: int = 0
    thresholds: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, int]]:
        """The funnel as (step, count) rows, in order."""
        t = self.thresholds
        return [
            ("experiences", self.experiences),
            (f"in a {self.comparable}-group with another action taken", self.with_alternative),
            (f"reward > {t.get('chosen_min_reward')}", self.positive),
            (
                f"  … of which confidence < {t.get('chosen_min_confidence')} (removed)",
                self.chosen_low_confidence,
            ),
            ("chosen candidates", self.chosen_candidates),
            (
                f"rejected candidates (reward < {t.get('rejected_max_reward')})",
                self.rejected_candidates,
            ),
            ("neutral (neither)", self.neutral),
            ("chosen × rejected combinations in the same group", self.combinations),
            ("  removed: same action", self.removed_same_action),
            (f"  removed: reward gap < {t.get('min_gap')}", self.removed_small_gap),
            ("eligible pairs", self.eligible),
            (f"  removed: over {t.get('pairs_per_chosen')} pairs per chosen", self.removed_by_cap),
            ("pairs", self.pairs),
        ]


def mine_pairs(experiences: Iterable[Experience], config: TrainConfig) -> tuple[list[Pair], Funnel]:
    """Preference pairs and the funnel that produced them (see the module docstring)."""
    settings = config.pairs
    experiences = list(experiences)
    scales = value_scales(experiences, config)
    free = config.features.free_text_fields
    unknown = config.value.unknown_confidence
    funnel = Funnel(
        experiences=len(experiences),
        comparable=settings.comparable,
        thresholds=settings.model_dump(),
    )
    groups: dict[str, list[tuple[float, str, Experience]]] = defaultdict(list)
    for e in experiences:
        value = normalised(e.return_to_go, scales[e.env_id])
        groups[state_key(e, settings.comparable)].append((value, action_key(e.action, free), e))
    funnel.groups = len(groups)
    pairs: list[Pair] = []
    for members in groups.values():
        if len({a for _, a, _ in members}) > 1:
            funnel.with_alternative += len(members)
        chosen: list[tuple[float, str, Experience]] = []
        rejected: list[tuple[float, str, Experience]] = []
        for member in members:
            value, _, e = member
            if e.confidence is not None:
                funnel.confidence_stated += 1
            if value > settings.chosen_min_reward:
                funnel.positive += 1
                confidence = e.confidence if e.confidence is not None else unknown
                if confidence >= settings.chosen_min_confidence:
                    chosen.append(member)
                else:
                    funnel.chosen_low_confidence += 1
            elif value < settings.rejected_max_reward:
                rejected.append(member)
            else:
                funnel.neutral += 1
        funnel.chosen_candidates += len(chosen)
        funnel.rejected_candidates += len(rejected)
        if not chosen or not rejected:
            continue
        funnel.groups_with_both += 1
        funnel.combinations += len(chosen) * len(rejected)
        rejected.sort(key=lambda m: m[0])
        values = [m[0] for m in rejected]
        by_action: dict[str, list[float]] = defaultdict(list)
        for value, action, _ in rejected:
            by_action[action].append(value)
        for value, action, e in chosen:
            same = by_action.get(action, [])
            funnel.removed_same_action += len(same)
            limit = value - settings.min_gap
            far = bisect_right(values, limit + 1e-12)
            far_same = bisect_right(same, limit + 1e-12)
            eligible = far - far_same
            funnel.removed_small_gap += (len(rejected) - len(same)) - eligible
            funnel.eligible += eligible
            taken = 0
            for r_value, r_action, r in rejected[:far]:
                if taken >= settings.pairs_per_chosen:
                    break
                if r_action == action:
                    continue
                pairs.append(Pair(e, r, value, r_value))
                taken += 1
            funnel.removed_by_cap += eligible - taken
    funnel.pairs = len(pairs)
    return pairs, funnel
