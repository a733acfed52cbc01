"""Scripted Stack Doctor agents: oracle, heuristic and random, for both modes.

* :class:`OracleAgent` reads the hidden answer (``env.answer_key()``) and plays
  the minimal episode: inspect the scenario's ``minimal_evidence``, apply the
  fix, submit with a justification quoting a key fact. It proves every
  scenario is solvable within the budget.
* :class:`HeuristicAgent` is a sensible investigator that only reads
  observations: it matches symptoms against a small lexicon of failure
  patterns (``cues.yaml``), chooses what to inspect from it, weighs each
  specialist by whether the evidence backs their claim, applies a fix only
  when the evidence is clear, and quotes the line that convinced it. Each turn
  it reports the candidate actions it considered with scores, for learned
  re-rankers.
* :class:`RandomAgent` picks one of the env's example actions uniformly.
"""

from __future__ import annotations

import functools
import math
import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackgym.core import Action, Agent, AgentTurn, Observation
from stackgym.core.errors import DataError
from stackgym.envs.stack_doctor.env import StackDoctorEnv
from stackgym.envs.stack_doctor.models import (
    FIX_FOR,
    FIXES,
    ROOT_CAUSES,
    SPECIALISTS,
    TARGETS,
    ApplyFix,
    AskSpecialist,
    Inspect,
    RootCause,
    StackDoctorObservation,
    SubmitDiagnosis,
    SubmitRemediation,
    Target,
)
from stackgym.envs.stack_doctor.scenarios import _parse_yaml

_FAMILY_OF = {fix: family for family, fix in FIX_FOR.items()}
_NAMED = re.compile("|".join(sorted(ROOT_CAUSES + FIXES, key=len, reverse=True)))


def _require_env(env: Any) -> StackDoctorEnv:
    if not isinstance(env, StackDoctorEnv):
        raise TypeError(f"Stack Doctor baselines need a StackDoctorEnv, got {type(env).__name__}")
    return env


# -- the heuristic's lexicon ----------------------------------------------------


class _FamilyCues(BaseModel):
    model_config = ConfigDict(extra="forbid")

    look_first: list[Target] = Field(min_length=1)
    strong: list[str] = Field(min_length=1)
    weak: list[str] = Field(default_factory=list)


class _CueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    families: dict[RootCause, _FamilyCues]


@dataclass(frozen=True)
class CueBook:
    """Compiled symptom patterns per root-cause family (from ``cues.yaml``)."""

    strong: dict[str, tuple[re.Pattern[str], ...]]
    weak: dict[str, tuple[re.Pattern[str], ...]]
    look_first: dict[str, tuple[str, ...]]

    def score(self, text: str) -> dict[str, float]:
        """Family -> 3 per strong pattern found + 1 per weak pattern found."""
        scores: dict[str, float] = {}
        for family in ROOT_CAUSES:
            value = 3.0 * sum(1 for p in self.strong[family] if p.search(text))
            value += sum(1 for p in self.weak[family] if p.search(text))
            if value:
                scores[family] = value
        return scores

    def telling_lines(self, text: str, family: str, count: int = 2) -> list[str]:
        """Up to ``count`` lines of ``text`` that match ``family``'s patterns best.

        Comment lines (file headers such as ``# config.json``) are skipped: an
        investigator quotes what the evidence says, not where it came from.
        """
        scored = []
        for position, raw in enumerate(text.splitlines()):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            hits = 3 * sum(1 for p in self.strong[family] if p.search(line))
            hits += sum(1 for p in self.weak[family] if p.search(line))
            if hits:
                scored.append((-hits, position, line))
        return [line for _, _, line in sorted(scored)[:count]]


@functools.cache
def load_cues() -> CueBook:
    """The heuristic's lexicon, validated and compiled once."""
    text = resources.files("stackgym.envs.stack_doctor").joinpath("cues.yaml").read_text("utf-8")
    try:
        data = _CueFile.model_validate(_parse_yaml(text, "cues.yaml"))
    except ValueError as exc:
        raise DataError(f"invalid cues.yaml: {exc}") from None
    missing = set(ROOT_CAUSES) - set(data.families)
    if missing:
        raise DataError(f"cues.yaml has no entry for {sorted(missing)}")

    def compiled(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)

    return CueBook(
        strong={f: compiled(c.strong) for f, c in data.families.items()},
        weak={f: compiled(c.weak) for f, c in data.families.items()},
        look_first={f: tuple(c.look_first) for f, c in data.families.items()},
    )


