"""Per-environment episode metrics and how they are summarised.

Every env reports per-episode metrics in ``info["outcome"]["metrics"]`` (a flat
dict of numbers, booleans or None); traces and run records keep them. An env
may register a summariser (``register(..., metrics="module:function")``) that
turns a list of those dicts into the figures its reports show; without one,
each key is averaged over the episodes that report it (booleans as rates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stackgym.core.registry import load_object, registry

Summariser = Callable[[list[Mapping[str, Any]]], dict[str, float | None]]


def mean_of_metrics(per_episode: list[Mapping[str, Any]]) -> dict[str, float | None]:
    """Average every numeric or boolean metric over the episodes that report it."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metrics in per_episode:
        for key, value in metrics.items():
            if isinstance(value, bool | int | float):
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def summariser(env_id: str) -> Summariser:
    """The summariser registered for ``env_id`` (or :func:`mean_of_metrics`)."""
    spec = registry[env_id]
    return load_object(spec.metrics) if spec.metrics else mean_of_metrics


def summarize_metrics(env_id: str, per_episode: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Summarise per-episode metric dicts the way ``env_id`` defines."""
    return summariser(env_id)(list(per_episode))
