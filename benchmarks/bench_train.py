"""Training throughput: pair mining, Tier 1 training and feature extraction.

Targets (issue 9): mine DPO pairs from 100k experiences in <= 5 s; train the
Tier 1 scorer at >= 5k samples/s on CPU (a sample is one item of a mini-batch:
a pair or a point).

The experiences are real: exploratory Stack Doctor episodes (train split)
recorded through the TraceStore, then copied with new seeds and episode ids
to 100k, which keeps the real group structure (30 scenarios, real histories).
Best of N on a shared machine; the load average is printed.

    .venv/bin/python benchmarks/bench_train.py
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from stackgym.train.collect import collect
from stackgym.train.config import load_config
from stackgym.train.experience import discover
from stackgym.train.pairs import mine_pairs
from stackgym.train.tier1 import Tier1Trainer, build_items

TARGET_EXPERIENCES = 100_000
REPEATS = 3


def best(function, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = load_config(
            None,
            [f"out={root / 'train'}", "tier1.eval_every=1000000", "tier1.checkpoint_every=1000000"],
        )
        collect(
            "stack_doctor", {"mode": "blind_diagnosis", "split": "train"}, base="heuristic",
            episodes=300, repeats=4, epsilon=0.25, out=root / "traces", config=config,
        )  # fmt: skip
        started = time.perf_counter()
        corpus = discover(root / "traces", config)
        real = corpus.experiences(config)
        read = time.perf_counter() - started
        print(f"load average: {os.getloadavg()[0]:.2f} (2 cores)")
        print(f"read {len(corpus.episodes)} episodes -> {len(real)} experiences in {read:.2f} s")

        copies = []
        round_ = 0
        while len(copies) < TARGET_EXPERIENCES:
            for e in real:
                copies.append(
                    dataclasses.replace(
                        e, seed=e.seed + 100_000 * round_, episode_id=f"{e.episode_id}/{round_}"
                    )
                )
            round_ += 1
        copies = copies[:TARGET_EXPERIENCES]
        seconds, (pairs, funnel) = best(lambda: mine_pairs(copies, config))
        print(
            f"pair mining: {len(copies):,} experiences -> {len(pairs):,} pairs "
            f"({funnel.combinations:,} combinations) in {seconds:.2f} s "
            f"(best of {REPEATS}; target <= 5 s)"
        )

        started = time.perf_counter()
        items = build_items(real, config)
        featurize = time.perf_counter() - started
        print(
            f"featurize: {len(real):,} experiences -> {len(items):,} items in {featurize:.2f} s "
            f"({len(real) / featurize:,.0f} experiences/s, hashing embedder)"
        )
        trainer = Tier1Trainer(config, fresh=True)
        trainer.add(items)
        steps = 3_000

        def train() -> None:
            trainer.train_steps(steps)

        seconds, _ = best(train)
        rate = steps * config.tier1.batch_size / seconds
        print(
            f"Tier 1 training: {rate:,.0f} samples/s ({seconds / steps * 1e3:.2f} ms per step of "
            f"{config.tier1.batch_size}; rank {config.tier1.rank}, input {trainer.width}; "
            f"best of {REPEATS}; target >= 5,000)"
        )


if __name__ == "__main__":
    main()
