"""Agents built on a base agent's candidate actions: the ``scorer:BASE`` family and an explorer.

* :class:`ScorerAgent` (``scorer:heuristic``) asks its base agent for a turn,
  takes the candidate actions it reports (or ``env.candidate_actions()``),
  scores each with a trained Tier 1 scorer and plays the best. When that is
  the base agent's own choice, the base agent's turn is played unchanged (its
  justification and reasoning included).
* :class:`ExploringAgent` (``stackgym train collect``) plays its base agent
  but, with probability ``epsilon``, one of the other candidates instead. Its
  traces show several actions from comparable states, which is what a
  pairwise ranking loss learns from. It records the base agent's pick apart
  from the action taken (``base_choice`` vs ``chosen``).
* :class:`BranchingAgent` (``stackgym train collect --branches K``) replays
  its base agent's episode up to one step, plays one other candidate there,
  and lets the base agent finish: a counterfactual rollout, whose return is
  the value of that action under the base policy (``Q_base(s, a)``).
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from stackgym.core.agents import Agent, AgentTurn, make_agent
from stackgym.core.models import Observation
from stackgym.train.config import TrainConfig, load_config
from stackgym.train.experience import Experience, action_key


def _as_turn(decision: Any) -> AgentTurn:
    return decision if isinstance(decision, AgentTurn) else AgentTurn(action=decision)


def _dump(action: Any) -> Any:
    return action.model_dump(mode="json") if isinstance(action, BaseModel) else action


class _OnBase(Agent):
    """Shared plumbing: a base agent, the env, the actions taken so far."""

    def __init__(self, base: Agent, config: TrainConfig) -> None:
        self.base = base
        self.config = config
        self.free = config.features.free_text_fields
        self.env: Any = None
        self.history: list[str] = []

    def reset(self, env: Any, observation: Observation, info: dict[str, Any]) -> None:
        self.base.reset(env, observation, info)
        self.env = env
        self.history = []
        self.seed = int(info.get("seed", 0))

    def close(self) -> None:
        self.base.close()

    def _candidates(self, turn: AgentTurn) -> list[dict[str, Any]]:
        """The base agent's scored candidates, or the env's (unscored), with its pick flagged.

        Candidates that differ only in free text (a submit with the env's generic
        justification beside the base agent's own) are one action: the base
        agent's own version is kept.
        """
        chosen = action_key(_dump(turn.action), self.free)
        if turn.candidates:
            given = [c for c in turn.candidates if isinstance(c, dict) and "action" in c]
        else:
            lister = getattr(self.env, "candidate_actions", None)
            actions = [_dump(a) for a in lister()] if lister is not None else []
            given = [{"action": a, "score": None, "chosen": False} for a in actions]
        own = next((c for c in given if c.get("chosen")), None)
        if own is None or action_key(own["action"], self.free) != chosen:
            own = {"action": _dump(turn.action), "score": None, "chosen": True}
            given.append(own)
        out = []
        seen: set[str] = set()
        for candidate in given:
            key = action_key(candidate["action"], self.free)
            if key == chosen and candidate is not own:
                continue
            if key in seen:
                continue
            seen.add(key)
            out.append({**candidate, "chosen": candidate is own})
        return out

    def _remember(self, action: Any) -> None:
        self.history.append(action_key(_dump(action), self.free))


class ScorerAgent(_OnBase):
    """Re-ranks a base agent's candidate actions with a trained Tier 1 scorer."""

    def __init__(self, base: Agent, scorer: Any, config: TrainConfig, base_name: str) -> None:
        super().__init__(base, config)
        self.scorer = scorer
        self.base_name = base_name
        self.name = f"scorer:{base_name}"

    def params(self) -> dict[str, Any]:
        return {
            "base": self.base_name,
            "checkpoint": str(self.scorer.folder),
            "rank": self.config.tier1.rank,
            "embedder": self.config.embedder.kind,
            "switch_margin": self.config.tier1.switch_margin,
            "switch_types": list(self.config.tier1.switch_types),
            "max_switches": self.config.tier1.max_switches,
        }

    def reset(self, env: Any, observation: Observation, info: dict[str, Any]) -> None:
        super().reset(env, observation, info)
        self.switches = 0

    def act(self, observation: Observation) -> AgentTurn:
        turn = _as_turn(self.base.act(observation))
        limit = self.config.tier1.max_switches
        if limit is not None and self.switches >= limit:
            self._remember(turn.action)
            return turn
        candidates = self._candidates(turn)
        if len(candidates) < 2:
            self._remember(turn.action)
            return turn
        state = Experience(
            episode_id="",
            env_id=self.env.env_id,
            options=dict(self.env.settings),
            task="",
            seed=self.seed,
            step=len(self.history),
            observation_text=observation.text,
            observation=observation.model_dump(mode="json"),
            action=None,
            history=tuple(self.history),
            candidates=candidates,
            reward=0.0,
            return_to_go=0.0,
            episode_return=0.0,
            passed=None,
            confidence=None,
            reasoning=None,
            agent=self.name,
        )
        scores = self.scorer.score(state, [c["action"] for c in candidates])
        base_pick = next(i for i, c in enumerate(candidates) if c["chosen"])
        allowed = self.config.tier1.switch_types
        eligible = scores
        if allowed:
            # Only the base agent's pick and actions of the allowed types compete.
            kinds = [c["action"].get("type") if isinstance(c["action"], dict) else None
                     for c in candidates]  # fmt: skip
            mask = [i == base_pick or k in allowed for i, k in enumerate(kinds)]
            eligible = np.where(mask, scores, -np.inf)
        best = int(eligible.argmax())
        if scores[best] - scores[base_pick] < self.config.tier1.switch_margin:
            best = base_pick
        scored = []
        for candidate, value in zip(candidates, scores, strict=True):
            scored.append(
                {
                    "action": candidate["action"],
                    "score": round(float(value), 4),
                    "base_score": candidate.get("score"),
                    "base_choice": candidate["chosen"],
                    "chosen": False,
                }
            )
        scored[best]["chosen"] = True
        self._remember(candidates[best]["action"])
        if candidates[best]["chosen"]:
            return AgentTurn(
                turn.action, reasoning=turn.reasoning, usage=turn.usage,
                tool_calls=turn.tool_calls, candidates=scored,
            )  # fmt: skip
        self.switches += 1
        reasoning = (
            f"scorer prefers {action_key(candidates[best]['action'], self.free)} "
            f"({scores[best]:+.3f}) over {self.base_name}'s "
            f"{action_key(candidates[base_pick]['action'], self.free)} ({scores[base_pick]:+.3f})"
        )
        return AgentTurn(candidates[best]["action"], reasoning=reasoning, candidates=scored)


class ExploringAgent(_OnBase):
    """The base agent, but with probability ``epsilon`` another of its candidates."""

    def __init__(
        self, base: Agent, config: TrainConfig, base_name: str, epsilon: float, stream: int = 0
    ) -> None:
        super().__init__(base, config)
        if not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must be within [0, 1], got {epsilon}")
        self.epsilon = epsilon
        self.stream = stream
        self.base_name = base_name
        self.name = f"explore:{base_name}"

    def params(self) -> dict[str, Any]:
        return {"base": self.base_name, "epsilon": self.epsilon, "stream": self.stream}

    def reset(self, env: Any, observation: Observation, info: dict[str, Any]) -> None:
        super().reset(env, observation, info)
        self.rng = random.Random(f"{self.seed}/{self.stream}")

    def act(self, observation: Observation) -> AgentTurn:
        turn = _as_turn(self.base.act(observation))
        candidates = self._candidates(turn)
        for candidate in candidates:
            candidate["base_choice"] = candidate["chosen"]
        others = [c for c in candidates if not c["chosen"]]
        if others and self.rng.random() < self.epsilon:
            pick = self.rng.choice(others)
            for candidate in candidates:
                candidate["chosen"] = candidate is pick
            self._remember(pick["action"])
            return AgentTurn(pick["action"], reasoning="exploration", candidates=candidates)
        self._remember(turn.action)
        return AgentTurn(
            turn.action, reasoning=turn.reasoning, usage=turn.usage,
            tool_calls=turn.tool_calls, candidates=candidates,
        )  # fmt: skip


class BranchingAgent(_OnBase):
    """The base agent, except at step ``at``, where it plays ``alternative``.

    Every step before ``at`` is the base agent's own choice (the base agent
    still sees each observation, so its beliefs stay in step), which makes the
    episode's first ``at`` steps a replay of the base episode on the same seed;
    the env is deterministic given seed and actions. The traces record
    ``branch_step`` in the agent's params so experience extraction keeps only
    the steps from the branch on (the replayed prefix is not a sample of the
    base policy's values).
    """

    def __init__(
        self, base: Agent, config: TrainConfig, base_name: str, at: int, alternative: Any
    ) -> None:
        super().__init__(base, config)
        if at < 0:
            raise ValueError(f"branch step must be >= 0, got {at}")
        self.at = at
        self.alternative = _dump(alternative)
        self.base_name = base_name
        self.name = f"branch:{base_name}"

    def params(self) -> dict[str, Any]:
        return {"base": self.base_name, "branch_step": self.at, "alternative": self.alternative}

    def act(self, observation: Observation) -> AgentTurn:
        turn = _as_turn(self.base.act(observation))
        candidates = self._candidates(turn)
        for candidate in candidates:
            candidate["base_choice"] = candidate["chosen"]
        if len(self.history) != self.at:
            self._remember(turn.action)
            return AgentTurn(
                turn.action, reasoning=turn.reasoning, usage=turn.usage,
                tool_calls=turn.tool_calls, candidates=candidates,
            )  # fmt: skip
        wanted = action_key(self.alternative, self.free)
        for candidate in candidates:
            candidate["chosen"] = action_key(candidate["action"], self.free) == wanted
        self._remember(self.alternative)
        return AgentTurn(self.alternative, reasoning="branch", candidates=candidates)


_SCORERS: dict[tuple[str, float, str], Any] = {}
_LOCK = threading.Lock()


def load_scorer(config: TrainConfig, folder: Path | None = None) -> Any:
    """A trained :class:`~stackgym.train.tier1.Tier1Scorer`, shared per checkpoint file."""
    from stackgym.train.tier1 import CHECKPOINT_FILE, Tier1Scorer

    folder = Path(folder) if folder is not None else Path(config.out) / "tier1"
    path = folder / CHECKPOINT_FILE
    stamp = path.stat().st_mtime if path.is_file() else 0.0
    key = (str(folder.resolve()), stamp, config.model_dump_json())
    with _LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = Tier1Scorer(config, folder)
        return _SCORERS[key]


def scorer_agent(
    argument: str,
    env_id: str,
    *,
    config: TrainConfig | None = None,
    checkpoint: str | Path | None = None,
    **base_kwargs: Any,
) -> ScorerAgent:
    """``scorer:BASE`` or ``scorer:BASE@CHECKPOINT_FOLDER``.

    The config is ``config`` or :func:`~stackgym.train.config.load_config`'s
    (``$STACKGYM_TRAIN_CONFIG``, ``./stackgym-train.yaml``, defaults); the
    checkpoint folder defaults to ``<config.out>/tier1``.
    """
    base_name, _, folder = argument.partition("@")
    if not base_name:
        from stackgym.core.errors import ConfigError

        raise ConfigError("scorer agents need a base agent", "e.g. scorer:heuristic")
    config = config or load_config()
    scorer = load_scorer(
        config, Path(folder) if folder else (Path(checkpoint) if checkpoint else None)
    )
    base = make_agent(base_name, env_id, **base_kwargs)
    return ScorerAgent(base, scorer, config, base_name)
