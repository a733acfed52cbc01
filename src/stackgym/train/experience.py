"""Step-level experiences, read from trace stores and nothing else.

Seed 003's second bug: the trainer globbed ``*.json`` while the tracer wrote
``traces.jsonl``, and found nothing. Here every reader goes through
:class:`~stackgym.core.traces.TraceStore` (the class that writes traces), and
:func:`discover` reports exactly which stores it found, how, and what it
skipped, so "0 traces" can never be silent.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackgym.core.errors import DataError
from stackgym.core.traces import TRACE_FILE, EpisodeRecord, TraceStore
from stackgym.train.config import TrainConfig


@dataclass(slots=True)
class Experience:
    """One decision: the state an agent saw, what it could do, what it did and what came of it."""

    episode_id: str
    env_id: str
    #: The env options of the episode (mode, split…), as given.
    options: dict[str, Any]
    #: The scenario or task the episode played (from its outcome or options).
    task: str
    seed: int
    step: int
    #: What the agent read before acting (the previous observation's text).
    observation_text: str
    #: The previous observation as data (typed fields), for structured features.
    observation: dict[str, Any]
    #: The action taken (a dict, or raw text when it was not JSON).
    action: Any
    #: The actions taken before this one in the episode.
    history: tuple[str, ...]
    #: Candidate actions the agent reported (``[{action, score, chosen…}]``), if any.
    candidates: list[dict[str, Any]] | None
    reward: float
    #: Sum of this step's reward and every later one.
    return_to_go: float
    episode_return: float
    passed: bool | None
    #: How sure the reward is (None when the trace does not say).
    confidence: float | None
    reasoning: str | None
    agent: str

    @property
    def group(self) -> str:
        """Env and options: experiences of one group share an action vocabulary."""
        return self.env_id + json.dumps(self.options, sort_keys=True, default=str)


def action_key(action: Any, free_text: Iterable[str] = ()) -> str:
    """A canonical text of an action, without its free-text fields (justification…)."""
    if isinstance(action, dict):
        drop = set(free_text)
        return json.dumps(
            {k: v for k, v in action.items() if k not in drop}, sort_keys=True, default=str
        )
    return json.dumps(action, default=str)


def state_key(experience: Experience, comparable: str) -> str:
    """Experiences with the same key saw comparable states (see ``Tier1Config.comparable``)."""
    parts = [experience.group, experience.task, *experience.history]
    if comparable == "state":
        parts.append(str(experience.seed))
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def task_of(episode: EpisodeRecord) -> str:
    """The scenario or task an episode played, in the words its env uses."""
    for source in (episode.outcome, episode.reset_info, episode.options, episode.settings):
        for key in ("scenario", "task", "task_id", "bug"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return episode.env_id


def _confidence(info: Any, outcome: dict[str, Any]) -> float | None:
    for source in (info if isinstance(info, dict) else {}, outcome):
        value = source.get("confidence")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def branch_step(episode: EpisodeRecord) -> int:
    """Where a counterfactual rollout (``branch:BASE`` agent) left its base agent; 0 otherwise."""
    if not episode.agent.name.startswith("branch:"):
        return 0
    value = episode.agent.params.get("branch_step")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def experiences_of(episode: EpisodeRecord, free_text: Iterable[str] = ()) -> list[Experience]:
    """The step-level experiences of one episode (none for an infrastructure error)."""
    if episode.error is not None or episode.outcome.get("infra_error"):
        return []
    free = tuple(free_text)
    rewards = [step.reward for step in episode.steps]
    to_go = []
    running = 0.0
    for reward in reversed(rewards):
        running += reward
        to_go.append(running)
    to_go.reverse()
    task = task_of(episode)
    passed = episode.passed
    previous: dict[str, Any] = episode.reset_observation
    history: list[str] = []
    out = []
    start = branch_step(episode)
    for step, rtg in zip(episode.steps, to_go, strict=True):
        if step.index < start:
            # A counterfactual rollout's replayed prefix: the base episode has these states
            # with their true values; here they would carry the branch's return instead.
            history.append(action_key(step.action, free))
            previous = step.observation if isinstance(step.observation, dict) else {}
            continue
        candidates = step.candidates if isinstance(step.candidates, list) else None
        out.append(
            Experience(
                episode_id=episode.episode_id,
                env_id=episode.env_id,
                options=episode.options or episode.settings,
                task=task,
                seed=episode.seed,
                step=step.index,
                observation_text=str(previous.get("text", "")),
                observation=previous,
                action=step.action,
                history=tuple(history),
                candidates=candidates,
                reward=step.reward,
                return_to_go=rtg,
                episode_return=episode.total_reward,
                passed=passed,
                confidence=_confidence(step.info, episode.outcome),
                reasoning=step.reasoning,
                agent=episode.agent.name,
            )
        )
        history.append(action_key(step.action, free))
        previous = step.observation if isinstance(step.observation, dict) else {}
    return out


@dataclass
class FoundStore:
    """One trace store found under a folder, and what reading it gave."""

    path: Path
    episodes: int = 0
    #: Episodes left out because their env option ``split`` is excluded (held out).
    held_out: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    """Every episode read from the trace stores under one folder."""

    root: Path
    stores: list[FoundStore]
    episodes: list[EpisodeRecord]
    #: Other files in the folder that look like traces but are not a trace store.
    foreign: list[Path]

    @property
    def how(self) -> str:
        return (
            f"TraceStore.discover({str(self.root)!r}): every {TRACE_FILE} at or below it, "
            "read by the same class the harness writes with"
        )

    def experiences(self, config: TrainConfig) -> list[Experience]:
        """Step-level experiences of every episode."""
        free = config.features.free_text_fields
        return [e for episode in self.episodes for e in experiences_of(episode, free)]


def _foreign_files(root: Path, limit: int = 20) -> list[Path]:
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".jsonl"} and path.name != TRACE_FILE:
            if path.name == "results.jsonl" and (path.parent / "traces").is_dir():
                continue  # the harness's run records, beside its traces
            found.append(path)
            if len(found) >= limit:
                break
    return found


def discover(root: str | os.PathLike[str], config: TrainConfig, *, require: bool = True) -> Corpus:
    """Read every trace store at or below ``root`` (see :meth:`TraceStore.discover`).

    Episodes whose env option ``split`` is in ``config.exclude_splits`` are
    counted and left out (training never sees held-out incidents). With
    ``require``, a folder without any trace store is a :class:`DataError`
    that says what was there instead.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(
            f"trace folder {root} does not exist",
            "record traces with `stackgym run ENV --out DIR`, `stackgym eval ENV --out DIR`, "
            "`stackgym experiment run PRESET --out DIR` or `stackgym train collect`",
        )
    stores = TraceStore.discover(root)
    found: list[FoundStore] = []
    episodes: list[EpisodeRecord] = []
    excluded = set(config.exclude_splits)
    for store in stores:
        entry = FoundStore(store.path)
        for episode in store.episodes():
            options = episode.options or episode.settings
            if options.get("split") in excluded:
                entry.held_out += 1
                continue
            episodes.append(episode)
            entry.episodes += 1
        entry.problems = [str(p) for p in store.problems]
        found.append(entry)
    foreign = _foreign_files(root)
    if require and not stores:
        seen = ", ".join(str(p.relative_to(root)) for p in foreign[:5]) if foreign else "nothing"
        raise DataError(
            f"no trace store ({TRACE_FILE}) at or below {root}; found {seen}",
            "point at a folder written by `stackgym run/eval --out`, `stackgym experiment run "
            "--out` or `stackgym train collect` (traces live in <folder>/traces/traces.jsonl)",
        )
    return Corpus(root=root, stores=found, episodes=episodes, foreign=foreign)


def iter_experiences(
    episodes: Iterable[EpisodeRecord], config: TrainConfig
) -> Iterator[Experience]:
    """Experiences of ``episodes``, lazily."""
    free = config.features.free_text_fields
    for episode in episodes:
        yield from experiences_of(episode, free)


def value_scales(experiences: Iterable[Experience], config: TrainConfig) -> dict[str, float]:
    """Per env, what divides returns to bring them into [-1, 1]."""
    scales: dict[str, float] = {}
    for e in experiences:
        scales[e.env_id] = max(scales.get(e.env_id, 0.0), abs(e.episode_return))
    fixed = config.value.scale
    return {env: (fixed if fixed is not None else (s or 1.0)) for env, s in scales.items()}


def normalised(value: float, scale: float) -> float:
    """``value / scale`` clipped to [-1, 1]."""
    return max(-1.0, min(1.0, value / scale))