# -- oracle -------------------------------------------------------------------


class OracleAgent(Agent):
    """Reads the hidden answer and plays the minimal correct episode."""

    name = "oracle"

    def reset(self, env: Any, observation: Observation, info: dict[str, Any]) -> None:
        self.env = _require_env(env)
        self.key = self.env.answer_key()
        self.visible = self.env.visible

    def act(self, observation: Observation) -> AgentTurn:
        assert isinstance(observation, StackDoctorObservation)
        key = self.key
        for source in key["minimal_evidence"]:
            if source not in observation.findings:
                action: Action = (
                    Inspect(target=source)
                    if source in TARGETS
                    else AskSpecialist(specialist=source)
                )
                return AgentTurn(action, reasoning=f"{source} is in the minimal evidence")
        if observation.fix_applied is None:
            return AgentTurn(ApplyFix(fix=key["fix"]), reasoning="apply the known correct fix")
        source = key["minimal_evidence"][0]
        fact = key["facts"][source][0]
        justification = f"{source} shows {fact}, which confirms {key['root_cause']}."
        if self.visible:
            submit: Action = SubmitRemediation(
                fix=key["fix"], evidence=key["minimal_evidence"], justification=justification
            )
        else:
            submit = SubmitDiagnosis(
                root_cause=key["root_cause"], fix=key["fix"], justification=justification
            )
        return AgentTurn(submit, reasoning="minimal evidence seen and fix applied")


# -- random -------------------------------------------------------------------


class RandomAgent(Agent):
    """A uniformly random valid action each step (seeded by the episode)."""

    name = "random"

    def reset(self, env: Any, observation: Observation, info: dict[str, Any]) -> None:
        self.env = _require_env(env)
        self.rng = random.Random(info.get("seed", 0))

    def act(self, observation: Observation) -> Action:
        return self.rng.choice(self.env.example_actions(self.rng))


# -- heuristic ------------------------------------------------------------------

#: How much a source's patterns count: the opening texts are vague, follow-ups
#: are second-hand, inspected evidence is first-hand.
_OPENING_WEIGHT = 0.5
_FOLLOWUP_WEIGHT = 0.6
#: Weight of specialists' claims (times confidence and trust).
_SPECIALIST_WEIGHT = 2.0
#: Lead (in score points) over the runner-up needed to apply a fix.
_APPLY_MARGIN = 3.0
#: At most this many sources are inspected/asked before deciding.
_MAX_LOOKS = 3


