"""Scorer features that transfer to new incidents, and a scorer that may only gather evidence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from stackgym.core.agents import make_agent
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.train.experience import Experience, discover
from stackgym.train.features import NUMERIC, Featurizer, input_dim
from stackgym.train.tier1 import CheckpointMismatch, Tier1Scorer, Tier1Trainer, build_items
from train_helpers import collect_traces, small_config

SUBMIT = "submit_diagnosis"


def _state(observation: dict, candidates: list[dict] | None = None) -> Experience:
    return Experience(
        episode_id="e", env_id="stack_doctor", options={"mode": "blind_diagnosis"}, task="t",
        seed=0, step=1, observation_text="the same text", observation=observation, action=None,
        history=(), candidates=candidates, reward=0.0, return_to_go=0.0, episode_return=0.0,
        passed=None, confidence=None, reasoning=None, agent="a",
    )  # fmt: skip


def _submit(root_cause: str) -> dict:
    return {"type": SUBMIT, "root_cause": root_cause, "fix": f"fix_{root_cause}"}


def test_generic_context_cannot_tell_two_incidents_apart_by_their_hardware(tmp_path: Path):
    h100 = _state({"hardware": "H100", "model": "llama", "steps_left": 4})
    mi300 = _state({"hardware": "MI300X", "model": "qwen", "steps_left": 4})
    action = [{"type": "inspect", "target": "logs"}]
    full = Featurizer(small_config(tmp_path, "features.embedding_scale=0"))
    generic = Featurizer(
        small_config(tmp_path, "features.embedding_scale=0", "features.context=generic")
    )
    assert not np.array_equal(full.rows(h100, action), full.rows(mi300, action))
    assert np.array_equal(generic.rows(h100, action), generic.rows(mi300, action))
    # The number of steps left is scenario-agnostic and still seen.
    fewer = _state({"hardware": "H100", "model": "llama", "steps_left": 1})
    assert not np.array_equal(generic.rows(h100, action), generic.rows(fewer, action))


def test_action_fields_type_only_leaves_which_target_to_the_base_agents_scores(tmp_path: Path):
    state = _state({"steps_left": 4})
    logs, config_file = {"type": "inspect", "target": "logs"}, {"type": "inspect", "target": "cfg"}
    every_field = Featurizer(small_config(tmp_path))
    type_only = Featurizer(small_config(tmp_path, "features.action_fields=[type]"))
    assert not np.array_equal(*every_field.rows(state, [logs, config_file]))
    assert np.array_equal(*type_only.rows(state, [logs, config_file]))
    submit = type_only.rows(state, [logs, _submit("oom")])
    assert not np.array_equal(*submit)


def test_confidence_features_carry_the_base_agents_margin_of_each_action_type(tmp_path: Path):
    candidates = [
        {"action": _submit("oom"), "score": 0.7, "chosen": True},
        {"action": _submit("driver"), "score": 0.2, "chosen": False},
        {"action": _submit("quant"), "score": 0.1, "chosen": False},
        {"action": {"type": "inspect", "target": "logs"}, "score": 0.4, "chosen": False},
    ]
    state = _state({"steps_left": 4}, candidates)
    plain = small_config(tmp_path, "features.embedding_scale=0")
    config = small_config(tmp_path, "features.embedding_scale=0", "features.confidence=true")
    assert input_dim(config) == input_dim(plain) + 2
    rows = Featurizer(config).rows(state, [c["action"] for c in candidates])
    extra = rows[:, -2:] / config.features.structured_scale
    # Submits: their type's margin is 0.7 - 0.2; an inspection alone in its type has none.
    assert extra[:, 0] == pytest.approx([0.5, 0.5, 0.5, 0.0])
    # Each action's score minus the score of the base agent's pick (0.7).
    assert extra[:, 1] == pytest.approx([0.0, -0.5, -0.6, -0.3])
    # The state's margins reach every row, so an inspection's score can depend on the
    # belief margin: a less confident base agent changes the inspection's row.
    unsure = [dict(c) for c in candidates]
    unsure[1] = {**unsure[1], "score": 0.65}
    inspect = [candidates[3]["action"]]
    featurizer = Featurizer(config)
    confident_row = featurizer.rows(state, inspect)
    unsure_row = featurizer.rows(dataclasses.replace(state, candidates=unsure), inspect)
    assert not np.array_equal(confident_row, unsure_row)
    assert len(NUMERIC) == 12  # the base numbers are unchanged by the option


def test_a_scorer_limited_to_gathering_evidence_never_switches_to_another_kind(
    tmp_path: Path,
):
    traces = collect_traces(tmp_path / "traces", small_config(tmp_path / "unused"), seeds=30)
    # No margin: the scorer would switch at its slightest preference, if it were allowed.
    allowed = ("inspect", "ask_specialist")
    config = small_config(
        tmp_path / "out", "tier1.switch_margin=0", "tier1.switch_types=[inspect, ask_specialist]"
    )
    experiences = discover(traces, config).experiences(config)
    Tier1Trainer(config).fit(build_items(experiences, config), passes=0.3)
    unlimited = config.model_copy(
        update={"tier1": config.tier1.model_copy(update={"switch_types": ()})}
    )
    env = make("stack_doctor", mode="blind_diagnosis", split="eval")
    switched = {"limited": set(), "unlimited": set()}
    for name, settings in (("limited", config), ("unlimited", unlimited)):
        agent = make_agent("scorer:heuristic", "stack_doctor", config=settings)
        for seed in range(12):
            for step in run_episode(env, agent, seed=seed).steps:
                chosen = next(c for c in step.candidates if c["chosen"])
                if not chosen["base_choice"]:
                    switched[name].add(chosen["action"]["type"])
    assert switched["limited"] <= set(allowed)
    # Without the limit the same scorer does switch to other kinds (so the limit did work).
    assert switched["unlimited"] - set(allowed)


def test_a_checkpoint_trained_on_generic_features_is_refused_under_full_ones(tmp_path: Path):
    # Same input width, other meaning: loading it silently would be seed 003's bug.
    generic = small_config(tmp_path, "features.context=generic", "features.action_fields=[type]")
    Tier1Trainer(generic).save()
    Tier1Scorer(generic)  # the config it was trained with loads it
    with pytest.raises(CheckpointMismatch) as error:
        Tier1Scorer(small_config(tmp_path))
    assert "features.context: checkpoint 'generic', current config 'full'" in str(error.value)
    assert "features.action_fields" in str(error.value)
