"""The background trainer: ``stackgym train watch TRACE_DIR`` and ``stackgym train status``.

Every ``watch.poll_seconds`` it re-discovers the trace stores under the
folder (new stores are picked up too), takes the episodes it has not seen
(it remembers how many of each store it consumed), and

* feeds their experiences to one long-lived Tier 1 trainer (continuous
  training; the checkpoint is saved after every update);
* counts DPO pairs and successful traces over everything seen so far and runs
  DPO or SFT when a count reaches its threshold, and again each time the
  count has doubled since that tier's last run.

Its state (what it consumed, when it last polled, what each tier did) is
written to ``<out>/watch.json`` after every poll; ``stackgym train status``
reads that and each tier's ``result.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackgym.core.traces import EpisodeRecord
from stackgym.train.config import TrainConfig
from stackgym.train.experience import Corpus, discover
from stackgym.train.outcome import TierResult

STATE_FILE = "watch.json"


class Watcher:
    """Polls a trace folder and trains (see the module docstring)."""

    def __init__(
        self, trace_dir: Path, config: TrainConfig, *, log: Callable[[str], Any] = print
    ) -> None:
        self.trace_dir = Path(trace_dir)
        self.config = config
        self.log = log
        self.out = Path(config.out)
        self.state: dict[str, Any] = {
            "trace_dir": str(self.trace_dir),
            "pid": os.getpid(),
            "started_at": _now(),
            "polls": 0,
            "consumed": {},
            "episodes": 0,
            "tier1_updates": 0,
            "last_trained_at": {"dpo": 0, "sft": 0},
        }
        self.episodes: list[EpisodeRecord] = []
        self.trainer: Any = None

    def poll(self) -> dict[str, Any]:
        """One cycle: read new episodes, update Tier 1, maybe run DPO/SFT; return the state."""
        corpus = discover(self.trace_dir, self.config, require=False)
        fresh: list[EpisodeRecord] = []
        by_store: dict[str, list[EpisodeRecord]] = {}
        for episode_store, episode in _with_store(corpus):
            by_store.setdefault(episode_store, []).append(episode)
        for store, episodes in by_store.items():
            seen = self.state["consumed"].get(store, 0)
            fresh += episodes[seen:]
            self.state["consumed"][store] = len(episodes)
        self.episodes += fresh
        self.state["episodes"] = len(self.episodes)
        self.state["polls"] += 1
        self.state["last_poll_at"] = _now()
        self.state["new_episodes"] = len(fresh)
        if fresh:
            self._tier1(fresh, corpus)
        self._thresholds(corpus)
        self._save()
        return self.state

    def _tier1(self, fresh: list[EpisodeRecord], corpus: Corpus) -> None:
        from stackgym.train.tier1 import Tier1Trainer, build_items

        part = Corpus(root=corpus.root, stores=corpus.stores, episodes=fresh, foreign=[])
        experiences = part.experiences(self.config)
        if not experiences:
            return
        if self.trainer is None:
            self.trainer = Tier1Trainer(self.config)
        summary = self.trainer.fit(build_items(experiences, self.config))
        self.state["tier1_updates"] += 1
        self.state["tier1"] = summary
        TierResult(
            tier="Tier 1", status="completed", unit="experiences",
            count=summary["samples_seen"], details=summary, trace_dir=str(self.trace_dir),
            reason=f"continuous: {self.state['tier1_updates']} update(s)",
            losses=[h["validation_loss"] for h in self.trainer.history],
        ).save(self.out / "tier1")  # fmt: skip
        self.log(
            f"Tier 1: +{len(experiences)} experiences, step {summary['step']}, "
            f"validation loss {summary['best_validation_loss']}"
        )

    def _thresholds(self, corpus: Corpus) -> None:
        from stackgym.train.chat import successful
        from stackgym.train.pairs import mine_pairs

        everything = Corpus(
            root=corpus.root, stores=corpus.stores, episodes=self.episodes, foreign=[]
        )
        pairs, _ = mine_pairs(everything.experiences(self.config), self.config)
        good = sum(1 for e in self.episodes if successful(e, self.config))
        self.state["dpo_pairs"] = len(pairs)
        self.state["sft_traces"] = good
        last = self.state["last_trained_at"]
        if _due(len(pairs), self.config.tier2.min_pairs, last["dpo"]):
            from stackgym.train.lmtrain import run_dpo

            self.log(f"DPO: {len(pairs)} pairs reached the threshold; training")
            self.log(run_dpo(everything, self.config).line())
            last["dpo"] = len(pairs)
        if _due(good, self.config.tier3.min_traces, last["sft"]):
            from stackgym.train.lmtrain import run_sft

            self.log(f"SFT: {good} successful traces reached the threshold; training")
            self.log(run_sft(everything, self.config).line())
            last["sft"] = good

    def _save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state, indent=2, default=str), "utf-8")
        temporary.replace(path)

    def run(self, cycles: int | None = None) -> None:
        """Poll until ``cycles`` polls are done (forever when None)."""
        done = 0
        while cycles is None or done < cycles:
            state = self.poll()
            done += 1
            self.log(
                f"poll {state['polls']}: {state['new_episodes']} new episode(s), "
                f"{state['episodes']} in all; DPO pairs {state['dpo_pairs']}/"
                f"{self.config.tier2.min_pairs}, SFT traces {state['sft_traces']}/"
                f"{self.config.tier3.min_traces}"
            )
            if cycles is None or done < cycles:
                time.sleep(self.config.watch.poll_seconds)


def _due(count: int, threshold: int, last: int) -> bool:
    return count >= threshold and (last == 0 or count >= 2 * last)


def _with_store(corpus: Corpus) -> list[tuple[str, EpisodeRecord]]:
    # Episodes of a corpus are in store order; walk the stores' counts to label them.
    out = []
    index = 0
    for store in corpus.stores:
        for episode in corpus.episodes[index : index + store.episodes]:
            out.append((str(store.path), episode))
        index += store.episodes
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def status(config: TrainConfig) -> dict[str, Any]:
    """The watcher's last state and every tier's last result, from files under ``out``."""
    out = Path(config.out)
    state_path = out / STATE_FILE
    data: dict[str, Any] = {"out": str(out), "watcher": None, "tiers": {}}
    if state_path.is_file():
        data["watcher"] = json.loads(state_path.read_text("utf-8"))
    for name in ("tier1", "dpo", "sft", "grpo"):
        result = TierResult.load(out / name)
        data["tiers"][name] = None if result is None else result.model_dump(mode="json")
    return data


def status_text(data: dict[str, Any]) -> str:
    """:func:`status` for people."""
    lines = [f"training folder: {data['out']}"]
    watcher = data["watcher"]
    if watcher is None:
        lines.append("background trainer: never ran here (`stackgym train watch TRACE_DIR`)")
    else:
        lines.append(
            f"background trainer: pid {watcher['pid']}, following {watcher['trace_dir']}, "
            f"{watcher['polls']} poll(s), last at {watcher.get('last_poll_at')}, "
            f"{watcher['episodes']} episodes consumed, "
            f"{watcher['tier1_updates']} Tier 1 update(s), "
            f"DPO pairs {watcher.get('dpo_pairs')}, SFT traces {watcher.get('sft_traces')}"
        )
    for name, result in data["tiers"].items():
        if result is None:
            lines.append(f"{name}: never run")
        else:
            lines.append(
                f"{name}: {TierResult.model_validate(result).line()} ({result['finished_at']})"
            )
    return "\n".join(lines)
