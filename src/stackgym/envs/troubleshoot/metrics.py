"""The troubleshooting gym's metrics, computed from step records alone.

Every step's ``info`` carries what the step did (``tool``, ``layers``,
``tables``, ``evidence``, ``repeat``, ``failed``, ``tokens``); traces keep
those infos, so the same function that the environment uses for an episode's
``outcome["metrics"]`` recomputes them from a trace (:func:`metrics_from_trace`),
and adds what only a trace knows: the LLM tokens spent before the diagnosis.

Definitions (per episode; :func:`summarise` aggregates):

* ``actions_before_diagnosis`` - tool calls (valid or not) before
  ``submit_diagnosis``; None when the episode ended without a diagnosis.
* ``transcript_tokens`` - estimated tokens of everything exchanged up to the
  diagnosis (the prompt, every action and every observation; 4 characters a
  token): how much the agent had to read and write, for any agent.
* ``tokens_to_diagnosis`` - LLM tokens (prompt + completion, as the provider
  reported them) of the calls up to the diagnosis; only from traces, None for
  agents that report no usage.
* ``components_audited`` - distinct layers of the surface map the agent
  touched before the diagnosis (read a file of, queried, called the API of,
  read the ETL log of), out of ``components_total`` in the sandbox.
* ``tables_queried`` - distinct database objects read by ``query_db``.
* ``unnecessary_exploration_rate`` - the share of the actions before the
  diagnosis that could not have contributed evidence about the bug: refused
  or failed calls, exact repeats of an earlier call, and calls off the bug's
  evidence path (a query reading nothing derived from the bugged table, an
  API call on a resource that is not its source of truth, an ETL-log call
  filtered to another job, a file that never mentions the table). Listing
  files or a database's catalog (``information_schema``, ``sqlite_master``)
  is orientation and counts as necessary unless repeated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stackgym.sandboxes.manifest import APP_LAYERS, LAYERS, WAREHOUSE_LAYERS

if TYPE_CHECKING:
    from stackgym.core.traces import EpisodeRecord

SUBMIT = "submit_diagnosis"
#: Tools whose calls the per-tool counts report.
COUNTED_TOOLS = {
    "query_db": "sql_queries",
    "check_api": "api_calls",
    "inspect_etl_log": "etl_log_calls",
    "read_file": "files_read",
    "list_files": "listings",
}


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` at 4 characters a token (a stable, model-free estimate)."""
    return math.ceil(len(text) / 4)


def exploration(steps: Iterable[Mapping[str, Any]], *, prompt_tokens: int = 0) -> dict[str, Any]:
    """The exploration metrics of one episode from its step infos (see the module docstring)."""
    investigative: list[Mapping[str, Any]] = []
    submitted = False
    tokens = prompt_tokens
    for info in steps:
        if not info:  # an action refused after the end carries no step facts
            continue
        tokens += int(info.get("tokens") or 0)
        if info.get("tool") == SUBMIT and not info.get("failed"):
            submitted = True
            break
        investigative.append(info)
    layers = dict.fromkeys(LAYERS, 0)
    tables: set[str] = set()
    for info in investigative:
        for access in info.get("accesses") or []:
            if access.get("layer") in layers:
                layers[access["layer"]] += 1
        tables.update(info.get("tables") or [])
    unnecessary = sum(
        1
        for info in investigative
        if info.get("failed") or info.get("repeat") or info.get("evidence") is False
    )
    touched = {layer for layer, count in layers.items() if count}
    metrics: dict[str, Any] = {
        "submitted": submitted,
        "actions_before_diagnosis": len(investigative) if submitted else None,
        "transcript_tokens": tokens,
        "components_audited": len(touched),
        "tables_queried": len(tables),
        "investigative_actions": len(investigative),
        "unnecessary_actions": unnecessary,
        "unnecessary_exploration_rate": unnecessary / len(investigative) if investigative else None,
        "touched_app_surface": bool(touched & APP_LAYERS),
        "touched_warehouse_surface": bool(touched & WAREHOUSE_LAYERS),
        "used_source_of_truth": "mock_api" in touched,
        "used_etl_log": "etl_log" in touched,
    }
    for tool, name in COUNTED_TOOLS.items():
        metrics[name] = sum(1 for info in investigative if info.get("tool") == tool)
    metrics["tool_errors"] = sum(
        1 for info in investigative if info.get("failed") and info.get("tool") != "invalid"
    )
    metrics["invalid_actions"] = sum(1 for info in investigative if info.get("tool") == "invalid")
    metrics.update({f"reads_{layer}": count for layer, count in layers.items()})
    return metrics


