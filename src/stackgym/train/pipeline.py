"""Run the tiers on a trace folder: ``stackgym train tier1`` and ``stackgym train all``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackgym.train.config import TrainConfig
from stackgym.train.experience import Corpus, discover
from stackgym.train.outcome import TierResult

Log = Callable[[str], Any]


def _discovery_line(corpus: Corpus) -> str:
    held = sum(s.held_out for s in corpus.stores)
    problems = sum(len(s.problems) for s in corpus.stores)
    return (
        f"found {len(corpus.stores)} trace store(s) under {corpus.root}: "
        f"{len(corpus.episodes)} episodes"
        + (f", {held} held out (their split is in exclude_splits)" if held else "")
        + (f", {problems} unreadable line(s) skipped" if problems else "")
    )


def tier1_on(
    corpus: Corpus, config: TrainConfig, *, fresh: bool = False, log: Log = print
) -> TierResult:
    """Train Tier 1 on a corpus already read; the result is saved beside the checkpoint."""
    from stackgym.train.tier1 import Tier1Trainer, build_items

    folder = Path(config.out) / "tier1"
    experiences = corpus.experiences(config)
    if not experiences:
        result = TierResult(
            tier="Tier 1", status="skipped", unit="experiences",
            reason="0 experiences in the traces",
            trace_dir=str(corpus.root),
        )  # fmt: skip
        result.save(folder)
        return result
    trainer = Tier1Trainer(config, fresh=fresh)
    log(
        f"Tier 1: rank {trainer.model.rank}, input {trainer.model.inputs}, "
        f"{trainer.summary()['parameters']} parameters, embedder {config.embedder.kind}"
    )
    started = time.perf_counter()
    items = build_items(experiences, config, None)
    built = time.perf_counter() - started
    started = time.perf_counter()
    summary = trainer.fit(items)
    seconds = time.perf_counter() - started
    losses = [h["validation_loss"] for h in trainer.history]
    result = TierResult(
        tier="Tier 1",
        status="completed",
        unit="experiences",
        count=len(experiences),
        losses=losses,
        reason=f"{items.stats['pairs']} pairs and {items.stats['points']} points",
        details={
            **summary,
            "items": items.stats,
            "featurize_seconds": built,
            "train_seconds": seconds,
            "samples_per_second": summary["samples_seen"] / seconds if seconds else None,
        },
        trace_dir=str(corpus.root),
    )
    result.save(folder)
    return result


def run_tier1(
    trace_dir: Path, config: TrainConfig, *, fresh: bool = False, log: Log = print
) -> TierResult:
    """Discover traces under ``trace_dir`` and train Tier 1 on them."""
    corpus = discover(trace_dir, config)
    log(_discovery_line(corpus))
    return tier1_on(corpus, config, fresh=fresh, log=log)


def run_all(trace_dir: Path, config: TrainConfig, *, log: Log = print) -> list[TierResult]:
    """Tier 1, then DPO and SFT (each trains only past its threshold)."""
    from stackgym.train.lmtrain import run_dpo, run_sft

    corpus = discover(trace_dir, config)
    log(_discovery_line(corpus))
    results = [tier1_on(corpus, config, log=log)]
    log(results[-1].line())
    results.append(run_dpo(corpus, config))
    log(results[-1].line())
    results.append(run_sft(corpus, config))
    log(results[-1].line())
    return results
