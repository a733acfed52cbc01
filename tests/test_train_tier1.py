"""Tier 1: the low-rank scorer trains on real traces, checkpoints, refuses mismatches, plays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stackgym.core.agents import make_agent
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.train.experience import discover
from stackgym.train.tier1 import (
    CHECKPOINT_FILE,
    CheckpointMismatch,
    Items,
    Tier1Trainer,
    build_items,
)
from train_helpers import collect_traces, small_config


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tier1-traces")
    return collect_traces(folder, small_config(folder / "unused"), seeds=30, repeats=3)


def test_training_on_collected_traces_lowers_validation_loss_and_saves_a_checkpoint(
    traces: Path, tmp_path: Path
):
    config = small_config(tmp_path, "tier1.eval_every=25")
    experiences = discover(traces, config).experiences(config)
    items = build_items(experiences, config)
    assert items.stats["pairs"] > 0, "repeated seeds with exploration must give comparable pairs"
    trainer = Tier1Trainer(config)
    summary = trainer.fit(items, passes=2.0)
    losses = [h["validation_loss"] for h in trainer.history]
    assert min(losses) < losses[0]
    assert summary["best_validation_loss"] == pytest.approx(min(losses))
    assert (tmp_path / "tier1" / CHECKPOINT_FILE).is_file()
    assert (tmp_path / "tier1" / "config.yaml").is_file()
    assert summary["buffer_capacity"] == 2_000


def test_a_checkpoint_with_another_rank_is_refused_naming_both_values(traces: Path, tmp_path: Path):
    config8 = small_config(tmp_path, "tier1.rank=8")
    experiences = discover(traces, config8).experiences(config8)[:200]
    Tier1Trainer(config8).fit(build_items(experiences, config8), passes=0.1)
    checkpoint = tmp_path / "tier1" / CHECKPOINT_FILE
    before = checkpoint.read_bytes()
    with pytest.raises(CheckpointMismatch) as error:
        Tier1Trainer(small_config(tmp_path, "tier1.rank=32"))
    message = str(error.value)
    assert "tier1.rank: checkpoint 8, current config 32" in message
    assert checkpoint.read_bytes() == before, "the old checkpoint must never be replaced silently"
    # An embedder change changes the input size: refused too, naming both.
    with pytest.raises(
        CheckpointMismatch, match=r"embedder\.dim: checkpoint 64, current config 128"
    ):
        Tier1Trainer(small_config(tmp_path, "tier1.rank=8", "embedder.hashing_dim=128"))


def test_fresh_moves_the_old_checkpoint_aside_instead_of_deleting_it(traces: Path, tmp_path: Path):
    config = small_config(tmp_path, "tier1.rank=8")
    experiences = discover(traces, config).experiences(config)[:100]
    Tier1Trainer(config).fit(build_items(experiences, config), passes=0.1)
    trainer = Tier1Trainer(small_config(tmp_path, "tier1.rank=4"), fresh=True)
    assert trainer.model.rank == 4
    aside = list(tmp_path.glob("tier1.replaced-*"))
    assert len(aside) == 1 and (aside[0] / CHECKPOINT_FILE).is_file()


def test_resuming_continues_from_the_saved_step(traces: Path, tmp_path: Path):
    config = small_config(tmp_path)
    experiences = discover(traces, config).experiences(config)[:150]
    first = Tier1Trainer(config)
    first.fit(build_items(experiences, config), passes=0.5)
    resumed = Tier1Trainer(config)
    assert resumed.step == first.step > 0
    assert resumed.lr == first.lr


def test_the_learning_rate_halves_on_a_plateau_and_stops_at_its_floor(tmp_path: Path):
    config = small_config(
        tmp_path, "tier1.patience_steps=20", "tier1.eval_every=10", "tier1.lr=0.004",
        "tier1.min_lr=0.001", "tier1.checkpoint_every=100000",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    width = Tier1Trainer(config).width
    n = 400
    # Targets are noise: validation cannot keep improving, so the LR must decay.
    x = rng.normal(size=(n, width)).astype(np.float32)
    items = Items(
        x, x, rng.uniform(-1, 1, n).astype(np.float32), rng.uniform(-1, 1, n).astype(np.float32),
        np.zeros(n, np.float32), np.arange(n) % 5 == 0,
    )  # fmt: skip
    trainer = Tier1Trainer(config, fresh=True)
    trainer.add(items)
    trainer.train_steps(600)
    assert trainer.lr_decays == 2  # 0.004 -> 0.002 -> 0.001, then the floor holds
    assert trainer.lr == pytest.approx(0.001)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


def test_scorer_agent_replays_the_base_agents_candidates_and_records_its_scores(
    traces: Path, tmp_path: Path
):
    config = small_config(tmp_path)
    experiences = discover(traces, config).experiences(config)
    Tier1Trainer(config).fit(build_items(experiences, config), passes=0.3)
    agent = make_agent("scorer:heuristic", "stack_doctor", config=config)
    assert agent.name == "scorer:heuristic"
    env = make("stack_doctor", mode="blind_diagnosis", split="eval")
    episode = run_episode(env, agent, seed=3)
    assert episode.agent.name == "scorer:heuristic"
    assert episode.agent.params["rank"] == config.tier1.rank
    assert episode.outcome["metrics"]["submitted"] or episode.truncated
    for step in episode.steps:
        chosen = [c for c in step.candidates if c["chosen"]]
        assert len(chosen) == 1
        assert sum(1 for c in step.candidates if c["base_choice"]) == 1
        best = max(c["score"] for c in step.candidates)
        base = next(c for c in step.candidates if c["base_choice"])
        # Either the scorer kept the base pick, or it found something better by the margin.
        assert (
            chosen[0] is base
            or chosen[0]["score"] - base["score"] >= config.tier1.switch_margin - 1e-4
        )
        assert chosen[0]["score"] <= best


def test_scorer_agent_without_a_checkpoint_says_how_to_train_one(tmp_path: Path):
    from stackgym.core.errors import ConfigError

    with pytest.raises(ConfigError, match="stackgym train tier1"):
        make_agent("scorer:heuristic", "stack_doctor", config=small_config(tmp_path))


def _switches(episode) -> list[int]:
    """Steps where a scorer agent played another action than its base agent's pick."""
    out = []
    for step in episode.steps:
        chosen = next((c for c in step.candidates or () if c["chosen"]), None)
        if chosen is not None and "base_choice" in chosen and not chosen["base_choice"]:
            out.append(step.index)
    return out


