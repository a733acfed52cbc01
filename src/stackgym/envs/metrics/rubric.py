"""The original rubric of the metrics benchmark, and the per-episode metrics.

Four scores, each 0..1, and their mean as the total:

* ``runtime`` - the answer executed (a number, or at least a result, came
  back; ``0`` when it raised, timed out or was never written);
* ``output`` - the value is within the task's tolerance of the ground truth;
* ``schema`` - no unknown table/column/field error (``0`` also when no
  answer was written: nothing shows the schema was understood);
* ``tool_usage`` - the share of the sandbox's context files the agent read.

An episode *passes* when ``output`` is 1. The expected value is the ground
truth of the episode's data snapshot (drift included), computed by
:mod:`stackgym.data.truth`, which shares no code with any answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stackgym.data import MetricTask
from stackgym.sandboxes.manifest import APP_LAYERS, LAYERS, WAREHOUSE_LAYERS
from stackgym.sandboxes.runtimes import AnswerResult


@dataclass(frozen=True)
class Grade:
    """The rubric applied to one answer."""

    passed: bool
    runtime: float
    output: float
    schema: float
    tool_usage: float
    expected: float
    actual: float | None
    error: str | None
    error_kind: str | None

    @property
    def score(self) -> float:
        return (self.runtime + self.output + self.schema + self.tool_usage) / 4


def grade(
    answer: AnswerResult,
    task: MetricTask,
    expected: float,
    *,
    context_read: int,
    context_total: int,
) -> Grade:
    """Score ``answer`` against ``expected`` with ``task``'s tolerance."""
    executed = answer.error_kind in (None, "output_shape")
    passed = answer.value is not None and task.accepts(expected, answer.value)
    schema_ok = answer.error_kind not in ("schema", "no_answer")
    return Grade(
        passed=passed,
        runtime=1.0 if executed else 0.0,
        output=1.0 if passed else 0.0,
        schema=1.0 if schema_ok else 0.0,
        tool_usage=context_read / context_total if context_total else 1.0,
        expected=float(expected),
        actual=answer.value,
        error=answer.error,
        error_kind=answer.error_kind,
    )


@dataclass
class Tally:
    """What an episode touched, tool call by tool call."""

    context_files: frozenset[str]
    reads: list[tuple[str, str | None]]  # (path or db object, layer)
    files_read: set[str]
    files_written: set[str]
    files_listed: set[str]
    sql_queries: int = 0
    tool_errors: int = 0
    invalid_actions: int = 0
    lint_calls: int = 0

    @classmethod
    def start(cls, context_files: Iterable[str]) -> Tally:
        return cls(frozenset(context_files), [], set(), set(), set())

    @property
    def context_read(self) -> int:
        return len(self.context_files & self.files_read)

    def layer_reads(self) -> dict[str, int]:
        counts = dict.fromkeys(LAYERS, 0)
        for _path, layer in self.reads:
            if layer in counts:
                counts[layer] += 1
        return counts


def episode_metrics(
    grade_: Grade,
    tally: Tally,
    *,
    turns: int,
    lint_turns: int,
    max_turns_reached: bool,
    answered: bool,
    network_isolated: bool | None,
) -> dict[str, Any]:
    """The flat per-episode metrics dict (``info["outcome"]["metrics"]``)."""
    layers = tally.layer_reads()
    app = any(layers[layer] for layer in APP_LAYERS)
    warehouse = any(layers[layer] for layer in WAREHOUSE_LAYERS)
    metrics: dict[str, Any] = {
        "score": grade_.score,
        "runtime": grade_.runtime,
        "output": grade_.output,
        "schema": grade_.schema,
        "tool_usage": grade_.tool_usage,
        "expected": grade_.expected,
        "actual": grade_.actual,
        "context_files_read": tally.context_read,
        "context_files_total": len(tally.context_files),
    }
    metrics.update({f"reads_{layer}": count for layer, count in layers.items()})
    metrics.update(
        {
            "touched_app_surface": app,
            "touched_warehouse_surface": warehouse,
            "cross_layer": app and warehouse,
            "turns": turns,
            "lint_turns": lint_turns,
            "files_read": len(tally.files_read),
            "files_written": len(tally.files_written),
            "sql_queries": tally.sql_queries,
            "lint_calls": tally.lint_calls,
            "tool_errors": tally.tool_errors,
            "invalid_actions": tally.invalid_actions,
            "answered": answered,
            "max_turns_reached": max_turns_reached,
            "network_isolated": network_isolated,
        }
    )
    return metrics


#: Metrics whose mean over episodes means nothing (values of different snapshots).
_NOT_AVERAGED = ("expected", "actual")


def summarise(per_episode: list[Mapping[str, Any]]) -> dict[str, float | None]:
    """Means of the per-episode metrics (booleans as rates), values left out.

    ``cross_layer_rate`` is the share of episodes that read both an app layer
    and a warehouse layer (the realistic sandbox's traversal rate).
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metrics in per_episode:
        for key, value in metrics.items():
            if key in _NOT_AVERAGED or isinstance(value, str) or value is None:
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    summary: dict[str, float | None] = {key: sums[key] / counts[key] for key in sums}
    if "cross_layer" in summary:
        summary["cross_layer_rate"] = summary["cross_layer"]
    return summary
