"""Tier 1: a low-rank scorer of (state, action), trained with a pairwise ranking loss.

The network is seed 003's: input ⊕ → ``A`` (input × rank, no bias) → ``B``
(rank × hidden, bias) → ReLU → dropout → linear → tanh, i.e. a first layer
``W = A·B`` factorised at the configured rank. With an input of 813 and rank
32 it has 28,193 parameters; at rank 8, 7,145 — the two numbers of the
seed's log, which the tests check.

Training items come from comparable states (:func:`build_items`): a *pair*
(an action that returned more vs one that returned less, by at least
``tier1.min_gap`` of normalised return) and a *point* per experience (its
normalised return-to-go, the pointwise term). Items stream through a replay
buffer (2,000) sampled in mini-batches (8); a fifth of the states (by hash of
the state, so no state is on both sides) is held out for validation; the
learning rate halves after ``patience_steps`` steps without a better
validation loss, down to ``min_lr``. The best weights by validation loss are
kept. A checkpoint holds the weights, the optimiser, the step, the LR and the
buffer's statistics, with the config stored beside it; loading one whose
architecture settings differ from the current config is refused
(:class:`CheckpointMismatch`), never silently replaced by a fresh model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stackgym.core.errors import ConfigError, DataError, StackgymError
from stackgym.train import deps
from stackgym.train.config import TrainConfig, load_beside, save_beside
from stackgym.train.experience import Experience, action_key, normalised, state_key, value_scales
from stackgym.train.features import Featurizer, input_dim

log = logging.getLogger("stackgym.train")

CHECKPOINT_FILE = "scorer.pt"
METRICS_FILE = "metrics.json"
#: Temperature of the logistic pairwise loss (scores live in [-1, 1]).
PAIR_TEMPERATURE = 0.1
#: Validation items kept (the oldest are dropped first): bounds the memory and the
#: cost of the pass over them every ``eval_every`` steps of a long-running watcher.
MAX_VALIDATION = 50_000


class CheckpointMismatch(StackgymError):
    """A checkpoint built with other architecture settings than the current config."""


def architecture(config: TrainConfig) -> dict[str, Any]:
    """The settings a checkpoint's weights depend on (a mismatch refuses the checkpoint)."""
    return {
        "tier1.rank": config.tier1.rank,
        "tier1.hidden": config.tier1.hidden,
        "embedder.kind": config.embedder.kind,
        "embedder.dim": config.embedder.dim,
        "features.hashed_dim": config.features.hashed_dim,
        "features.free_text_fields": list(config.features.free_text_fields),
        # Same width, other meaning: weights trained on generic context or on action types
        # alone would read full features as noise.
        "features.context": config.features.context,
        "features.action_fields": None
        if config.features.action_fields is None
        else list(config.features.action_fields),
        "features.confidence": config.features.confidence,
        "input_dim": input_dim(config),
    }


def check_compatible(stored: TrainConfig, current: TrainConfig, where: Path) -> None:
    """Raise :class:`CheckpointMismatch` naming every architecture setting that differs."""
    old, new = architecture(stored), architecture(current)
    differences = [
        f"{k}: checkpoint {old[k]!r}, current config {new[k]!r}" for k in old if old[k] != new[k]
    ]
    if differences:
        raise CheckpointMismatch(
            f"the Tier 1 checkpoint in {where} does not match the current config ("
            + "; ".join(differences)
            + ")",
            "set those values back to the checkpoint's (see its config.yaml), point `out` at "
            "another folder, or pass --fresh to move the old checkpoint aside and start anew",
        )


def make_model(config: TrainConfig) -> Any:
    """A fresh scorer network built from ``config`` (its rank is ``tier1.rank``, always)."""
    torch = deps.torch()
    nn = torch.nn
    settings = config.tier1

    class LowRankScorer(nn.Module):
        def __init__(self, inputs: int, rank: int, hidden: int, dropout: float) -> None:
            super().__init__()
            self.A = nn.Linear(inputs, rank, bias=False)
            self.B = nn.Linear(rank, hidden)
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(hidden, 1)
            self.rank = rank
            self.inputs = inputs

        def forward(self, x: Any) -> Any:
            hidden = self.dropout(torch.relu(self.B(self.A(x))))
            return torch.tanh(self.head(hidden)).squeeze(-1)

    torch.manual_seed(settings.seed)
    return LowRankScorer(input_dim(config), settings.rank, settings.hidden, settings.dropout)


