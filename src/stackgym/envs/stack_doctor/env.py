"""Stack Doctor: a sick inference stack, four specialists, six steps.

Two modes share one incident world (SPEC §5, seed 001):

* ``blind_diagnosis`` — the root cause is hidden and at least one specialist
  is wrong; the agent inspects evidence, weighs the specialists against it,
  and submits a root cause and a fix.
* ``root_cause_visible`` — the reset names the root cause; specialists are
  supportive; the agent validates it with the minimum useful evidence, picks
  the minimal safe fix, and submits the fix, the evidence it inspected and a
  short justification.

A seed picks the scenario (``seed % len(split)``, so consecutive seeds cover a
split evenly) and every surface detail: hardware, model, backend, numbers in
logs, which specialists are mistaken and what they blame, confidences. The
same seed always gives the same episode.

Speed: scenarios are loaded, validated and compiled once per process; a reset
draws a few values and renders the opening texts; evidence is rendered the
first time it is inspected; observations are built without re-validation
from values the env produced itself (``models.build_trusted``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from stackgym.core import Action, ActionSet, Env, StepResult
from stackgym.core.errors import ConfigError, StackgymError, UnknownNameError
from stackgym.envs.stack_doctor import rubric
from stackgym.envs.stack_doctor.models import (
    FIX_FOR,
    FIXES,
    MODES,
    ROOT_CAUSES,
    SOURCES,
    SPECIALISTS,
    STEP_BUDGET,
    TARGETS,
    VISIBLE_BRIEFING,
    ApplyFix,
    AskSpecialist,
    Inspect,
    SpecialistOpinion,
    StackDoctorObservation,
    SubmitDiagnosis,
    SubmitRemediation,
    build_trusted,
)
from stackgym.envs.stack_doctor.scenarios import Catalog, CompiledScenario, load_catalog

SPLITS = ("train", "eval", "all")

_ACTION_SETS = {
    "blind_diagnosis": ActionSet([Inspect, AskSpecialist, ApplyFix, SubmitDiagnosis]),
    "root_cause_visible": ActionSet([Inspect, AskSpecialist, ApplyFix, SubmitRemediation]),
}

_BLIND_INTRO = (
    "An inference stack is failing. Find the root cause and the fix, then submit both. "
    "Specialists can be wrong: weigh what they say against the evidence you inspect."
)
_HOW_TO = {
    "blind_diagnosis": (
        '  {"type": "inspect", "target": "logs|config|snippet|metrics"}\n'
        '  {"type": "ask_specialist", "specialist": "runtime|dispatch|kernel|loader"}\n'
        '  {"type": "apply_fix", "fix": FIX}                       (once per episode)\n'
        '  {"type": "submit", "root_cause": ROOT_CAUSE, "fix": FIX, "justification": "..."}\n'
        f"ROOT_CAUSE: {' | '.join(ROOT_CAUSES)}\n"
        f"FIX: {' | '.join(FIXES)}"
    ),
    "root_cause_visible": (
        '  {"type": "inspect", "target": "logs|config|snippet|metrics"}\n'
        '  {"type": "ask_specialist", "specialist": "runtime|dispatch|kernel|loader"}\n'
        '  {"type": "apply_fix", "fix": FIX}                       (once per episode)\n'
        '  {"type": "submit", "fix": FIX, "evidence": [SOURCE, ...], "justification": "..."}\n'
        f"FIX: {' | '.join(FIXES)}\n"
        f"SOURCE: a target you inspected or a specialist you asked ({', '.join(SOURCES)})\n"
        "Justification: 20-280 characters quoting a fact you saw."
    ),
}


class _Episode:
    """Everything one episode knows; reset builds a fresh one.

    Counters and flags start as class attributes (immutable defaults), so a
    reset only assigns what differs: resets are hot.
    """

    steps = 0
    reward = 0.0
    applied: str | None = None
    done = False
    submitted = False
    fix_correct = False
    rc_correct: bool | None = None
    supported: bool | None = None
    justification_ok = False
    bad_interventions = 0
    unsafe = 0
    invalid = 0
    out_of_steps = False

    def __init__(self, scenario: CompiledScenario, variables: dict[str, str]) -> None:
        self.scenario = scenario
        self.vars = variables
        self.opinions: dict[str, SpecialistOpinion] = {}
        #: Follow-up template of each specialist this episode (rendered when asked).
        self.followups: dict[str, str] = {}
        #: Sources relevant this episode: probative targets and honest owners.
        self.relevant: frozenset[str] = frozenset()
        #: Everything seen so far: source -> rendered text, in the order seen.
        self.findings: dict[str, str] = {}
        #: The observation fields that stay the same for the whole episode.
        self.fixed: dict[str, Any] = {}


class StackDoctorEnv(Env):
    """The Stack Doctor incident environment (see the module docstring)."""

    env_id = "stack_doctor"
    observation_type = StackDoctorObservation

    def __init__(
        self,
        mode: str = "blind_diagnosis",
        split: str = "train",
        scenario: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(
                f"unknown Stack Doctor mode {mode!r}", f"choose one of: {', '.join(MODES)}"
            )
        if split not in SPLITS:
            raise ConfigError(
                f"unknown Stack Doctor split {split!r}", f"choose one of: {', '.join(SPLITS)}"
            )
        super().__init__(mode=mode, split=split, scenario=scenario)
        self.mode = mode
        self.split = split
        self.visible = mode == "root_cause_visible"
        self.rewards = rubric.VISIBLE_REWARDS if self.visible else rubric.BLIND_REWARDS
        self.catalog: Catalog = load_catalog()
        self.scenario_id = scenario
        if scenario is not None:
            self._check_scenario(scenario)
        self.pool = self.catalog.select(split)
        self._ep: _Episode | None = None
        if self.visible:
            intro = f"{VISIBLE_BRIEFING}\nKnown root cause (from upstream monitoring): {{known}}"
        else:
            intro = _BLIND_INTRO
        self._header = f"STACK DOCTOR ({mode})\n{intro}\n"
        self._footer = (
            f"\nYou have {STEP_BUDGET} steps; inspect and ask_specialist cost 0.25 each. "
            f"Actions:\n{_HOW_TO[mode]}"
        )
        self._nodes = tuple(self.catalog.world.nodes)
        self._tps = tuple(str(tp) for tp in self.catalog.world.tp)
        # Reseeded per episode; reusing one generator saves an allocation per reset.
        self._rng = random.Random(0)

    # -- the protocol -----------------------------------------------------------

    @property
    def action_set(self) -> ActionSet:
        return _ACTION_SETS[self.mode]

    def _check_scenario(self, scenario_id: Any) -> CompiledScenario:
        if not isinstance(scenario_id, str) or scenario_id not in self.catalog.scenarios:
            raise UnknownNameError(
                "Stack Doctor scenario", str(scenario_id), list(self.catalog.scenarios)
            )
        return self.catalog.scenarios[scenario_id]

    def _reset(
        self, seed: int, options: dict[str, Any]
    ) -> tuple[StackDoctorObservation, dict[str, Any]]:
        scenario_id = options.pop("scenario", self.scenario_id)
        if options:
            raise StackgymError(
                f"unknown reset options {sorted(options)} for stack_doctor",
                "reset accepts options={'scenario': ID}; mode and split are set in make()",
            )
        if scenario_id is not None:
            scenario = self._check_scenario(scenario_id)
        else:
            scenario = self.pool[seed % len(self.pool)]
        rng = self._rng
        rng.seed(seed)
        self._ep = ep = _Episode(scenario, self._draw_variables(scenario, rng.random))
        if self.visible:
            self._cast_supportive(ep, rng.random)
        else:
            self._cast_blind(ep, rng.random)
        variables = ep.vars
        ep.fixed = {
            "mode": self.mode,
            "known_root_cause": scenario.data.root_cause if self.visible else None,
            "ticket": scenario.ticket.format_map(variables),
            "hardware": variables["hardware"],
            "model": variables["model"],
            "backend": variables["backend"],
            "initial_log": scenario.initial_log.format_map(variables),
            "initial_snippet": scenario.initial_snippet.format_map(variables),
        }
        info = {"mode": self.mode, "split": self.split, "step_budget": STEP_BUDGET}
        return self._observe(ep, self._briefing(ep), "", None, False), info

    def _step(self, action: Action) -> StepResult:
        ep = self._ep
        assert ep is not None  # the base class refuses steps before reset
        ep.steps += 1
        kind = action.type
        if kind == "inspect":
            return self._look(ep, action.target)  # type: ignore[attr-defined]
        if kind == "ask_specialist":
            return self._look(ep, action.specialist)  # type: ignore[attr-defined]
        if kind == "apply_fix":
            return self._apply(ep, action.fix)  # type: ignore[attr-defined]
        if self.visible:
            return self._submit_remediation(ep, action)  # type: ignore[arg-type]
        return self._submit_diagnosis(ep, action)  # type: ignore[arg-type]

    def _invalid(self, message: str) -> StepResult:
        ep = self._ep
        if ep is None or ep.done:
            text = f"Invalid action: {message}"
            observation = self._observe(
                ep, text, text, self.rewards.invalid_action, True, error=message
            )
            breakdown = {"invalid_action": self.rewards.invalid_action}
            return StepResult(
                observation, self.rewards.invalid_action, True, False,
                {"reward_breakdown": breakdown, "steps_left": 0},
            )  # fmt: skip
        ep.steps += 1
        ep.invalid += 1
        return self._finish(
            ep,
            {"invalid_action": self.rewards.invalid_action},
            f"Invalid action (penalty {self.rewards.invalid_action:+g}): {message}",
            error=message,
        )

    def example_actions(self, rng: random.Random) -> list[Action]:
        """One valid action per tool with meaningful values (random targets and answers)."""
        fix = rng.choice(FIXES)
        if self.visible:
            seen = list(self._ep.findings) if self._ep is not None else []
            evidence = seen[:2] if seen else [rng.choice(TARGETS)]
            submit: Action = SubmitRemediation(
                fix=fix,
                evidence=evidence,
                justification=f"Evidence in {', '.join(evidence)} supports applying {fix}.",
            )
        else:
            root_cause = rng.choice(ROOT_CAUSES)
            submit = SubmitDiagnosis(
                root_cause=root_cause,
                fix=fix,
                justification=f"The symptoms point at {root_cause}.",
            )
        return [
            Inspect(target=rng.choice(TARGETS)),
            AskSpecialist(specialist=rng.choice(SPECIALISTS)),
            ApplyFix(fix=rng.choice(FIXES)),
            submit,
        ]

    def _extra_state(self) -> dict[str, Any]:
        ep = self._ep
        if ep is None:
            return {"mode": self.mode, "split": self.split}
        return {
            "mode": self.mode,
            "split": self.split,
            "steps_left": max(STEP_BUDGET - ep.steps, 0),
            "inspected": list(ep.findings),
            "fix_applied": ep.applied,
            # The scenario id would give the answer away; it is shown once the episode is over.
            "scenario": ep.scenario.id if ep.done else None,
        }

    # -- public helpers -----------------------------------------------------------

    def candidate_actions(self) -> list[Action]:
        """The sensible actions in the current state, for scorers that re-rank them.

        Sources not yet seen, every fix while none is applied, and one submit
        per root cause (blind; with its fix) or per fix (visible; citing every
        source seen). Submit candidates carry a generic justification; agents
        should write their own. Empty once the episode is over.
        """
        ep = self._ep
        if ep is None or ep.done:
            return []
        candidates: list[Action] = [Inspect(target=t) for t in TARGETS if t not in ep.findings]
        candidates += [AskSpecialist(specialist=s) for s in SPECIALISTS if s not in ep.findings]
        if ep.applied is None:
            candidates += [ApplyFix(fix=f) for f in FIXES]
        seen = list(ep.findings)
        where = ", ".join(seen) if seen else "the ticket"
        if self.visible:
            candidates += [
                SubmitRemediation(
                    fix=f, evidence=seen, justification=f"Evidence from {where} supports {f}."
                )
                for f in FIXES
            ]
        else:
            candidates += [
                SubmitDiagnosis(
                    root_cause=rc,
                    fix=fix,
                    justification=f"Evidence from {where} points to {rc}.",
                )
                for rc, fix in FIX_FOR.items()
            ]
        return candidates

    def answer_key(self) -> dict[str, Any]:
        """The hidden answer of the current episode: for oracle baselines and tests only.

        Never show it to an agent under evaluation.
        """
        ep = self._ep
        if ep is None:
            raise StackgymError("no episode yet", "call reset() first")
        scenario = ep.scenario
        return {
            "scenario": scenario.id,
            "root_cause": scenario.data.root_cause,
            "fix": scenario.data.fix,
            "minimal_evidence": list(scenario.data.minimal_evidence),
            "relevant": sorted(ep.relevant),
            "facts": {
                s: [f.format_map(ep.vars) for f in fs]
                for s, fs in scenario.facts.items()
                if s in ep.relevant
            },
        }

    # -- episode set-up -----------------------------------------------------------

    def _draw_variables(
        self, scenario: CompiledScenario, rand: Callable[[], float]
    ) -> dict[str, str]:
        # Draws index with ``random()`` (C) instead of ``choice`` (Python): resets are hot.
        hardware, models, backends = scenario.hardware, scenario.models, scenario.backends
        nodes, tps = self._nodes, self._tps
        variables = {
            **hardware[int(rand() * len(hardware))],
            **models[int(rand() * len(models))],
            **backends[int(rand() * len(backends))],
            "node": nodes[int(rand() * len(nodes))],
            "tp": tps[int(rand() * len(tps))],
        }
        for kind, name, payload in scenario.variables:
            if kind == "choice":
                variables[name] = payload[int(rand() * len(payload))]
            elif kind == "group":
                variables.update(payload[int(rand() * len(payload))])
            else:
                low, high, decimals = payload
                if decimals is None:
                    variables[name] = str(int(low) + int(rand() * (high - low + 1)))
                else:
                    variables[name] = f"{low + (high - low) * rand():.{decimals}f}"
        return variables

    def _cast_blind(self, ep: _Episode, rand: Callable[[], float]) -> None:
        """Pick who is mistaken (1 or 2, never every owner) and what each says."""
        scenario = ep.scenario
        data = scenario.data
        decoys = data.decoys
        library = self.catalog.library
        mistaken_voice, clear_voice = library.mistaken, library.clear
        sets = scenario.mistaken_sets[rand() >= 0.55]
        mistaken = sets[int(rand() * len(sets))]
        variables = ep.vars
        opinions: dict[str, SpecialistOpinion] = {}
        followups = ep.followups
        honest: list[str] = []
        for specialist, owned in scenario.roles:
            if specialist in mistaken:
                blamed = decoys[int(rand() * len(decoys))]
                says, followup = mistaken_voice[(specialist, blamed)]
                confidence = (50 + int(46 * rand())) / 100
            elif owned is not None:
                blamed = data.root_cause
                says, followup = owned
                # The same range as mistaken ones: confidence must not give the answer away.
                confidence = (50 + int(46 * rand())) / 100
                honest.append(specialist)
            else:
                blamed = None
                says, followup = _pick_voice(rand, clear_voice[specialist])
                confidence = (20 + int(31 * rand())) / 100
            opinions[specialist] = _opinion(blamed, confidence, says.format_map(variables))
            followups[specialist] = followup
        ep.opinions = opinions
        ep.relevant = scenario.probative_targets.union(honest)

    def _cast_supportive(self, ep: _Episode, rand: Callable[[], float]) -> None:
        """Visible mode: owners confirm, the others give details and risk checks."""
        scenario = ep.scenario
        data = scenario.data
        variables = ep.vars
        variables["root_cause"] = data.root_cause
        support = self.catalog.library.support
        others = [s for s, owned in scenario.roles if owned is None]
        # One non-owner raises the plausible-but-not-minimal alternative, if any.
        alternatives = list(scenario.alternatives.items())
        warner = others[int(rand() * len(others))] if alternatives and others else None
        opinions: dict[str, SpecialistOpinion] = {}
        for specialist, owned in scenario.roles:
            if owned is not None:
                says, followup = owned
                confidence = (70 + int(26 * rand())) / 100
            else:
                says, followup = _pick_voice(rand, support[specialist])
                confidence = (55 + int(31 * rand())) / 100
                if specialist == warner:
                    # ``why`` is a compiled template, so it is appended unescaped.
                    fix, why = alternatives[int(rand() * len(alternatives))]
                    followup = f"Risk check: {fix} would also make the symptom go away, but {why}."
            opinions[specialist] = _opinion(data.root_cause, confidence, says.format_map(variables))
            ep.followups[specialist] = followup
        ep.opinions = opinions
        ep.relevant = scenario.probative_targets.union(data.owners)

    # -- actions ------------------------------------------------------------------

    def _look(self, ep: _Episode, source: str) -> StepResult:
        """inspect and ask_specialist: show the source, pay for relevance once."""
        breakdown = {"step_cost": self.rewards.step_cost}
        text = ep.findings.get(source)
        if text is None:
            if source in ep.followups:
                text = ep.followups[source].format_map(ep.vars)
            else:
                text = ep.scenario.inspect[source].format_map(ep.vars)
            ep.findings[source] = text
            if self.visible and source in ep.relevant:
                breakdown["relevant_evidence"] = rubric.VISIBLE_REWARDS.relevant_evidence
            label = f"{source} says" if source in ep.followups else f"inspect {source}"
        else:
            label = f"{source} (already seen)"
        return self._finish(ep, breakdown, f"[{label}]\n{text}")

    def _apply(self, ep: _Episode, fix: str) -> StepResult:
        rewards = self.rewards
        if ep.applied is not None:
            ep.invalid += 1
            message = (
                f"apply_fix can be used once per episode and {ep.applied} is already applied; "
                "valid now: inspect, ask_specialist or submit"
            )
            return self._finish(
                ep,
                {"invalid_action": rewards.invalid_action},
                f"Invalid action (penalty {rewards.invalid_action:+g}): {message}",
                error=message,
                extra={"invalid_action": message},
            )
        ep.applied = fix
        correct = fix == ep.scenario.data.fix
        breakdown = {"apply_fix": rewards.apply_correct if correct else rewards.apply_wrong}
        if self.visible and not ep.findings:
            breakdown["unsafe_sequence"] = rubric.VISIBLE_REWARDS.unsafe_sequence
            ep.unsafe += 1
        if correct:
            text = f"Applied {fix}. The stack recovers: error rate back to baseline."
        else:
            ep.bad_interventions += 1
            why = ep.scenario.alternatives.get(fix)
            text = (
                f"Applied {fix}. The symptom is masked, but the root cause remains: "
                f"{why.format_map(ep.vars)}."
                if why
                else f"Applied {fix}. No effect: the incident continues."
            )
        return self._finish(ep, breakdown, text)

    def _submit_diagnosis(self, ep: _Episode, action: SubmitDiagnosis) -> StepResult:
        rewards = rubric.BLIND_REWARDS
        data = ep.scenario.data
        rc_ok = action.root_cause == data.root_cause
        fix_ok = action.fix == data.fix
        verdict = rubric.blind_justification_verdict(action.justification)
        breakdown = {
            "root_cause": rewards.root_cause_correct if rc_ok else rewards.root_cause_wrong,
            "fix": rewards.fix_correct if fix_ok else rewards.fix_wrong,
        }
        if verdict.ok:
            breakdown["justification"] = rewards.justification
        if rc_ok and fix_ok and ep.steps <= rewards.fast_steps:
            breakdown["fast_solve"] = rewards.fast_solve
        ep.submitted = True
        ep.rc_correct = rc_ok
        ep.fix_correct = fix_ok
        ep.justification_ok = verdict.ok
        text = (
            f"Submitted. Root cause {action.root_cause}: {'correct' if rc_ok else 'wrong'}; "
            f"fix {action.fix}: {'correct' if fix_ok else 'wrong'}. "
            f"The incident was {data.root_cause}, fixed by {data.fix}."
        )
        justification = {"ok": verdict.ok, "reason": verdict.reason}
        return self._finish(
            ep, breakdown, text, terminated=True, extra={"justification": justification}
        )

    def _submit_remediation(self, ep: _Episode, action: SubmitRemediation) -> StepResult:
        rewards = rubric.VISIBLE_REWARDS
        data = ep.scenario.data
        fix_ok = action.fix == data.fix
        cited = list(dict.fromkeys(action.evidence))
        counted = [s for s in cited if s in ep.findings]
        supported = any(s in ep.relevant for s in counted)
        facts = ep.scenario.facts
        seen_facts = [
            fact.format_map(ep.vars)
            for source in ep.findings
            if source in ep.relevant
            for fact in facts.get(source, ())
        ]
        verdict = rubric.justification_verdict(
            action.justification, seen_facts, data.root_cause, data.fix
        )
        breakdown = {"fix": rewards.fix_correct if fix_ok else rewards.fix_wrong}
        if not supported:
            breakdown["unsupported"] = rewards.unsupported
        if verdict.ok:
            breakdown["justification"] = rewards.justification
        if fix_ok and supported and ep.steps <= rewards.fast_steps:
            breakdown["fast_solve"] = rewards.fast_solve
        ep.submitted = True
        ep.fix_correct = fix_ok
        ep.supported = supported
        ep.justification_ok = verdict.ok
        text = (
            f"Submitted. Fix {action.fix}: {'correct' if fix_ok else 'wrong'} "
            f"(the minimal safe fix is {data.fix}). "
            f"Evidence counted: {', '.join(counted) or 'none'}"
            f"{'' if supported else ' - no relevant inspected source, submission unsupported'}. "
            f"Justification: {verdict.reason}."
        )
        extra = {
            "justification": {"ok": verdict.ok, "reason": verdict.reason},
            "evidence": {
                "cited": cited,
                "counted": counted,
                "not_inspected": [s for s in cited if s not in ep.findings],
            },
        }
        return self._finish(ep, breakdown, text, terminated=True, extra=extra)

    # -- bookkeeping --------------------------------------------------------------

    def _finish(
        self,
        ep: _Episode,
        breakdown: dict[str, float],
        text: str,
        *,
        terminated: bool = False,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StepResult:
        """Apply the step budget, sum the breakdown, build the observation and info."""
        steps_left = STEP_BUDGET - ep.steps
        truncated = not terminated and steps_left <= 0
        if truncated:
            breakdown["out_of_steps"] = self.rewards.out_of_steps
            ep.out_of_steps = True
            penalty = self.rewards.out_of_steps
            text += f"\nOut of steps (penalty {penalty:+g}): the incident stays open."
        if steps_left < 0:
            steps_left = 0  # refused actions after the end do not come here; be safe anyway
        reward = sum(breakdown.values())
        ep.reward += reward
        info: dict[str, Any] = {"reward_breakdown": breakdown, "steps_left": steps_left}
        if extra:
            info.update(extra)
        done = terminated or truncated
        if done:
            ep.done = True
            info["outcome"] = self._outcome(ep)
            shown = text
        else:
            status = f"; fix applied: {ep.applied})" if ep.applied else ")"
            shown = f"{text}\n({steps_left} step{'s' if steps_left != 1 else ''} left{status}"
        observation = self._observe(ep, shown, text, reward, done, error=error, left=steps_left)
        return StepResult(observation, reward, terminated, truncated, info)

    def _outcome(self, ep: _Episode) -> dict[str, Any]:
        data = ep.scenario.data
        inspected = len(ep.findings)
        relevant = sum(1 for s in ep.findings if s in ep.relevant)
        passed = ep.fix_correct and (self.visible or bool(ep.rc_correct))
        metrics = {
            "fix_correct": ep.fix_correct,
            "rc_correct": None if self.visible else bool(ep.rc_correct),
            "submitted": ep.submitted,
            "steps": ep.steps,
            "reward": ep.reward,
            "inspected": inspected,
            "relevant_inspected": relevant,
            "evidence_precision": relevant / inspected if inspected else None,
            "justification_ok": ep.justification_ok,
            "supported": ep.supported if self.visible else None,
            "fix_applied": ep.applied is not None,
            "bad_interventions": ep.bad_interventions,
            "unsafe_actions": ep.unsafe,
            "invalid_actions": ep.invalid,
            "out_of_steps": ep.out_of_steps,
            "minimal_evidence_seen": all(s in ep.findings for s in data.minimal_evidence),
        }
        return {
            "passed": passed,
            "metrics": metrics,
            "scenario": data.id,
            "answer": {"root_cause": data.root_cause, "fix": data.fix},
        }

    def _briefing(self, ep: _Episode) -> str:
        header = self._header
        if self.visible:
            header = header.replace("{known}", ep.scenario.data.root_cause)
        fixed = ep.fixed
        lines = [
            header,
            f"Ticket: {fixed['ticket']}",
            f"Stack: {fixed['model']} on {fixed['backend']}, {fixed['hardware']}",
            "Initial log:",
            "  " + fixed["initial_log"].replace("\n", "\n  "),
            "Snippet:",
            "  " + fixed["initial_snippet"].replace("\n", "\n  "),
            "Specialists:",
        ]
        for name, opinion in ep.opinions.items():
            verdict = f"suspects {opinion.suspects}" if opinion.suspects else "sees no fault"
            lines.append(
                f"  - {name} (confidence {opinion.confidence:.2f}) {verdict}: {opinion.says}"
            )
        lines.append(self._footer)
        return "\n".join(lines)

    def _observe(
        self,
        ep: _Episode | None,
        text: str,
        last_result: str,
        reward: float | None,
        done: bool,
        *,
        error: str | None = None,
        left: int | None = None,
    ) -> StackDoctorObservation:
        if ep is None:
            return StackDoctorObservation(
                text=text, last_result=last_result, reward=reward, done=done, error=error
            )
        if left is None:
            left = STEP_BUDGET - ep.steps if ep.steps < STEP_BUDGET else 0
        return build_trusted(
            StackDoctorObservation,
            {
                "text": text,
                "done": done,
                "reward": reward,
                "error": error,
                "metadata": {},
                **ep.fixed,
                "specialists": dict(ep.opinions),
                "findings": dict(ep.findings),
                "last_result": last_result,
                "steps_left": left,
                "fix_applied": ep.applied,
            },
            _OBSERVATION_FIELDS.copy(),
        )


_OPINION_FIELDS = {"suspects", "confidence", "says"}
_OBSERVATION_FIELDS = set(StackDoctorObservation.model_fields)


def _opinion(suspects: str | None, confidence: float, says: str) -> SpecialistOpinion:
    """A :class:`SpecialistOpinion` from trusted values.

    Opinions are frozen, so pydantic never mutates their fields-set and all of
    them can share one (four fewer allocations per reset).
    """
    return build_trusted(
        SpecialistOpinion,
        {"suspects": suspects, "confidence": confidence, "says": says},
        _OPINION_FIELDS,
    )


def _pick_voice(
    rand: Callable[[], float], voice: tuple[tuple[str, ...], tuple[str, ...]]
) -> tuple[str, str]:
    """One wording of what a specialist says and one of its follow-up."""
    says, followups = voice
    return says[int(rand() * len(says))], followups[int(rand() * len(followups))]
