"""``stackgym train audit``: seed 003's training audit, written from facts.

Seed 003 was a hand-written report on a training run; everything in it was a
fact someone had to dig out: which tiers ran or were skipped and why, how
much data each had against its threshold, the reward distribution, where the
pair funnel lost its candidates, whether the checkpoint matched the config,
where the traces were and whether the trainer saw them. This module digs them
out of the trace stores, the checkpoints and the config, every time.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackgym.core.errors import StackgymError
from stackgym.core.traces import TRACE_FILE
from stackgym.train.chat import successful
from stackgym.train.config import TrainConfig, load_beside
from stackgym.train.experience import Corpus, discover, normalised, value_scales
from stackgym.train.outcome import TierResult
from stackgym.train.pairs import mine_pairs

_DEFAULT_SOURCE = "defaults, $STACKGYM_TRAIN_CONFIG or ./stackgym-train.yaml"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _size(path: Path) -> str:
    total = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1024
    return ""


def _tier1_section(config: TrainConfig, corpus_experiences: int) -> tuple[str, list[str]]:
    from stackgym.train.tier1 import CHECKPOINT_FILE, architecture

    folder = Path(config.out) / "tier1"
    checkpoint = folder / CHECKPOINT_FILE
    lines = ["## Tier 1: low-rank scorer", ""]
    result = TierResult.load(folder)
    if not checkpoint.is_file():
        summary = (
            f"Tier 1 NOT TRAINED: no checkpoint at {checkpoint}; "
            f"{corpus_experiences} experiences available"
        )
        if result is not None and result.status == "skipped":
            summary = f"Tier 1 SKIPPED: {result.reason}"
        lines += [f"**Status**: {summary}", ""]
        lines.append(f"Train it: `stackgym train tier1 TRACE_DIR` (writes {checkpoint}).")
        return summary, lines
    stored = load_beside(folder)
    used = architecture(stored) if stored is not None else {}
    wanted = architecture(config)
    mismatches = [k for k in wanted if used.get(k) != wanted[k]]
    state: dict[str, Any] = {}
    try:
        from stackgym.train import deps

        torch = deps.torch()
        state = torch.load(checkpoint, weights_only=False)
    except StackgymError:
        pass
    parameters = state.get("parameters")
    if stored is None:
        summary = f"Tier 1 checkpoint UNVERIFIABLE: {checkpoint} has no config.yaml beside it"
    elif mismatches:
        summary = (
            "Tier 1 checkpoint DOES NOT MATCH the config: "
            + "; ".join(
                f"{k} {used.get(k)!r} in the checkpoint vs {wanted[k]!r} configured"
                for k in mismatches
            )
            + " (it will be refused, not replaced)"
        )
    else:
        summary = (
            f"Tier 1 COMPLETED: rank {wanted['tier1.rank']}, input {wanted['input_dim']}, "
            f"{parameters if parameters is not None else '?'} parameters, "
            f"step {state.get('step', '?')}"
        )
    lines += [f"**Status**: {summary}", ""]
    lines += ["Config used (stored beside the checkpoint) vs configured (now):", ""]
    rows = [
        [k, used.get(k, "–"), wanted[k], "yes" if used.get(k) == wanted[k] else "**NO**"]
        for k in wanted
    ]
    if stored is not None:
        for key in (
            "lr",
            "weight_decay",
            "buffer_size",
            "batch_size",
            "validation_share",
            "patience_steps",
            "min_lr",
            "comparable",
        ):
            a, b = getattr(stored.tier1, key), getattr(config.tier1, key)
            rows.append([f"tier1.{key}", a, b, "yes" if a == b else "differs"])
    lines += _table(["setting", "checkpoint", "configured", "same"], rows)
    lines.append("")
    if state:
        history = state.get("history", [])
        lines += [
            f"- Checkpoint: `{checkpoint}` ({_size(checkpoint)})",
            f"- Training steps: {state.get('step')}; samples seen: {state.get('samples_seen')}",
            f"- Best validation loss: {state.get('best_validation'):.4f}"
            if isinstance(state.get("best_validation"), float)
            else "- Best validation loss: –",
            f"- Learning rate: {config.tier1.lr:g} -> {state.get('lr'):.2e} after "
            f"{state.get('lr_decays')} halving(s) (floor {config.tier1.min_lr:g})",
            f"- Replay buffer: {state.get('buffer', {}).get('filled')}/"
            f"{state.get('buffer', {}).get('capacity')}; "
            f"validation items: {state.get('validation_items')}",
        ]
        if history:
            lines.append(
                f"- Validation loss: {history[0]['validation_loss']:.4f} "
                f"(step {history[0]['step']}) -> "
                f"{history[-1]['validation_loss']:.4f} (step {history[-1]['step']})"
            )
    if result is not None and result.details.get("samples_per_second"):
        lines.append(
            f"- Throughput of the last run: {result.details['samples_per_second']:.0f} samples/s"
        )
    return summary, lines


def _lm_tier(
    name: str, folder: Path, count: int, threshold: int, unit: str
) -> tuple[str, list[str]]:
    result = TierResult.load(folder)
    now = f"{count}/{threshold} {unit} in the traces now"
    if result is None:
        state = (
            "would train now"
            if count >= threshold
            else f"would be skipped ({count}/{threshold} {unit})"
        )
        summary = f"{name} NOT RUN yet; {now}: {state}"
    elif result.status == "completed":
        summary = f"{result.line()}; {now}"
    else:
        summary = f"{name} {result.status.upper()}: {result.reason}; {now}"
    return summary, [f"**Status**: {summary}", ""]


def audit(trace_dir: str | Path, config: TrainConfig, *, config_source: str | None = None) -> str:
    """The audit report as Markdown (see the module docstring)."""
    trace_dir = Path(trace_dir)
    corpus: Corpus = discover(trace_dir, config, require=False)
    experiences = corpus.experiences(config)
    pairs, funnel = mine_pairs(experiences, config)
    good = [e for e in corpus.episodes if successful(e, config)]
    with_reasoning = sum(1 for e in good if any(s.reasoning for s in e.steps))
    scales = value_scales(experiences, config)

    tier1_summary, tier1_lines = _tier1_section(config, len(experiences))
    out = Path(config.out)
    dpo_summary, dpo_lines = _lm_tier(
        "DPO", out / "dpo", len(pairs), config.tier2.min_pairs, "pairs"
    )
    sft_summary, sft_lines = _lm_tier(
        "SFT", out / "sft", len(good), config.tier3.min_traces, "successful traces"
    )
    grpo = TierResult.load(out / "grpo")
    grpo_summary = grpo.line() if grpo is not None else "GRPO NOT RUN (`stackgym train grpo`)"

    lines = [
        "# Training audit",
        "",
        f"- **Date**: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- **Trace folder**: `{trace_dir}`",
        f"- **Training folder** (checkpoints): `{out}`",
        f"- **Config**: {config_source or _DEFAULT_SOURCE}",
        "",
        "## Summary",
        "",
        f"- {tier1_summary}",
        f"- {dpo_summary}",
        f"- {sft_summary}",
        f"- {grpo_summary}",
        "",
        "## Traces discovered",
        "",
        f"How: {corpus.how}.",
        "",
    ]
    if corpus.stores:
        rows = [[f"`{s.path}`", s.episodes, s.held_out, len(s.problems)] for s in corpus.stores]
        lines += _table(
            ["trace store", "episodes used", "held out (split excluded)", "unreadable lines"], rows
        )
        problems = [p for s in corpus.stores for p in s.problems][:5]
        if problems:
            lines += ["", "Unreadable lines (first 5):", *[f"- {p}" for p in problems]]
    else:
        lines.append(f"**No trace store** (`{TRACE_FILE}`) at or below `{trace_dir}`.")
    if corpus.foreign:
        lines += [
            "",
            f"Files that look like traces but are not a trace store, so were **not** read "
            f"(traces are `{TRACE_FILE}` written by `TraceStore`):",
            *[f"- `{p}`" for p in corpus.foreign[:10]],
        ]
    held = sum(s.held_out for s in corpus.stores)
    if held:
        lines += [
            "",
            f"{held} episode(s) were left out because their env option `split` is in "
            f"`exclude_splits` ({list(config.exclude_splits)}): held-out data is never trained on.",
        ]

    lines += ["", "## Data", ""]
    by_env: dict[str, list[Any]] = defaultdict(list)
    for episode in corpus.episodes:
        by_env[episode.env_id].append(episode)
    agents = Counter(f"{e.env_id} / {e.agent.name}" for e in corpus.episodes)
    lines.append(f"- Episodes: {len(corpus.episodes)}; step-level experiences: {len(experiences)}")
    if agents:
        lines.append(
            "- By env and agent: " + ", ".join(f"{k}: {v}" for k, v in sorted(agents.items()))
        )
    for env, episodes in sorted(by_env.items()):
        returns = [e.total_reward for e in episodes]
        judged = [e.passed for e in episodes if e.passed is not None]
        lines.append(
            f"- {env}: return min {min(returns):.2f}, mean {statistics.fmean(returns):.2f}, "
            f"max {max(returns):.2f}; passed {sum(judged)}/{len(judged)}; "
            f"returns scaled by {scales.get(env, 1.0):g} for the thresholds below"
        )
    values = [normalised(e.return_to_go, scales[e.env_id]) for e in experiences]
    positive = [v for v in values if v > config.pairs.chosen_min_reward]
    negative = [v for v in values if v < config.pairs.rejected_max_reward]
    neutral = len(values) - len(positive) - len(negative)
    stated = sum(1 for e in experiences if e.confidence is not None)
    lines += [
        "",
        "Reward distribution (normalised return-to-go of each step):",
        "",
        *_table(
            ["bucket", "experiences", "mean"],
            [
                [
                    f"positive (> {config.pairs.chosen_min_reward})",
                    len(positive),
                    f"{statistics.fmean(positive):.3f}" if positive else "–",
                ],
                [
                    f"negative (< {config.pairs.rejected_max_reward})",
                    len(negative),
                    f"{statistics.fmean(negative):.3f}" if negative else "–",
                ],
                ["neutral", neutral, "–"],
            ],
        ),
        "",
        f"With a stated confidence: {stated}/{len(experiences)} (the rest count as "
        f"{config.value.unknown_confidence:g}, `value.unknown_confidence`: environment rewards "
        "are computed by a rubric, not judged).",
        "",
    ]
    lines += tier1_lines
    lines += ["", "## Tier 2: DPO", "", *dpo_lines]
    lines += [
        f"Pair mining funnel (comparable = `{funnel.comparable}`, "
        "one pass grouped by task and history):",
        "",
    ]
    lines += _table(["step", "count"], [[name, count] for name, count in funnel.rows()])
    if funnel.combinations:
        rate = 100 * funnel.pairs / funnel.combinations
        lines += [
            "",
            f"Conversion: {funnel.pairs}/{funnel.combinations} combinations ({rate:.2f} %).",
        ]
    lines += ["", "## Tier 3: SFT distillation", "", *sft_lines]
    lines += [
        f"- Successful episodes: {len(good)} of {len(corpus.episodes)} "
        f"(passed, or return ≥ {config.tier3.min_return:g} where the env gives no verdict)",
        f"- With the agent's reasoning on at least one step: {with_reasoning}",
        "",
        "## GRPO",
        "",
        f"**Status**: {grpo_summary}",
    ]
    if grpo is not None and grpo.details.get("mean_reward_per_step"):
        rewards = grpo.details["mean_reward_per_step"]
        lines.append(
            f"- Mean reward per step: {rewards[0]:.3f} -> {rewards[-1]:.3f} "
            f"over {len(rewards)} steps"
        )

    lines += ["", "## Checkpoints found", ""]
    found = []
    checkpoints = {"Tier 1": "tier1/scorer.pt", "DPO": "dpo/model", "SFT": "sft/model"}
    checkpoints["GRPO"] = "grpo/model"
    for name, relative in checkpoints.items():
        path = out / relative
        if path.exists():
            stored = "yes" if (path.parent / "config.yaml").is_file() else "no"
            found.append([name, f"`{path}`", _size(path), stored])
    lines += (
        _table(["tier", "path", "size", "config beside it"], found)
        if found
        else [f"None under `{out}`."]
    )
    lines += ["", "## Recommendations", ""]
    advice = []
    if not corpus.stores:
        advice.append(
            "Record traces: `stackgym train collect ENV --out DIR`, "
            "or run/eval/experiment with `--out`."
        )
    if TierResult.load(out / "dpo") is None and len(pairs) >= config.tier2.min_pairs:
        advice.append("Run DPO: `stackgym train dpo TRACE_DIR` (its threshold is met).")
    if TierResult.load(out / "sft") is None and len(good) >= config.tier3.min_traces:
        advice.append("Run SFT: `stackgym train sft TRACE_DIR` (its threshold is met).")
    if len(pairs) < config.tier2.min_pairs:
        advice.append(
            f"DPO needs {config.tier2.min_pairs - len(pairs)} more pairs: record episodes that try "
            "different actions in the same situations "
            "(`stackgym train collect` repeats seeds with exploration)."
        )
    if len(good) < config.tier3.min_traces:
        advice.append(f"SFT needs {config.tier3.min_traces - len(good)} more successful traces.")
    if "DOES NOT MATCH" in tier1_summary:
        advice.append(
            "Retrain Tier 1 with `--fresh`, or set the config back to the checkpoint's values."
        )
    if "NOT TRAINED" in tier1_summary and experiences:
        advice.append("Train Tier 1: `stackgym train tier1 TRACE_DIR`.")
    lines += [f"{i}. {a}" for i, a in enumerate(advice, 1)] or [
        "None: every tier ran on the data it needs."
    ]
    return "\n".join(lines)