def parameter_count(model: Any) -> int:
    """Trainable parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# -- training items ---------------------------------------------------------------


@dataclass
class Items:
    """Training items as arrays: a pair (a better than b) or a point (b = a, weight 0)."""

    xa: np.ndarray
    xb: np.ndarray
    va: np.ndarray
    vb: np.ndarray
    pair: np.ndarray
    validation: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.va)

    def take(self, mask: np.ndarray) -> Items:
        return Items(
            self.xa[mask], self.xb[mask], self.va[mask], self.vb[mask], self.pair[mask],
            self.validation[mask], self.stats,
        )  # fmt: skip


def _in_validation(key: str, share: float) -> bool:
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") / 2**32 < share


def build_items(
    experiences: list[Experience], config: TrainConfig, featurizer: Featurizer | None = None
) -> Items:
    """Pairs and points from experiences (see the module docstring)."""
    featurizer = featurizer or Featurizer(config)
    settings = config.tier1
    if not experiences:
        raise DataError(
            "no experiences to train Tier 1 on (the traces have no steps)",
            "record episodes first, e.g. `stackgym train collect stack_doctor --out DIR`",
        )
    scales = value_scales(experiences, config)
    texts = list(dict.fromkeys(e.observation_text for e in experiences))
    embedded = featurizer.embedder.embed(texts)
    row_of = {text: i for i, text in enumerate(texts)}
    x = np.empty((len(experiences), featurizer.dim), dtype=np.float32)
    v = np.empty(len(experiences), dtype=np.float32)
    keys = []
    actions = []
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(experiences):
        x[i] = featurizer.rows_with_embedding(e, [e.action], embedded[row_of[e.observation_text]])[
            0
        ]
        v[i] = normalised(e.return_to_go, scales[e.env_id])
        key = state_key(e, settings.comparable)
        keys.append(key)
        actions.append(action_key(e.action, config.features.free_text_fields))
        groups[key].append(i)
    rng = np.random.default_rng(settings.seed)
    better: list[int] = []
    worse: list[int] = []
    for members in groups.values():
        if len(members) < 2 or len({actions[i] for i in members}) < 2:
            continue
        tries = settings.pairs_per_experience * 3
        for i in members:
            made = 0
            for j in rng.choice(members, size=min(tries, len(members)), replace=False):
                if actions[i] == actions[j] or v[i] - v[j] < settings.min_gap:
                    continue
                better.append(i)
                worse.append(int(j))
                made += 1
                if made >= settings.pairs_per_experience:
                    break
    n_pairs = len(better)
    index_a = np.concatenate([np.array(better, dtype=np.int64), np.arange(len(experiences))])
    index_b = np.concatenate([np.array(worse, dtype=np.int64), np.arange(len(experiences))])
    pair = np.concatenate([np.ones(n_pairs, np.float32), np.zeros(len(experiences), np.float32)])
    held = np.array([_in_validation(k, settings.validation_share) for k in keys])
    order = rng.permutation(len(index_a))
    index_a, index_b, pair = index_a[order], index_b[order], pair[order]
    stats = {
        "experiences": len(experiences),
        "states": len(groups),
        "pairs": n_pairs,
        "points": len(experiences),
        "value_scales": scales,
        "comparable": settings.comparable,
    }
    return Items(
        xa=x[index_a], xb=x[index_b], va=v[index_a], vb=v[index_b], pair=pair,
        validation=held[index_a], stats=stats,
    )  # fmt: skip


# -- the trainer ----------------------------------------------------------------------


class Tier1Trainer:
    """Continuous training of the scorer: feed items, it trains, validates and checkpoints."""

    def __init__(self, config: TrainConfig, *, fresh: bool = False) -> None:
        torch = deps.torch()
        self.torch = torch
        torch.set_num_threads(1)  # a network this small runs fastest on one thread
        self.config = config
        self.settings = config.tier1
        self.folder = Path(config.out) / "tier1"
        self.model = make_model(config)
        # The fused kernel updates every parameter in one call: the step of a network
        # this small is dominated by per-call overhead, not arithmetic.
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=self.settings.lr,
            weight_decay=self.settings.weight_decay,
            fused=True,
        )
        self.step = 0
        self.lr = self.settings.lr
        self.best_validation = math.inf
        self.steps_since_best = 0
        self.lr_decays = 0
        self.samples_seen = 0
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, Any] | None = None
        self.width = width = input_dim(config)
        size = self.settings.buffer_size
        # One row per item: xa | xb | va, vb, pair, so a mini-batch is a single gather.
        self._buf = torch.zeros((size, 2 * width + 3))
        self._filled = 0
        self._cursor = 0
        self._val: dict[str, Any] | None = None
        self._generator = torch.Generator().manual_seed(self.settings.seed)
        if fresh:
            self._move_aside()
        elif (self.folder / CHECKPOINT_FILE).is_file():
            self._resume()

    # -- checkpoints ----------------------------------------------------------------

    def _move_aside(self) -> None:
        if (self.folder / CHECKPOINT_FILE).is_file():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.folder.with_name(f"tier1.replaced-{stamp}")
            self.folder.rename(aside)
            log.warning("moved the previous Tier 1 checkpoint to %s (--fresh)", aside)

    def _resume(self) -> None:
        stored = load_beside(self.folder)
        if stored is None:
            raise CheckpointMismatch(
                f"{self.folder / CHECKPOINT_FILE} has no config.yaml beside it, so its "
                "architecture cannot be checked",
                "pass --fresh to move it aside and start anew",
            )
        check_compatible(stored, self.config, self.folder)
        state = self.torch.load(self.folder / CHECKPOINT_FILE, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.lr = state["lr"]
        self.best_validation = state["best_validation"]
        self.lr_decays = state["lr_decays"]
        self.samples_seen = state["samples_seen"]
        self.history = state.get("history", [])
        self._set_lr(self.lr)
        log.info("resumed Tier 1 from %s at step %d", self.folder, self.step)

    def save(self) -> Path:
        """Write the checkpoint (best weights so far) and its config."""
        self.folder.mkdir(parents=True, exist_ok=True)
        save_beside(self.config, self.folder)
        weights = self.best_state or self.model.state_dict()
        state = {
            "model": weights,
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "lr": self.lr,
            "best_validation": self.best_validation,
            "lr_decays": self.lr_decays,
            "samples_seen": self.samples_seen,
            "history": self.history[-500:],
            "buffer": {"filled": self._filled, "capacity": self.settings.buffer_size},
            "validation_items": 0 if self._val is None else len(self._val["va"]),
            "architecture": architecture(self.config),
            "parameters": parameter_count(self.model),
        }
        temporary = self.folder / (CHECKPOINT_FILE + ".tmp")
        self.torch.save(state, temporary)
        temporary.replace(self.folder / CHECKPOINT_FILE)
        (self.folder / METRICS_FILE).write_text(json.dumps(self.summary(), indent=2), "utf-8")
        return self.folder / CHECKPOINT_FILE

    def summary(self) -> dict[str, Any]:
        """Figures worth printing and auditing."""
        return {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "lr": self.lr,
            "lr_decays": self.lr_decays,
            "best_validation_loss": None
            if math.isinf(self.best_validation)
            else self.best_validation,
            "buffer_filled": self._filled,
            "buffer_capacity": self.settings.buffer_size,
            "validation_items": 0 if self._val is None else len(self._val["va"]),
            "rank": self.model.rank,
            "input_dim": self.model.inputs,
            "parameters": parameter_count(self.model),
        }

    # -- training ---------------------------------------------------------------------

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _loss(self, xa: Any, xb: Any, va: Any, vb: Any, pair: Any) -> Any:
        torch = self.torch
        both = self.model(torch.cat([xa, xb]))
        sa, sb = both[: len(xa)], both[len(xa) :]
        ranking = torch.nn.functional.softplus(-(sa - sb) / PAIR_TEMPERATURE)
        pointwise = (sa - va) ** 2 + pair * (sb - vb) ** 2
        pairs = pair.sum()
        ranking_term = (pair * ranking).sum() / pairs.clamp(min=1.0)
        return ranking_term + self.settings.pointwise_weight * pointwise.mean()

    def add(self, items: Items) -> None:
        """Put new items in the buffer (training share) and the validation set."""
        torch = self.torch
        val = items.take(items.validation)
        train = items.take(~items.validation)
        if len(val):
            new = {k: torch.from_numpy(getattr(val, k)) for k in ("xa", "xb", "va", "vb", "pair")}
            if self._val is not None:
                new = {k: torch.cat([self._val[k], new[k]]) for k in new}
            self._val = {k: v[-MAX_VALIDATION:] for k, v in new.items()}
        size = self.settings.buffer_size
        count = len(train)
        if count > size:  # only the newest ``size`` items would survive anyway
            train = train.take(np.arange(count - size, count))
            count = size
        slots = (self._cursor + np.arange(count)) % size
        rows = np.concatenate(
            [train.xa, train.xb, train.va[:, None], train.vb[:, None], train.pair[:, None]], axis=1
        )
        self._buf[torch.from_numpy(slots)] = torch.from_numpy(rows.astype(np.float32))
        self._cursor = int((self._cursor + count) % size)
        self._filled = min(self._filled + count, size)

    def validation_loss(self) -> float | None:
        """Loss on the held-out states (None before there are any)."""
        if self._val is None or not len(self._val["va"]):
            return None
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            total = 0.0
            count = len(self._val["va"])
            for start in range(0, count, 4096):
                part = {k: v[start : start + 4096] for k, v in self._val.items()}
                loss = self._loss(part["xa"], part["xb"], part["va"], part["vb"], part["pair"])
                total += float(loss) * len(part["va"])
        self.model.train()
        return total / count

    def train_steps(self, steps: int) -> None:
        """``steps`` mini-batch updates from the buffer, validating every ``eval_every``."""
        if self._filled == 0:
            return
        torch = self.torch
        settings = self.settings
        batch = min(settings.batch_size, self._filled)
        self.model.train()
        draws = torch.randint(0, self._filled, (steps, batch), generator=self._generator)
        buf = self._buf
        width = self.width
        for row in draws:
            batch_rows = buf[row]
            loss = self._loss(
                batch_rows[:, :width],
                batch_rows[:, width : 2 * width],
                batch_rows[:, -3],
                batch_rows[:, -2],
                batch_rows[:, -1],
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            self.samples_seen += batch
            if self.step % settings.eval_every == 0:
                self._validate(float(loss.detach()))
            if self.step % settings.checkpoint_every == 0:
                self.save()

    def _validate(self, train_loss: float) -> None:
        settings = self.settings
        value = self.validation_loss()
        if value is None:
            return
        self.history.append(
            {"step": self.step, "train_loss": train_loss, "validation_loss": value, "lr": self.lr}
        )
        if value < self.best_validation - 1e-6:
            self.best_validation = value
            self.steps_since_best = 0
            self.best_state = {k: t.detach().clone() for k, t in self.model.state_dict().items()}
            return
        self.steps_since_best += settings.eval_every
        if self.steps_since_best >= settings.patience_steps and self.lr > settings.min_lr:
            self.lr = max(self.lr / 2, settings.min_lr)
            self._set_lr(self.lr)
            self.lr_decays += 1
            self.steps_since_best = 0
            log.info(
                "Tier 1: no validation improvement in %d steps; LR -> %.2e",
                settings.patience_steps,
                self.lr,
            )

    def fit(self, items: Items, *, passes: float | None = None) -> dict[str, Any]:
        """Stream ``items`` through the buffer, training ``steps_per_item`` steps per item."""
        settings = self.settings
        train_count = int((~items.validation).sum())
        self.add(items.take(items.validation))
        train = items.take(~items.validation)
        chunk = settings.buffer_size
        rate = settings.steps_per_item if passes is None else passes
        for start in range(0, max(train_count, 1), chunk):
            part = train.take(np.arange(start, min(start + chunk, train_count)))
            self.add(part)
            self.train_steps(max(1, round(len(part) * rate)))
        if self._val is not None:
            self._validate(float("nan"))
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.save()
        return self.summary()


# -- using a trained scorer -------------------------------------------------------------


class Tier1Scorer:
    """A trained scorer, loaded for acting (eval mode, no optimiser)."""

    def __init__(self, config: TrainConfig, folder: Path | None = None) -> None:
        torch = deps.torch()
        self.torch = torch
        folder = Path(folder) if folder is not None else Path(config.out) / "tier1"
        path = folder / CHECKPOINT_FILE
        if not path.is_file():
            raise ConfigError(
                f"no Tier 1 checkpoint at {path}",
                "train one with `stackgym train tier1 TRACE_DIR` (see docs/training.md), or "
                "name its folder: scorer:BASE@FOLDER",
            )
        stored = load_beside(folder)
        if stored is None:
            raise CheckpointMismatch(f"{path} has no config.yaml beside it")
        check_compatible(stored, config, folder)
        self.config = config
        self.folder = folder
        self.model = make_model(config)
        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.featurizer = Featurizer(config)

    def score(self, experience: Experience, actions: list[Any]) -> np.ndarray:
        """The scorer's value of each action in the state of ``experience``."""
        rows = self.featurizer.rows(experience, actions)
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(rows)).numpy()
