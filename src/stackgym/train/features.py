"""Scorer inputs: a text embedding of the state ⊕ structured features of (state, action).

Structured features work for any environment without a per-env vocabulary,
so a checkpoint's input size depends only on the config:

* hashed tokens (``FeatureConfig.hashed_dim`` buckets, signed hashing): each
  action field (``type=inspect``, ``fix=switch_backend``), the env and its
  options, the observation's short text fields, and a token whenever an action
  value equals an observation value (e.g. a fix for the root cause the
  observation names);
* numbers (:data:`NUMERIC`): step, the base agent's score for the action and
  how it compares with the other candidates, whether the base agent chose it,
  whether the action repeats an earlier one.

Options (``features.*``) that keep the scorer from recognising a training
scenario, so what it learns can carry over to new incidents: ``context:
generic`` (observation fields only as set/unset, numbers and booleans),
``action_fields: [type]`` (the kind of action; which one is left to the base
agent's scores), ``embedding_scale: 0`` (no text), and ``confidence`` (the base
agent's best score and best-minus-second margin per action type, how many
actions of each type were taken, and per action its type's margin and its
score minus the base agent's pick's).

Seed 003 scales the embedding down (×0.3) and the structured part up (×3.0),
so a few decisive structured features are not drowned by 384 small ones.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np

from stackgym.train.config import TrainConfig
from stackgym.train.embed import make_embedder
from stackgym.train.experience import Experience, action_key

#: Names of the numeric features, in order.
NUMERIC = (
    "step",
    "history_length",
    "has_candidates",
    "base_score",
    "base_score_minus_best",
    "base_score_minus_best_of_type",
    "base_reciprocal_rank",
    "base_choice",
    "repeats_earlier_action",
    "earlier_actions_of_type",
    "candidate_count",
    "is_candidate",
)
#: Extra numbers per action with ``features.confidence``: its type's best-minus-second
#: base score, and its base score minus the base agent's pick's.
CONFIDENCE_NUMERIC = ("type_margin", "score_minus_pick")
#: Observation text fields longer than this are left to the embedding.
SHORT_TEXT = 48


@lru_cache(maxsize=200_000)
def _bucket(token: str, dim: int) -> tuple[int, float]:
    digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return digest % dim, 1.0 if (digest >> 63) & 1 else -1.0


def input_dim(config: TrainConfig) -> int:
    """Width of the scorer's input for ``config``."""
    extra = len(CONFIDENCE_NUMERIC) if config.features.confidence else 0
    return config.embedder.dim + config.features.hashed_dim + len(NUMERIC) + extra


def _type_of(action: Any) -> Any:
    return action.get("type") if isinstance(action, dict) else None


def _action_tokens(action: Any, free: frozenset[str]) -> list[tuple[str, str]]:
    if not isinstance(action, dict):
        return [("text", str(action)[:SHORT_TEXT])]
    tokens = []
    for key, value in action.items():
        if key in free:
            continue
        if isinstance(value, list):
            tokens += [(key, str(v)) for v in value]
        else:
            tokens.append((key, str(value)))
    return tokens


def _context_tokens(
    experience: Experience, generic: bool = False
) -> tuple[list[str], dict[str, str], list[tuple]]:
    tokens = [f"env={experience.env_id}"]
    tokens += [f"opt:{k}={v}" for k, v in sorted(experience.options.items()) if k != "split"]
    short: dict[str, str] = {}
    numbers = []
    for key, value in experience.observation.items():
        if key in ("text", "reward", "done", "error") or value is None:
            continue
        if isinstance(value, bool):
            tokens.append(f"o:{key}={value}")
        elif isinstance(value, int | float):
            numbers.append((f"n:{key}", float(value)))
        elif isinstance(value, str) and len(value) <= SHORT_TEXT:
            tokens.append(f"o:{key}=set" if generic else f"o:{key}={value}")
            short[value] = key
    return tokens, short, numbers


