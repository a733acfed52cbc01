"""Tiers 2 and 3: DPO on mined pairs and SFT distillation, with TRL's trainers.

Both read the corpus through :mod:`stackgym.train.experience`, export a
chat-format ``datasets.Dataset`` (saved to disk beside the model), check their
threshold (``tier2.min_pairs``, ``tier3.min_traces``) and either train or
record why they skipped. Every run writes ``result.json`` and the config
beside its output, whatever happened.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stackgym.train.chat import dpo_rows, sft_rows, successful, to_dataset
from stackgym.train.config import LMTrainConfig, ModelConfig, TrainConfig, save_beside
from stackgym.train.deps import require
from stackgym.train.experience import Corpus
from stackgym.train.lm import corpus_texts, model_for
from stackgym.train.outcome import TierResult
from stackgym.train.pairs import mine_pairs

log = logging.getLogger("stackgym.train")


def quiet() -> None:
    """No progress bars or info chatter from datasets/transformers in our output."""
    require("datasets", purpose="training").disable_progress_bars()
    transformers = require("transformers", purpose="training")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def trainer_arguments(settings: LMTrainConfig, output: Path, model: ModelConfig) -> dict[str, Any]:
    """Settings every TRL config takes, from ours (device and precision resolved, no hub)."""
    quiet()
    torch = require("torch", purpose="training")
    gpu = model.device == "auto" and torch.cuda.is_available()
    bf16 = model.precision == "bf16" or (
        model.precision == "auto" and (not gpu or torch.cuda.is_bf16_supported())
    )
    return {
        "output_dir": str(output / "trainer"),
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "learning_rate": settings.lr,
        "per_device_train_batch_size": settings.batch_size,
        "seed": settings.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": not gpu,
        "bf16": bf16,
        # transformers 5 renamed it; the old name still works but warns on every run.
        "activation_checkpointing": model.gradient_checkpointing,
        "disable_tqdm": True,
        "push_to_hub": False,
        "dataloader_num_workers": 0,
    }


def losses_of(trainer: Any) -> list[float]:
    """Training losses logged step by step."""
    return [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]


def _finish(trainer: Any, tokenizer: Any, output: Path) -> tuple[list[float], dict[str, Any]]:
    """Train, save model and tokenizer; the logged losses and what the run took, and where."""
    transformers = require("transformers", purpose="training")
    torch = require("torch", purpose="training")
    # With progress bars off, transformers prints every log dict; the losses are kept anyway.
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    gpu = not trainer.args.use_cpu and torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    metrics = trainer.train().metrics
    trainer.save_model(str(output / "model"))
    tokenizer.save_pretrained(str(output / "model"))
    run = {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "precision": "bf16" if trainer.args.bf16 else "fp32",
        "steps": trainer.state.global_step,
        "train_seconds": metrics.get("train_runtime"),
        "samples_per_second": metrics.get("train_samples_per_second"),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
    }
    return losses_of(trainer), run


def _completed(result: TierResult, trainer: Any, tokenizer: Any, output: Path) -> TierResult:
    """Train, then record the run (losses, what it took, whether its threshold was forced)."""
    result.losses, result.details["training"] = _finish(trainer, tokenizer, output)
    result.status = "completed"
    result.reason = result.tally() + (" (forced)" if result.count < result.threshold else "")
    result.save(output)
    return result


def run_dpo(corpus: Corpus, config: TrainConfig, *, force: bool = False) -> TierResult:
    """Tier 2: mine pairs, export them, train with DPO once there are ``tier2.min_pairs``."""
    output = Path(config.out) / "dpo"
    save_beside(config, output)
    experiences = corpus.experiences(config)
    pairs, funnel = mine_pairs(experiences, config)
    threshold = config.tier2.min_pairs
    details = {"funnel": funnel.rows(), "experiences": len(experiences)}
    result = TierResult(
        tier="DPO", status="skipped", unit="pairs", count=len(pairs), threshold=threshold,
        details=details, trace_dir=str(corpus.root),
    )  # fmt: skip
    if len(pairs) < threshold and not force:
        result.reason = result.tally()
        result.save(output)
        return result
    if not pairs:
        result.reason = "0 pairs"
        result.save(output)
        return result
    trl = require("trl", purpose="DPO training")
    quiet()
    episodes = {e.episode_id: e for e in corpus.episodes}
    rows = dpo_rows(pairs, episodes, config.model.max_prompt_chars)
    dataset = to_dataset(rows)
    dataset.save_to_disk(str(output / "dataset"))
    model, tokenizer = model_for(config.model, corpus_texts(rows), output / "base-model")
    args = trl.DPOConfig(
        **trainer_arguments(config.tier2, output, config.model),
        beta=config.tier2.beta,
        max_length=config.model.max_length,
    )
    trainer = trl.DPOTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    return _completed(result, trainer, tokenizer, output)


def run_sft(corpus: Corpus, config: TrainConfig, *, force: bool = False) -> TierResult:
    """Tier 3: distil successful episodes with SFT once there are ``tier3.min_traces``."""
    output = Path(config.out) / "sft"
    save_beside(config, output)
    good = [e for e in corpus.episodes if successful(e, config)]
    threshold = config.tier3.min_traces
    rows = sft_rows(good, config)
    details = {
        "episodes": len(corpus.episodes),
        "successful_episodes": len(good),
        "samples": len(rows),
        "samples_with_reasoning": sum(1 for r in rows if r["has_reasoning"]),
    }
    result = TierResult(
        tier="SFT", status="skipped", unit="successful traces", count=len(good),
        threshold=threshold, details=details, trace_dir=str(corpus.root),
    )  # fmt: skip
    if (len(good) < threshold and not force) or not rows:
        result.reason = result.tally()
        result.save(output)
        return result
    trl = require("trl", purpose="SFT training")
    quiet()
    dataset = to_dataset([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    dataset.save_to_disk(str(output / "dataset"))
    model, tokenizer = model_for(config.model, corpus_texts(rows), output / "base-model")
    args = trl.SFTConfig(
        **trainer_arguments(config.tier3, output, config.model),
        max_length=config.model.max_length,
        completion_only_loss=True,
    )
    trainer = trl.SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    return _completed(result, trainer, tokenizer, output)