def episode_metrics(
    steps: Iterable[Mapping[str, Any]],
    *,
    grade: Mapping[str, Any] | None,
    components_total: int,
    prompt_tokens: int,
    turns: int,
    max_turns_reached: bool,
) -> dict[str, Any]:
    """The flat per-episode metrics dict (``info["outcome"]["metrics"]``).

    ``grade`` is :meth:`rubric.Grade.as_dict` of the submitted diagnosis, or
    None when the episode ended without one.
    """
    metrics: dict[str, Any] = {
        "passed": bool(grade and grade["passed"]),
        "score": (grade["criteria_met"] / 4) if grade else 0.0,
        "criteria_met": grade["criteria_met"] if grade else 0,
        **{
            f"{name}_ok": bool(grade and grade[f"{name}_ok"])
            for name in ("table", "mechanism", "window", "source")
        },
        "window_jaccard": grade["window_jaccard"] if grade else None,
    }
    metrics.update(exploration(steps, prompt_tokens=prompt_tokens))
    metrics.update(
        {
            "tokens_to_diagnosis": None,
            "components_total": components_total,
            "turns": turns,
            "max_turns_reached": max_turns_reached,
        }
    )
    return metrics


def metrics_from_trace(episode: EpisodeRecord) -> dict[str, Any]:
    """An episode's metrics recomputed from its trace, with ``tokens_to_diagnosis``.

    The exploration metrics come from the recorded step infos (the same
    function the env uses); the grade from the recorded outcome; the LLM
    tokens from the usage of the steps up to the diagnosis.
    """
    metrics = dict(episode.outcome.get("metrics") or {})
    prompt = estimate_tokens(str((episode.reset_observation or {}).get("text") or ""))
    metrics.update(exploration((s.info for s in episode.steps), prompt_tokens=prompt))
    used = 0
    reported = False
    for step in episode.steps:
        if step.usage is not None:
            used += step.usage.total_tokens
            reported = True
        info = step.info or {}
        if info.get("tool") == SUBMIT and not info.get("failed"):
            break
    metrics["tokens_to_diagnosis"] = used if reported and metrics.get("submitted") else None
    return metrics


def _mean(values: Iterable[Any]) -> float | None:
    known = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(known) / len(known) if known else None


def _rate(values: Iterable[Any]) -> float | None:
    known = [bool(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def summarise(per_episode: list[Mapping[str, Any]]) -> dict[str, float | None]:
    """The figures the troubleshooting gym reports, over finished episodes.

    Rates are shares of episodes; ``actions_before_diagnosis`` and the token
    figures average over episodes that submitted a diagnosis, their
    ``..._correct_diagnosis`` twins over episodes that passed; the
    unnecessary exploration rate pools actions over all episodes.
    """
    episodes = [m for m in per_episode if m]
    submitted = [m for m in episodes if m.get("submitted")]
    passed = [m for m in episodes if m.get("passed")]
    investigative = sum(int(m.get("investigative_actions") or 0) for m in episodes)
    unnecessary = sum(int(m.get("unnecessary_actions") or 0) for m in episodes)

    def column(rows: list[Mapping[str, Any]], name: str) -> list[Any]:
        return [m.get(name) for m in rows]

    summary: dict[str, float | None] = {
        "episodes": len(episodes),
        "pass_rate": _rate(column(episodes, "passed")),
        "submit_rate": _rate(column(episodes, "submitted")),
        "mean_score": _mean(column(episodes, "score")),
        **{
            f"{name}_rate": _rate(column(episodes, f"{name}_ok"))
            for name in ("table", "mechanism", "window", "source")
        },
        "actions_before_diagnosis": _mean(column(submitted, "actions_before_diagnosis")),
        "actions_before_correct_diagnosis": _mean(column(passed, "actions_before_diagnosis")),
        "tokens_to_diagnosis": _mean(column(submitted, "tokens_to_diagnosis")),
        "tokens_to_correct_diagnosis": _mean(column(passed, "tokens_to_diagnosis")),
        "transcript_tokens_to_diagnosis": _mean(column(submitted, "transcript_tokens")),
        "components_audited": _mean(column(episodes, "components_audited")),
        "components_total": _mean(column(episodes, "components_total")),
        "tables_queried": _mean(column(episodes, "tables_queried")),
        "unnecessary_exploration_rate": unnecessary / investigative if investigative else None,
        "source_of_truth_rate": _rate(column(episodes, "used_source_of_truth")),
        "etl_log_rate": _rate(column(episodes, "used_etl_log")),
        "cross_layer_rate": _rate(
            [m.get("touched_app_surface") and m.get("touched_warehouse_surface") for m in episodes]
        ),
        "mean_turns": _mean(column(episodes, "turns")),
        "max_turns_rate": _rate(column(episodes, "max_turns_reached")),
        "tool_error_rate": _ratio(episodes, "tool_errors", "turns"),
        "invalid_action_rate": _ratio(episodes, "invalid_actions", "turns"),
    }
    return summary


def _ratio(episodes: list[Mapping[str, Any]], part: str, whole: str) -> float | None:
    total = sum(int(m.get(whole) or 0) for m in episodes)
    return sum(int(m.get(part) or 0) for m in episodes) / total if total else None
