"""Chat-format datasets from traces: DPO preference pairs (Tier 2) and SFT samples (Tier 3).

A decision point becomes a conversation: the system prompt, the reset
observation as the first user turn, then each earlier action (assistant, as
JSON) and the observation it produced (user), up to the decision. The
assistant's answer is the action as one JSON object, preceded by the agent's
reasoning when the trace has it (Tier 3 distils reasoning). GRPO's reward
function reads actions back with :func:`parse_action`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from stackgym.core.traces import EpisodeRecord
from stackgym.train.config import TrainConfig
from stackgym.train.deps import require
from stackgym.train.pairs import Pair

SYSTEM_PROMPT = (
    "You are an engineer working in the stackgym environment {env}. "
    "Reply with your next action as one JSON object, e.g. {example}."
)
_EXAMPLES = {"stack_doctor": '{"type": "inspect", "target": "logs"}'}
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def system_prompt(env_id: str) -> str:
    example = _EXAMPLES.get(env_id, '{"type": "..."}')
    return SYSTEM_PROMPT.format(env=env_id, example=example)


def action_text(action: Any, reasoning: str | None = None) -> str:
    """What the assistant says: optional reasoning, then the action as JSON."""
    body = json.dumps(action, sort_keys=True) if isinstance(action, dict) else str(action)
    return f"{reasoning.strip()}\n{body}" if reasoning and reasoning.strip() else body


def parse_action(text: str) -> dict[str, Any] | str:
    """The last JSON object in a completion, or the text itself (the env will refuse it)."""
    candidates = _JSON_OBJECT.findall(text)
    for match in reversed(candidates):
        try:
            value = json.loads(match)
        except ValueError:
            # The greedy match may span two objects; try from the last opening brace.
            tail = match[match.rfind("{") :]
            try:
                value = json.loads(tail)
            except ValueError:
                continue
        if isinstance(value, dict):
            return value
    return text


def prompt_messages(
    episode: EpisodeRecord, step: int, max_chars: int = 2_400
) -> list[dict[str, str]]:
    """The conversation an agent had seen before taking step ``step`` of ``episode``.

    Over ``max_chars``, the first observation is cut from its end (the
    briefing's boilerplate) so the latest turns stay whole.
    """
    messages = [
        {"role": "system", "content": system_prompt(episode.env_id)},
        {"role": "user", "content": str(episode.reset_observation.get("text", ""))},
    ]
    for record in episode.steps[:step]:
        messages.append({"role": "assistant", "content": action_text(record.action)})
        observation = record.observation if isinstance(record.observation, dict) else {}
        messages.append({"role": "user", "content": str(observation.get("text", ""))})
    excess = sum(len(m["content"]) for m in messages) - max_chars
    if excess > 0:
        first = messages[1]["content"]
        messages[1]["content"] = first[: max(len(first) - excess, 200)]
    return messages


def dpo_rows(
    pairs: Iterable[Pair], episodes: dict[str, EpisodeRecord], max_chars: int = 2_400
) -> list[dict[str, Any]]:
    """Preference rows in TRL's conversational format (prompt, chosen, rejected)."""
    rows = []
    for pair in pairs:
        episode = episodes[pair.chosen.episode_id]
        rows.append(
            {
                "prompt": prompt_messages(episode, pair.chosen.step, max_chars),
                "chosen": [{"role": "assistant", "content": action_text(pair.chosen.action)}],
                "rejected": [{"role": "assistant", "content": action_text(pair.rejected.action)}],
                "chosen_reward": pair.chosen_reward,
                "rejected_reward": pair.rejected_reward,
                "task": pair.chosen.task,
            }
        )
    return rows


def successful(episode: EpisodeRecord, config: TrainConfig) -> bool:
    """Tier 3's definition: passed, or (no verdict) a return of at least ``min_return``."""
    if episode.error is not None or episode.outcome.get("infra_error") or not episode.steps:
        return False
    if episode.passed is not None:
        return episode.passed
    return episode.total_reward >= config.tier3.min_return


def sft_rows(episodes: Iterable[EpisodeRecord], config: TrainConfig) -> list[dict[str, Any]]:
    """Prompt/completion rows, one per step of each successful episode."""
    rows = []
    for episode in episodes:
        if not successful(episode, config):
            continue
        for record in episode.steps:
            rows.append(
                {
                    "prompt": prompt_messages(episode, record.index, config.model.max_prompt_chars),
                    "completion": [
                        {
                            "role": "assistant",
                            "content": action_text(
                                record.action,
                                record.reasoning if config.tier3.include_reasoning else None,
                            ),
                        }
                    ],
                    "has_reasoning": bool(record.reasoning),
                    "episode_id": episode.episode_id,
                }
            )
    return rows


def to_dataset(rows: list[dict[str, Any]]) -> Any:
    """A Hugging Face ``datasets.Dataset`` of ``rows``."""
    datasets = require("datasets", purpose="exporting training datasets")
    return datasets.Dataset.from_list(rows)
