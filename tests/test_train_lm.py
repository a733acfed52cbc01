"""Tiers 2 and 3 and GRPO: TRL trainers on a tiny model built offline, on real traces."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

import pytest

from stackgym.core.registry import make
from stackgym.train.experience import discover
from stackgym.train.outcome import TierResult
from train_helpers import collect_traces, small_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lm-traces")
    return collect_traces(folder, small_config(folder / "unused"), seeds=20, repeats=2)


def test_dpo_is_skipped_below_its_threshold_and_says_how_far_it_is(traces: Path, tmp_path: Path):
    from stackgym.train.lmtrain import run_dpo

    config = small_config(tmp_path, "tier2.min_pairs=100000")
    result = run_dpo(discover(traces, config), config)
    assert result.status == "skipped"
    assert result.reason == f"{result.count}/100000 pairs"
    saved = TierResult.load(tmp_path / "dpo")
    assert saved is not None and (saved.status, saved.reason) == ("skipped", result.reason)
    assert not (tmp_path / "dpo" / "model").exists()


def test_dpo_trains_on_mined_pairs_and_lowers_its_loss(traces: Path, tmp_path: Path):
    from datasets import load_from_disk

    from stackgym.train.lmtrain import run_dpo

    config = small_config(
        tmp_path, "tier2.min_pairs=5", "tier2.max_steps=12", "tier2.lr=0.002", "tier2.batch_size=4"
    )
    result = run_dpo(discover(traces, config), config)
    assert result.status == "completed", result.reason
    assert result.count >= 5 and result.reason == f"{result.count}/5 pairs"
    assert result.losses[0] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy == reference
    assert fmean(result.losses[-4:]) < result.losses[0]
    dataset = load_from_disk(str(tmp_path / "dpo" / "dataset"))
    row = dataset[0]
    assert [m["role"] for m in row["prompt"]][:2] == ["system", "user"]
    assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
    chosen, rejected = (
        json.loads(row["chosen"][0]["content"]),
        json.loads(row["rejected"][0]["content"]),
    )
    assert chosen != rejected
    assert row["chosen_reward"] - row["rejected_reward"] >= config.pairs.min_gap
    assert (tmp_path / "dpo" / "model" / "config.json").is_file()
    assert (tmp_path / "dpo" / "config.yaml").is_file()
    training = result.details["training"]
    assert training["steps"] == 12 and training["train_seconds"] > 0
    assert training["device"] == "cpu" and training["peak_gpu_memory_gib"] is None


def test_sft_distils_successful_episodes_with_reasoning_and_lowers_its_loss(
    traces: Path, tmp_path: Path
):
    from datasets import load_from_disk

    from stackgym.train.lmtrain import run_sft

    config = small_config(
        tmp_path, "tier3.min_traces=5", "tier3.max_steps=15", "tier3.lr=0.005", "tier3.batch_size=4"
    )
    corpus = discover(traces, config)
    result = run_sft(corpus, config)
    assert result.status == "completed", result.reason
    passed = [e for e in corpus.episodes if e.passed]
    assert result.count == len(passed)
    assert result.details["samples"] == sum(len(e.steps) for e in passed)
    assert result.details["samples_with_reasoning"] == result.details["samples"]
    assert fmean(result.losses[-3:]) < fmean(result.losses[:3])
    row = load_from_disk(str(tmp_path / "sft" / "dataset"))[0]
    completion = row["completion"][0]["content"]
    reasoning, action = completion.rsplit("\n", 1)
    assert reasoning and json.loads(action)["type"]


def test_sft_is_skipped_below_its_threshold(traces: Path, tmp_path: Path):
    from stackgym.train.lmtrain import run_sft

    config = small_config(tmp_path, "tier3.min_traces=100000")
    result = run_sft(discover(traces, config), config)
    assert result.status == "skipped"
    assert result.reason == f"{result.count}/100000 successful traces"
    assert not (tmp_path / "sft" / "model").exists()


def test_sft_forced_below_its_threshold_trains_and_says_it_was_forced(traces: Path, tmp_path: Path):
    from stackgym.train.lmtrain import run_sft

    config = small_config(tmp_path, "tier3.min_traces=100000", "tier3.max_steps=2")
    result = run_sft(discover(traces, config), config, force=True)
    assert result.status == "completed", result.reason
    assert result.reason == f"{result.count}/100000 successful traces (forced)"
    assert len(result.losses) == 2 and (tmp_path / "sft" / "model" / "config.json").is_file()
    assert TierResult.load(tmp_path / "sft") == result


def test_grpo_reward_replays_completions_in_the_real_env():
    from stackgym.train.grpo import EnvReward

    reward = EnvReward("stack_doctor", {"mode": "blind_diagnosis", "split": "train"}, None)
    env = make("stack_doctor", mode="blind_diagnosis", split="train")
    env.reset(seed=4)
    key = env.answer_key()
    submit = json.dumps(
        {"type": "submit", "root_cause": key["root_cause"], "fix": key["fix"],
         "justification": "the logs say so clearly"}
    )  # fmt: skip
    # docs/stack_doctor.md: +8 root cause, +8 fix, +1 justification, +2 within 4 steps.
    assert reward.episode_return(4, f"I am sure.\n{submit}") == 19.0
    inspect_then_submit = '{"type": "inspect", "target": "logs"}\n' + submit
    assert reward.episode_return(4, inspect_then_submit) == 19.0 - 0.25
    assert reward.episode_return(4, "no idea") == -2.0  # the invalid-action penalty
    finished = EnvReward("stack_doctor", {"mode": "blind_diagnosis", "split": "train"}, "oracle")
    # After a wasted inspect, the oracle finishes: -0.25, its minimal evidence, fix, submit.
    assert finished.episode_return(4, '{"type": "inspect", "target": "metrics"}') > 15


def test_grpo_runs_end_to_end_on_the_tiny_model_with_env_rewards(tmp_path: Path):
    from stackgym.train.grpo import run_grpo

    config = small_config(
        tmp_path, "model.max_prompt_chars=200", "model.max_length=160", "grpo.prompts=2",
        "grpo.generations=4", "grpo.batch_size=4", "grpo.max_completion_length=12",
        "grpo.max_steps=2", "grpo.continue_with=null",
    )  # fmt: skip
    result = run_grpo(config)
    assert result.status == "completed"
    rewards = result.details["mean_reward_per_step"]
    assert len(rewards) == 2
    # An untrained model writes no valid action: the env refuses each completion with its
    # invalid-action penalty (-2), the same for every completion, so the advantage is 0.
    assert rewards == [-2.0, -2.0]
    assert (tmp_path / "grpo" / "model" / "config.json").is_file()
    assert TierResult.load(tmp_path / "grpo") is not None


def test_grpo_refuses_a_held_out_split(tmp_path: Path):
    from stackgym.core.errors import ConfigError
    from stackgym.train.grpo import run_grpo

    config = small_config(tmp_path, 'grpo.options={"mode": "blind_diagnosis", "split": "eval"}')
    with pytest.raises(ConfigError, match="held out"):
        run_grpo(config)


def test_trainer_arguments_follow_the_model_device_precision_and_checkpointing(tmp_path: Path):
    import warnings

    import trl

    from stackgym.train.lmtrain import trainer_arguments

    def resolved(*overrides: str) -> tuple[bool, bool, bool]:
        config = small_config(tmp_path, *overrides)
        settings = trainer_arguments(config.tier3, tmp_path, config.model)
        with warnings.catch_warnings():
            # A deprecated argument name of ours would warn here (transformers 5).
            warnings.simplefilter("error", FutureWarning)
            args = trl.SFTConfig(**settings)
        assert args.gradient_checkpointing == args.activation_checkpointing
        return args.use_cpu, args.bf16, args.activation_checkpointing

    # No GPU here: auto trains on the CPU, in bf16 autocast as TRL does by default.
    assert resolved() == (True, True, True)
    assert resolved(
        "model.device=cpu", "model.precision=fp32", "model.gradient_checkpointing=false"
    ) == (True, False, False)


def test_a_bf16_checkpoint_is_loaded_with_float32_weights_for_training(tmp_path: Path):
    import torch
    import transformers

    from stackgym.train.lm import build_tiny, load_model

    config = small_config(tmp_path).model
    model, tokenizer = build_tiny(config, ["inspect the logs", "apply the fix"], tmp_path / "tiny")
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    tokenizer.save_pretrained(tmp_path / "bf16")
    saved = transformers.AutoConfig.from_pretrained(tmp_path / "bf16")
    assert saved.dtype == torch.bfloat16
    loaded, _ = load_model(str(tmp_path / "bf16"))
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