def test_max_switches_bounds_how_often_the_scorer_overrides_its_base_agent(
    traces: Path, tmp_path: Path
):
    # A margin of 0 makes an undertrained scorer switch freely; the limit must still hold.
    config = small_config(tmp_path, "tier1.switch_margin=0")
    experiences = discover(traces, config).experiences(config)
    Tier1Trainer(config).fit(build_items(experiences, config), passes=0.3)
    env = make("stack_doctor", mode="blind_diagnosis", split="eval")
    seeds = range(8)
    free = [_switches(run_episode(env, make_agent("scorer:heuristic", "stack_doctor",
                                                   config=config), seed=s)) for s in seeds]  # fmt: skip
    assert max(len(s) for s in free) >= 2, "the unlimited scorer should switch more than once"
    once = config.model_copy(update={"tier1": config.tier1.model_copy(update={"max_switches": 1})})
    never = config.model_copy(update={"tier1": config.tier1.model_copy(update={"max_switches": 0})})
    for seed, unlimited in zip(seeds, free, strict=True):
        limited = run_episode(
            env, make_agent("scorer:heuristic", "stack_doctor", config=once), seed=seed
        )
        assert _switches(limited)[:1] == unlimited[:1]
        assert len(_switches(limited)) <= 1
        assert limited.agent.params["max_switches"] == 1
        plain = run_episode(
            env, make_agent("scorer:heuristic", "stack_doctor", config=never), seed=seed
        )
        heuristic = run_episode(env, make_agent("heuristic", "stack_doctor"), seed=seed)
        assert [s.action for s in plain.steps] == [s.action for s in heuristic.steps]
        assert plain.total_reward == heuristic.total_reward