class HeuristicAgent(Agent):
    """A sensible investigator that reads only observations (see module docstring)."""

    name = "heuristic"

    def __init__(self) -> None:
        self.cues = load_cues()
        self.env: StackDoctorEnv | None = None

    def params(self) -> dict[str, Any]:
        return {"apply_margin": _APPLY_MARGIN, "max_looks": _MAX_LOOKS}

    def reset(self, env: Any, observation: Observation, info: dict[str, Any]) -> None:
        self.env = _require_env(env)
        assert isinstance(observation, StackDoctorObservation)
        opening = "\n".join(
            (observation.ticket, observation.initial_log, observation.initial_snippet)
        )
        self.opening = self.cues.score(opening)
        self.by_source: dict[str, dict[str, float]] = {}
        self.ruled_out: set[str] = set()

    # -- beliefs ----------------------------------------------------------------

    def _update(self, observation: StackDoctorObservation) -> None:
        for source, text in observation.findings.items():
            if source not in self.by_source:
                self.by_source[source] = self.cues.score(text)
        applied = observation.fix_applied
        result = observation.last_result
        # A fix that did not make the stack recover rules its family out.
        if (
            applied is not None
            and result.startswith(f"Applied {applied}")
            and ("recovers" not in result)
        ):
            self.ruled_out.add(_FAMILY_OF[applied])

    def _evidence(self) -> dict[str, float]:
        evidence = {f: _OPENING_WEIGHT * v for f, v in self.opening.items()}
        for source, scores in self.by_source.items():
            weight = _FOLLOWUP_WEIGHT if source in SPECIALISTS else 1.0
            for family, value in scores.items():
                evidence[family] = evidence.get(family, 0.0) + weight * value
        return evidence

    def _beliefs(self, observation: StackDoctorObservation) -> dict[str, float]:
        """Evidence score plus specialists' claims, each weighted by how well
        the inspected evidence backs the family they blame."""
        evidence = self._evidence()
        inspected = any(s in TARGETS for s in self.by_source)
        beliefs = dict.fromkeys(ROOT_CAUSES, 0.0)
        beliefs.update(evidence)
        for opinion in observation.specialists.values():
            if opinion.suspects not in beliefs:
                continue
            trust = 1.0
            if inspected:
                trust = 1.5 if evidence.get(opinion.suspects, 0.0) >= 3.0 else 0.4
            beliefs[opinion.suspects] += _SPECIALIST_WEIGHT * opinion.confidence * trust
        for family in self.ruled_out:
            beliefs[family] = -math.inf
        return beliefs

    def _next_target(self, ranked: list[str]) -> str | None:
        """The uninspected target the leading families point to first."""
        votes = dict.fromkeys(TARGETS, 0.0)
        for rank_weight, family in zip((3.0, 2.0, 1.0), ranked[:3], strict=False):
            for position, target in enumerate(self.cues.look_first[family]):
                votes[target] += rank_weight / (position + 1)
        open_targets = [t for t in TARGETS if t not in self.by_source]
        if not open_targets:
            return None
        return max(open_targets, key=lambda t: (votes[t], -TARGETS.index(t)))

    def _quote(self, family: str) -> tuple[list[str], str]:
        """Sources whose text backs ``family`` and a quote of their telling lines."""
        backing = [s for s, scores in self.by_source.items() if scores.get(family, 0.0) >= 3.0]
        for source in backing:
            lines = [
                line
                for line in self.cues.telling_lines(self._findings[source], family)
                if not _NAMED.search(line.lower())
            ]
            if lines:
                return backing, f"{source}: {' / '.join(lines)}"[:240]
        return backing, ""

    # -- policy -----------------------------------------------------------------

    def act(self, observation: Observation) -> AgentTurn:
        assert isinstance(observation, StackDoctorObservation)
        self._findings = observation.findings
        self._update(observation)
        if observation.mode == "root_cause_visible":
            action, reasoning = self._remediate(observation)
        else:
            action, reasoning = self._diagnose(observation)
        candidates = self._candidates(observation, action)
        return AgentTurn(action, reasoning=reasoning, candidates=candidates)

    def _diagnose(self, observation: StackDoctorObservation) -> tuple[Action, str]:
        beliefs = self._beliefs(observation)
        ranked = sorted(ROOT_CAUSES, key=lambda f: beliefs[f], reverse=True)
        top, second = ranked[0], ranked[1]
        margin = beliefs[top] - beliefs[second]
        looks = len(self.by_source)
        summary = f"leading {top} ({beliefs[top]:.1f}) over {second} ({beliefs[second]:.1f})"
        # After a fix (recovered, or ruled out by failing) or at the last step: submit.
        if observation.fix_applied is not None or observation.steps_left <= 1:
            return self._submit_diagnosis(top), f"submit: {summary}"
        clear = margin >= _APPLY_MARGIN and self._evidence().get(top, 0.0) >= 3.0
        if looks >= 2 and clear:
            return ApplyFix(fix=FIX_FOR[top]), f"evidence is clear, apply: {summary}"
        if looks < _MAX_LOOKS and observation.steps_left > 2:
            target = self._next_target(ranked)
            if target is not None and (looks < 2 or not clear):
                return Inspect(target=target), f"inspect {target}: {summary}"
        if margin >= _APPLY_MARGIN / 2 and observation.steps_left > 1:
            return ApplyFix(fix=FIX_FOR[top]), f"fairly sure, apply: {summary}"
        return self._submit_diagnosis(top), f"budget spent, submit best guess: {summary}"

    def _submit_diagnosis(self, family: str) -> SubmitDiagnosis:
        _, quote = self._quote(family)
        justification = quote or f"The inspected evidence points to {family}."
        return SubmitDiagnosis(root_cause=family, fix=FIX_FOR[family], justification=justification)

    def _remediate(self, observation: StackDoctorObservation) -> tuple[Action, str]:
        known = observation.known_root_cause or ROOT_CAUSES[0]
        fix = FIX_FOR[known]
        backing, quote = self._quote(known)
        if observation.fix_applied is not None or observation.steps_left <= 1:
            evidence = backing or list(self.by_source)[:1]
            justification = quote or f"The inspected evidence is consistent with {known}."
            action = SubmitRemediation(fix=fix, evidence=evidence, justification=justification)
            return action, f"submit {fix}, citing {', '.join(evidence) or 'nothing'}"
        if backing:
            return ApplyFix(fix=fix), f"{', '.join(backing)} confirm {known}; apply {fix}"
        looks = len(self.by_source)
        if looks < 2:
            for target in (*self.cues.look_first[known], *TARGETS):
                if target not in self.by_source:
                    return Inspect(target=target), f"look for {known} in {target}"
        if looks < _MAX_LOOKS:
            # The specialist whose opening statement matches the known cause best.
            asked = [s for s in SPECIALISTS if s not in self.by_source]
            if asked:
                best = max(
                    asked,
                    key=lambda s: self.cues.score(observation.specialists[s].says).get(known, 0),
                )
                return AskSpecialist(specialist=best), f"ask {best} to confirm {known}"
        return ApplyFix(fix=fix), f"no direct confirmation of {known}; apply {fix} anyway"

    def _candidates(
        self, observation: StackDoctorObservation, chosen: Action
    ) -> list[dict[str, Any]]:
        """Every sensible action (``env.candidate_actions()``) with this heuristic's score.

        Scores: for a fix or a submission, the heuristic's belief in that
        family (a softmax over its scores); for an inspection, how strongly
        the leading families point at that target; for a question, the
        specialist's confidence times the belief in the family it blames. The
        chosen action is flagged (and added if its justification differs from
        the generic one of the env's candidate).
        """
        if self.env is None:
            return []
        if observation.mode == "root_cause_visible":
            known = observation.known_root_cause or ""
            beliefs = {f: (10.0 if f == known else 0.0) for f in ROOT_CAUSES}
        else:
            beliefs = self._beliefs(observation)
        finite = [v for v in beliefs.values() if v != -math.inf]
        top = max(finite) if finite else 0.0
        weights = {
            f: 0.0 if v == -math.inf else math.exp((v - top) / 2.0) for f, v in beliefs.items()
        }
        total = sum(weights.values()) or 1.0
        belief = {f: w / total for f, w in weights.items()}
        ranked = sorted(ROOT_CAUSES, key=lambda f: beliefs[f], reverse=True)
        look_votes = dict.fromkeys(TARGETS, 0.0)
        for rank_weight, family in zip((0.5, 0.33, 0.17), ranked[:3], strict=False):
            for position, target in enumerate(self.cues.look_first[family]):
                look_votes[target] += rank_weight / (position + 1)

        def score(action: Action) -> float:
            if isinstance(action, Inspect):
                return look_votes[action.target]
            if isinstance(action, AskSpecialist):
                opinion = observation.specialists[action.specialist]
                return opinion.confidence * belief.get(opinion.suspects or "", 0.0)
            if isinstance(action, SubmitDiagnosis):
                return belief[action.root_cause]
            assert isinstance(action, ApplyFix | SubmitRemediation)
            return belief[_FAMILY_OF[action.fix]]

        chosen_dump = chosen.model_dump(mode="json")
        scored = [
            {"action": a.model_dump(mode="json"), "score": round(score(a), 4), "chosen": False}
            for a in self.env.candidate_actions()
        ]
        match = next((c for c in scored if c["action"] == chosen_dump), None)
        if match is None:
            match = {"action": chosen_dump, "score": round(score(chosen), 4), "chosen": False}
            scored.append(match)
        match["chosen"] = True
        return scored
