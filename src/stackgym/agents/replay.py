"""``replay:PATH``: play back the actions of recorded episodes.

``PATH`` is a trace folder or ``traces.jsonl`` (anything :class:`TraceStore`
reads). On reset the agent picks the recorded episode of the same env with
the same seed, preferring one whose settings match the env's, and then sends
its actions in order, with the recorded reasoning and tool calls. Envs are
seeded, so a replay reproduces the episode: that is how a trace is checked,
re-scored after a grader change, or turned into a regression test.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackgym.core.agents import Agent, AgentTurn
from stackgym.core.errors import ConfigError, InfraError
from stackgym.core.traces import EpisodeRecord, StepRecord, TraceStore

if TYPE_CHECKING:
    from stackgym.core.env import Env
    from stackgym.core.models import Observation


class ReplayAgent(Agent):
    """Sends the actions of a recorded episode, one per step."""

    def __init__(self, path: str, env_id: str) -> None:
        self.name = f"replay:{path}"
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ConfigError(
                f"replay: {self.path} does not exist",
                "give a trace folder or traces.jsonl, e.g. replay:runs/demo/traces",
            )
        store = TraceStore(self.path)
        episodes = [e for e in store.episodes() if e.env_id == env_id]
        if not episodes:
            raise ConfigError(
                f"replay: {store.path} holds no episode of {env_id!r}",
                "record one first, e.g. `stackgym run ENV --agent A --out DIR`",
            )
        self.env_id = env_id
        self._by_seed: dict[int, list[EpisodeRecord]] = {}
        for episode in episodes:
            self._by_seed.setdefault(episode.seed, []).append(episode)
        self.episode: EpisodeRecord | None = None
        self._steps: deque[StepRecord] = deque()

    def params(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "episode_id": self.episode.episode_id if self.episode else None,
        }

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        seed = info.get("seed")
        candidates = self._by_seed.get(seed, []) if isinstance(seed, int) else []
        if not candidates:
            seeds = ", ".join(str(s) for s in sorted(self._by_seed)) or "none"
            raise ConfigError(
                f"replay: no recorded {self.env_id!r} episode has seed {seed}",
                f"recorded seeds: {seeds}",
            )
        matching = [e for e in candidates if e.settings == env.settings]
        self.episode = (matching or candidates)[0]
        self._steps = deque(self.episode.steps)

    def act(self, observation: Observation) -> AgentTurn:
        if not self._steps:
            episode = self.episode.episode_id if self.episode else "?"
            raise InfraError(
                f"replay: recorded episode {episode} has no more actions but the env goes on",
                "the env or its settings changed since the recording",
            )
        step = self._steps.popleft()
        return AgentTurn(action=step.action, reasoning=step.reasoning, tool_calls=step.tool_calls)


def replay_agent(path: str, env_id: str, **_: Any) -> ReplayAgent:
    """``replay:PATH`` (LLM settings, when given, do not apply to a replay)."""
    return ReplayAgent(path, env_id)
