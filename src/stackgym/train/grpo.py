"""GRPO on a stackgym environment, rewards computed by the real env in-process.

Each training prompt is the opening of one seeded episode (the reset
observation in the chat format of :mod:`stackgym.train.chat`). The reward
function replays a completion in a fresh episode of the same seed: every JSON
action in it, in order (so a completion can be one action or a short plan),
then, when ``grpo.continue_with`` names an agent, that agent finishes the
episode. The reward is the episode's return: the env's own rubric scores the
model, no proxy. Text that is not an action is refused by the env with its
invalid-action penalty, exactly as for any agent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackgym.core.agents import make_agent
from stackgym.core.registry import make
from stackgym.train.chat import _JSON_OBJECT, system_prompt
from stackgym.train.config import TrainConfig, save_beside
from stackgym.train.deps import require
from stackgym.train.lm import model_for
from stackgym.train.lmtrain import _finish, trainer_arguments
from stackgym.train.outcome import TierResult


def actions_in(text: str) -> list[Any]:
    """Every JSON object in ``text``, in order; the text itself when there is none."""
    found: list[Any] = []
    for block in _JSON_OBJECT.findall(text):
        # A greedy match can hold several objects; split at each opening brace that parses.
        start = 0
        while start < len(block):
            opening = block.find("{", start)
            if opening < 0:
                break
            for closing in range(opening + 1, len(block) + 1):
                if block[closing - 1] != "}":
                    continue
                try:
                    value = json.loads(block[opening:closing])
                except ValueError:
                    continue
                found.append(value)
                start = closing
                break
            else:
                break
    return found or [text]


class EnvReward:
    """A TRL reward function backed by a stackgym environment (see the module docstring)."""

    def __init__(self, env_id: str, options: dict[str, Any], continue_with: str | None) -> None:
        self.env = make(env_id, **options)
        self.env_id = env_id
        self.continue_with = continue_with
        self.__name__ = f"{env_id}_return"
        self.history: list[float] = []

    def episode_return(self, seed: int, completion: str) -> float:
        """Replay ``completion``'s actions from ``seed``; finish with the continuation agent."""
        observation, info = self.env.reset(seed=seed)
        total = 0.0
        done = False
        for action in actions_in(completion):
            result = self.env.step(action)
            total += result.reward
            observation = result.observation
            if result.terminated or result.truncated:
                done = True
                break
        if not done and self.continue_with:
            agent = make_agent(self.continue_with, self.env_id)
            agent.reset(self.env, observation, info)
            while not done:
                decision = agent.act(observation)
                action = getattr(decision, "action", decision)
                result = self.env.step(action)
                total += result.reward
                observation = result.observation
                done = result.terminated or result.truncated
            agent.close()
        return total

    def __call__(
        self, prompts: list[Any], completions: list[Any], seed: list[int], **_: Any
    ) -> list[float]:
        rewards = []
        for completion, episode_seed in zip(completions, seed, strict=True):
            text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
            rewards.append(self.episode_return(int(episode_seed), text))
        self.history.append(sum(rewards) / len(rewards))
        return rewards


def prompts_dataset(config: TrainConfig) -> Any:
    """One conversational prompt per seed (``grpo.prompts`` seeds from ``grpo.seed``)."""
    datasets = require("datasets", purpose="GRPO")
    settings = config.grpo
    env = make(settings.env, **settings.options)
    rows = []
    try:
        for seed in range(settings.seed, settings.seed + settings.prompts):
            observation, _ = env.reset(seed=seed)
            text = observation.text[: config.model.max_prompt_chars]
            rows.append(
                {
                    "prompt": [
                        {"role": "system", "content": system_prompt(settings.env)},
                        {"role": "user", "content": text},
                    ],
                    "seed": seed,
                }
            )
    finally:
        env.close()
    return datasets.Dataset.from_list(rows)


def run_grpo(config: TrainConfig, *, model_path: str | None = None) -> TierResult:
    """Train the configured model (or ``model_path``) with GRPO on ``grpo.env``."""
    settings = config.grpo
    if settings.options.get("split") in config.exclude_splits:
        from stackgym.core.errors import ConfigError

        raise ConfigError(
            f"refusing to train GRPO on split {settings.options['split']!r}",
            f"it is held out (exclude_splits: {list(config.exclude_splits)}); use split: train",
        )
    trl = require("trl", purpose="GRPO training")
    output = Path(config.out) / "grpo"
    save_beside(config, output)
    dataset = prompts_dataset(config)
    if model_path is not None:
        from stackgym.train.lm import load_model

        model, tokenizer = load_model(model_path)
    else:
        texts = [m["content"] for row in dataset for m in row["prompt"]]
        model, tokenizer = model_for(config.model, texts, output / "base-model")
    reward = EnvReward(settings.env, settings.options, settings.continue_with)
    args = trl.GRPOConfig(
        **trainer_arguments(settings, output, config.model),
        num_generations=settings.generations,
        max_completion_length=settings.max_completion_length,
        beta=settings.beta,
        temperature=settings.temperature,
    )
    trainer = trl.GRPOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
        processing_class=tokenizer,
    )  # fmt: skip
    losses, training = _finish(trainer, tokenizer, output)
    rewards = [float(entry["reward"]) for entry in trainer.state.log_history if "reward" in entry]
    result = TierResult(
        tier="GRPO", status="completed", unit="prompts", count=len(dataset),
        threshold=0, losses=losses,
        details={
            "env": settings.env, "options": settings.options, "mean_reward_per_step": rewards,
            "training": training,
        },
        reason=f"{len(dataset)} prompts of {settings.env}",
    )  # fmt: skip
    result.save(output)
    return result
