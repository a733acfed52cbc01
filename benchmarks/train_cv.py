"""Choose Tier 1 settings by cross-validation inside Stack Doctor's training split.

The held-out (eval) split is for the final measurement only, so settings are
compared on held-out *scenarios of the training split*: the 30 training
scenarios are three per root-cause family, and episode ``seed`` plays scenario
``seed % 30`` (families in order), so ``seed % 3 == k`` is one scenario of every
family — fold ``k``, shaped like the eval split (one scenario per family). For
each fold a scorer is trained on the experiences of the other two thirds of the
scenarios and compared, paired by seed, with its base agent on the fold's
scenarios (seeds ``--seed .. --seed+--seeds-1`` with ``seed % 3 == k``; by
default 1,500..2,999, not the seeds the traces were collected on).

    .venv/bin/python benchmarks/train_cv.py runs/sd-train --variant "" \
        --variant "features.context=generic;tier1.switch_types=[inspect, ask_specialist]"

reads the traces once and, for each ``--variant`` (``;``-separated overrides,
on top of any ``--set``), prints each fold's paired lift (reward and fix
accuracy, 95 % t intervals) and the lift pooled over the folds' seeds.
Figures and the settings chosen with it: docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from stackgym.core.agents import make_agent
from stackgym.train.agent import ScorerAgent, load_scorer
from stackgym.train.config import load_config
from stackgym.train.experience import discover
from stackgym.train.lift import _play, deviations, interval
from stackgym.train.tier1 import Tier1Trainer, build_items

FOLDS = 3
ENV = "stack_doctor"
OPTIONS = {"mode": "blind_diagnosis", "split": "train"}


def _span(lift: dict, scale: float = 1.0) -> str:
    return f"{scale * lift['mean']:+.3f} ({scale * lift['low']:+.3f}..{scale * lift['high']:+.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="train-split traces (stackgym train collect)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seed", type=int, default=1_500, help="first evaluation seed")
    parser.add_argument("--seeds", type=int, default=1_500, help="evaluation seeds in all")
    parser.add_argument("--base", default="heuristic")
    parser.add_argument(
        "--variant",
        action="append",
        help="semicolon-separated KEY=VALUE overrides of one setting to compare (repeatable; "
        "the traces are read once)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    started = time.perf_counter()
    variants = [v.split(";") if v else [] for v in (args.variant or [""])]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(None, [*args.overrides, f"out={folder}"])
        experiences = discover(args.traces, config).experiences(config)
        print(f"{len(experiences)} experiences ({time.perf_counter() - started:.0f} s)", flush=True)
        bases = {}
        for index, variant in enumerate(variants):
            overrides = [*args.overrides, *variant]
            print(f"-- {' '.join(overrides) or 'defaults'}", flush=True)
            out = Path(folder) / f"v{index}"
            config = load_config(None, [*overrides, f"out={out}"])
            results.append(
                {"overrides": overrides, **_cross_validate(config, experiences, args, bases)}
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _cross_validate(config, experiences, args, bases) -> dict:
    started = time.perf_counter()
    rewards: list[float] = []
    fixes: list[float] = []
    folds = []
    for fold in range(FOLDS):
        fold_config = config.model_copy(update={"out": Path(config.out) / f"fold{fold}"})
        trainer = Tier1Trainer(fold_config, fresh=True)
        train = [e for e in experiences if e.seed % FOLDS != fold]
        summary = trainer.fit(build_items(train, fold_config))
        seeds = [s for s in range(args.seed, args.seed + args.seeds) if s % FOLDS == fold]
        scorer = load_scorer(fold_config, Path(fold_config.out) / "tier1")
        agent = ScorerAgent(make_agent(args.base, ENV), scorer, fold_config, args.base)
        if fold not in bases:
            bases[fold] = _play(ENV, OPTIONS, make_agent(args.base, ENV), seeds)  # type: ignore[arg-type]
        base = bases[fold]
        new = _play(ENV, OPTIONS, agent, seeds)  # type: ignore[arg-type]
        reward = [n[0] - b[0] for b, n in zip(base, new, strict=True)]
        fix = [n[1] - b[1] for b, n in zip(base, new, strict=True)]
        rewards += reward
        fixes += fix
        row = {
            "fold": fold,
            "train_experiences": len(train),
            "steps": summary["step"],
            "validation_loss": summary["best_validation_loss"],
            "base_reward": sum(b[0] for b in base) / len(base),
            "base_fix": sum(b[1] for b in base) / len(base),
            "reward_lift": interval(reward),
            "fix_lift": interval(fix),
            "changed": sum(1 for d in reward if d != 0),
            "deviations": deviations(base, new)[:10],
        }
        folds.append(row)
        r, f = row["reward_lift"], row["fix_lift"]
        print(
            f"fold {fold}: base {row['base_reward']:.2f} / {100 * row['base_fix']:.1f} %; "
            f"reward lift {_span(r)}; fix lift {_span(f, 100)} pp; "
            f"{row['changed']}/{len(seeds)} seeds changed",
            flush=True,
        )
    pooled = {"reward_lift": interval(rewards), "fix_lift": interval(fixes)}
    r, f = pooled["reward_lift"], pooled["fix_lift"]
    print(
        f"pooled ({len(rewards)} seeds): reward lift {_span(r)}; fix lift {_span(f, 100)} pp; "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return {"folds": folds, "pooled": pooled}


if __name__ == "__main__":
    main()
