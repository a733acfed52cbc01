"""Stack Doctor's reward tables (SPEC §5) and the justification rule.

Every reward the env pays is a sum of named components from one of the two
tables below; the env puts the components of each step in
``info["reward_breakdown"]`` so a user (or a trainer) can see why a reward was
given. Values are multiples of 0.25, so sums are exact in floating point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from stackgym.envs.stack_doctor.models import FIXES, ROOT_CAUSES


@dataclass(frozen=True)
class BlindRewards:
    """``blind_diagnosis``: the original Stack Doctor table."""

    step_cost: float = -0.25  # inspect or ask_specialist
    apply_correct: float = 3.0
    apply_wrong: float = -2.0
    root_cause_correct: float = 8.0
    root_cause_wrong: float = -4.0
    fix_correct: float = 8.0
    fix_wrong: float = -4.0
    justification: float = 1.0  # justification of at least 10 characters
    justification_min_chars: int = 10
    fast_solve: float = 2.0  # root cause and fix correct within `fast_steps` steps
    fast_steps: int = 4
    invalid_action: float = -2.0
    out_of_steps: float = -4.0


@dataclass(frozen=True)
class VisibleRewards:
    """``root_cause_visible``: the table of seed 001, with its ranges made exact."""

    step_cost: float = -0.25  # inspect or ask_specialist
    relevant_evidence: float = 0.5  # first look at a relevant source; irrelevant/redundant 0
    apply_correct: float = 4.0
    apply_wrong: float = -4.0
    fix_correct: float = 10.0
    fix_wrong: float = -6.0
    justification: float = 1.0  # concise valid justification (see justification_verdict)
    fast_solve: float = 2.0  # correct, supported fix within `fast_steps` steps
    fast_steps: int = 4
    invalid_action: float = -2.0
    unsafe_sequence: float = -2.0  # apply_fix before any evidence was gathered
    unsupported: float = -2.0  # submit citing no inspected, relevant source
    out_of_steps: float = -4.0


BLIND_REWARDS = BlindRewards()
VISIBLE_REWARDS = VisibleRewards()

#: "Concise": the justification's length bounds, in characters after stripping.
JUSTIFICATION_MIN_CHARS = 20
JUSTIFICATION_MAX_CHARS = 280

_IDENTIFIER = re.compile(r"[a-z]+(?:_[a-z]+)+")
_NAMED = frozenset(ROOT_CAUSES) | frozenset(FIXES)


class Verdict(NamedTuple):
    ok: bool
    reason: str


def blind_justification_verdict(text: str) -> Verdict:
    """Blind mode pays for any justification of at least 10 characters."""
    length = len(text.strip())
    if length >= BLIND_REWARDS.justification_min_chars:
        return Verdict(True, "at least 10 characters")
    return Verdict(False, f"{length} characters; at least 10 are needed")


def justification_verdict(text: str, seen_facts: list[str], root_cause: str, fix: str) -> Verdict:
    """Is ``text`` a concise valid justification (``root_cause_visible``)?

    Deterministic rule, all three must hold:

    1. concise: 20 to 280 characters after stripping whitespace;
    2. grounded: it quotes (case-insensitively) at least one key fact of a
       relevant source the agent actually inspected or asked (``seen_facts``);
    3. consistent: it names no root-cause family or fix other than the
       scenario's own (``root_cause``, ``fix``).
    """
    stripped = text.strip()
    if len(stripped) < JUSTIFICATION_MIN_CHARS:
        return Verdict(False, f"too short ({len(stripped)} characters; at least 20)")
    if len(stripped) > JUSTIFICATION_MAX_CHARS:
        return Verdict(False, f"too long ({len(stripped)} characters; at most 280)")
    lowered = stripped.lower()
    others = sorted({m for m in _IDENTIFIER.findall(lowered) if m in _NAMED} - {root_cause, fix})
    if others:
        return Verdict(False, f"names {', '.join(others)}, which contradicts the known facts")
    if not any(fact.lower() in lowered for fact in seen_facts):
        return Verdict(False, "quotes no key fact from the relevant evidence you inspected")
    return Verdict(True, "concise, grounded in inspected evidence, consistent")
