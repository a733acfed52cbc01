"""Stack Doctor's summary metrics, computed from per-episode metric dicts alone.

Each finished episode reports ``info["outcome"]["metrics"]`` (see
``StackDoctorEnv._outcome``); traces and run records keep that dict, so
:func:`summarise` works on data read back from a ``TraceStore`` or a
``ResultStore`` without re-running anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _rate(values: list[Any]) -> float | None:
    known = [bool(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _mean(values: list[Any]) -> float | None:
    known = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(known) / len(known) if known else None


def summarise(per_episode: list[Mapping[str, Any]]) -> dict[str, float | None]:
    """The figures Stack Doctor reports, over finished episodes.

    * ``fix_accuracy`` — share of episodes whose submitted fix was correct
      (an episode that never submitted counts as wrong);
    * ``rc_accuracy`` — the same for the root cause (blind mode; None in
      ``root_cause_visible``, where it is given);
    * ``avg_steps``, ``avg_reward`` — per episode;
    * ``evidence_precision`` — relevant sources seen / sources seen, pooled
      over all episodes (None if nothing was ever inspected);
    * ``justification_pass_rate`` — share of episodes whose justification met
      the mode's rule (blind: >= 10 characters; visible: concise and valid);
    * ``bad_intervention_rate`` — share of episodes with an avoidable bad
      intervention: a wrong ``apply_fix``, or (visible mode) a fix applied
      before any evidence was gathered;
    * ``supported_rate`` — visible mode: share of submissions citing an
      inspected, relevant source;
    * ``submit_rate``, ``out_of_steps_rate``, ``invalid_action_rate``
      (refused actions per step).
    """
    episodes = [m for m in per_episode if m]
    count = len(episodes)

    def column(name: str) -> list[Any]:
        return [m.get(name) for m in episodes]

    inspected = sum(int(m.get("inspected") or 0) for m in episodes)
    relevant = sum(int(m.get("relevant_inspected") or 0) for m in episodes)
    steps = sum(int(m.get("steps") or 0) for m in episodes)
    invalid = sum(int(m.get("invalid_actions") or 0) for m in episodes)
    submitted = [m for m in episodes if m.get("submitted")]
    return {
        "episodes": count,
        "fix_accuracy": _rate(column("fix_correct")),
        "rc_accuracy": _rate(column("rc_correct")),
        "avg_steps": _mean(column("steps")),
        "avg_reward": _mean(column("reward")),
        "evidence_precision": relevant / inspected if inspected else None,
        "justification_pass_rate": _rate(column("justification_ok")),
        "bad_intervention_rate": _rate(
            [
                (m.get("bad_interventions") or 0) + (m.get("unsafe_actions") or 0) > 0
                for m in episodes
            ]
        ),
        "supported_rate": _rate([m.get("supported") for m in submitted]),
        "submit_rate": _rate(column("submitted")),
        "out_of_steps_rate": _rate(column("out_of_steps")),
        "invalid_action_rate": invalid / steps if steps else None,
    }