class Featurizer:
    """Turns (experience, candidate actions) into scorer input rows."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.embedder = make_embedder(config.embedder)
        self.hashed_dim = config.features.hashed_dim
        self.free = frozenset(config.features.free_text_fields)
        fields = config.features.action_fields
        self.only = None if fields is None else frozenset(fields)
        self.generic = config.features.context == "generic"
        self.confidence = config.features.confidence
        self.dim = input_dim(config)

    def rows(self, experience: Experience, actions: list[Any]) -> np.ndarray:
        """One row per action, all in the state of ``experience``."""
        embedding = self.embedder.embed([experience.observation_text])[0]
        return self.rows_with_embedding(experience, actions, embedding)

    def rows_with_embedding(
        self, experience: Experience, actions: list[Any], embedding: np.ndarray
    ) -> np.ndarray:
        """Like :meth:`rows` with the state's embedding already computed."""
        config = self.config.features
        edim, hdim = self.config.embedder.dim, self.hashed_dim
        out = np.zeros((len(actions), self.dim), dtype=np.float32)
        out[:, :edim] = embedding * config.embedding_scale
        context, short, numbers = _context_tokens(experience, self.generic)
        base = np.zeros(hdim, dtype=np.float32)
        for token in context:
            index, sign = _bucket(token, hdim)
            base[index] += sign
        for name, value in numbers:
            index, _ = _bucket(name, hdim)
            base[index] += max(-1.0, min(1.0, value / 10.0))
        scores, base_pick, best, best_of_type, ranks = self._candidate_stats(experience)
        history = experience.history
        history_types = [_type_of_key(h) for h in history]
        margins: dict[Any, float] = {}
        pick_score = scores.get(base_pick) if base_pick is not None else None
        if self.confidence:
            margins = self._margins(experience, best_of_type)
            for kind, value in best_of_type.items():
                index, _ = _bucket(f"best:{kind}", hdim)
                base[index] += value
                index, _ = _bucket(f"margin:{kind}", hdim)
                base[index] += margins[kind]
            for kind in set(history_types):
                index, _ = _bucket(f"taken:{kind}", hdim)
                base[index] += history_types.count(kind) / 5.0
        for row, action in enumerate(actions):
            hashed = base.copy()
            for key, value in _action_tokens(action, self.free):
                if self.only is None or key in self.only:
                    index, sign = _bucket(f"a:{key}={value}", hdim)
                    hashed[index] += sign
                if value in short:
                    index, sign = _bucket(f"eq:{short[value]}~{key}", hdim)
                    hashed[index] += sign
            key = action_key(action, self.free)
            kind = _type_of(action)
            score = scores.get(key)
            if self.confidence:
                extra = out[row, edim + hdim + len(NUMERIC) :]
                extra[0] = margins.get(kind, 0.0)
                if score is not None and pick_score is not None:
                    extra[1] = score - pick_score
            numeric = out[row, edim + hdim : edim + hdim + len(NUMERIC)]
            numeric[0] = experience.step / 10.0
            numeric[1] = len(history) / 10.0
            numeric[2] = 1.0 if scores else 0.0
            if score is not None:
                numeric[3] = score
                numeric[4] = score - best
                numeric[5] = score - best_of_type.get(kind, score)
                numeric[6] = 1.0 / (1.0 + ranks[key])
                numeric[11] = 1.0
            numeric[7] = 1.0 if key == base_pick else 0.0
            numeric[8] = 1.0 if key in history else 0.0
            numeric[9] = sum(1 for t in history_types if t == kind) / 5.0
            numeric[10] = len(scores) / 50.0
            out[row, edim : edim + hdim] = hashed
        out[:, edim:] *= config.structured_scale
        return out

    def _margins(self, experience: Experience, best_of_type: dict[Any, float]) -> dict[Any, float]:
        """Per action type, the best candidate score minus the second best (0 with one)."""
        by_key: dict[str, tuple[Any, float]] = {}
        for candidate in experience.candidates or ():
            if not isinstance(candidate, dict) or "action" not in candidate:
                continue
            value = candidate.get("score")
            value = float(value) if isinstance(value, int | float) else 0.0
            by_key[action_key(candidate["action"], self.free)] = (
                _type_of(candidate["action"]),
                value,
            )
        values: dict[Any, list[float]] = {}
        for kind, value in by_key.values():
            values.setdefault(kind, []).append(value)
        out = {}
        for kind in best_of_type:
            ordered = sorted(values.get(kind, ()), reverse=True)
            out[kind] = ordered[0] - ordered[1] if len(ordered) > 1 else 0.0
        return out

    def _candidate_stats(
        self, experience: Experience
    ) -> tuple[dict[str, float], str | None, float, dict[Any, float], dict[str, int]]:
        scores: dict[str, float] = {}
        kinds: dict[str, Any] = {}
        pick = None
        for candidate in experience.candidates or ():
            if not isinstance(candidate, dict) or "action" not in candidate:
                continue
            key = action_key(candidate["action"], self.free)
            value = candidate.get("score")
            scores[key] = float(value) if isinstance(value, int | float) else 0.0
            action = candidate["action"]
            kinds[key] = action.get("type") if isinstance(action, dict) else None
            # Traces of exploring agents flag the base agent's pick apart from the action taken.
            flag = "base_choice" if "base_choice" in candidate else "chosen"
            if candidate.get(flag):
                pick = key
        best = max(scores.values(), default=0.0)
        best_of_type: dict[Any, float] = {}
        for key, value in scores.items():
            kind = kinds[key]
            best_of_type[kind] = max(best_of_type.get(kind, value), value)
        ordered = sorted(scores, key=lambda k: -scores[k])
        ranks = {key: rank for rank, key in enumerate(ordered)}
        return scores, pick, best, best_of_type, ranks


def _type_of_key(key: str) -> Any:
    # Keys are canonical JSON with sorted keys; "type" is read back cheaply.
    marker = '"type": "'
    start = key.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return key[start : key.find('"', start)]
