"""Scripted baselines of the troubleshooting gym. Their playbooks are data: ``baselines.yaml``.

* ``oracle`` reads the injected bug's ground truth (``env.injected_bug``) and
  gathers the minimal evidence that justifies it - one query showing the wrong
  rows in the app database, one source-of-truth call, one ETL-log call - then
  submits the true diagnosis. It proves every (sandbox, bug) solvable.
* ``heuristic`` knows nothing of the bug. It acts only on what observations
  show: it maps the symptom's metric to suspect tables, compares the billing
  provider's API with each database layer (most downstream first: dbt staging,
  warehouse raw, app database), localizes an anomaly's days in the app
  database, reads the ETL log of the table's job for the run at fault (or,
  for a table the API cannot count, scans that job's log first), and submits
  what it found. In the warehouse sandbox every data check runs on three
  layers instead of one, so it needs more actions: the architecture's cost.
* ``random`` makes random tool calls from ``env.example_actions`` (including a
  random diagnosis), seeded by the episode seed, until the episode ends.
"""

from __future__ import annotations

import random
import re
from collections.abc import Generator, Mapping
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackgym.core.agents import Agent
from stackgym.core.env import Env
from stackgym.core.errors import ConfigError
from stackgym.core.models import Action, Observation
from stackgym.data import DEFAULT_ANCHOR, metric_tasks
from stackgym.envs.troubleshoot.models import (
    Bug,
    CheckApi,
    InspectEtlLog,
    ListFiles,
    QueryDb,
    SubmitDiagnosis,
    parse_time,
)
from stackgym.sandboxes.manifest import Layer

PLAYBOOK_FILE = Path(__file__).with_name("baselines.yaml")
#: The order the heuristic walks the layers in: where reports come from, back to the source.
LAYER_ORDER = ("dbt_staging", "warehouse_raw", "app_db")
EPOCH = datetime(1970, 1, 1)

_Strict = ConfigDict(extra="forbid", frozen=True)


class ApiCall(BaseModel):
    model_config = _Strict

    resource: str
    filters: dict[str, str] = Field(default_factory=dict)


class EtlCall(BaseModel):
    model_config = _Strict

    since: str
    until: str


class OracleEvidence(BaseModel):
    model_config = _Strict

    sql: str
    api: ApiCall
    etl: EtlCall
    source: str


class LayerProbe(BaseModel):
    model_config = _Strict

    database: str
    sql: str


class Probe(BaseModel):
    model_config = _Strict

    api: ApiCall | None = None
    surplus: str | None = None
    deficit: str | None = None
    nulls: str | None = None
    etl_finding: str | None = None
    layers: dict[Layer, LayerProbe]


class Finding(BaseModel):
    model_config = _Strict

    table: str
    diagnosis: str
    source: str


class HeuristicPlaybook(BaseModel):
    model_config = _Strict

    suspects: dict[str, list[str]]
    probes: dict[str, Probe]
    localize: dict[str, str]
    routine_messages: list[str]
    findings: dict[str, Finding]


class Playbooks(BaseModel):
    """``baselines.yaml``."""

    model_config = _Strict

    oracle: dict[Bug, OracleEvidence]
    heuristic: HeuristicPlaybook


@cache
def playbooks() -> Playbooks:
    """The baselines' playbooks, loaded and validated once."""
    try:
        return Playbooks.model_validate(yaml.safe_load(PLAYBOOK_FILE.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{PLAYBOOK_FILE} is invalid: {exc}") from None


def _troubleshoot_env(env: Env) -> Any:
    from stackgym.envs.troubleshoot.env import TroubleshootEnv

    if not isinstance(env, TroubleshootEnv):
        raise ConfigError(f"this baseline plays the troubleshoot environment, not {env.env_id!r}")
    return env


def _unix(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _window_values(start: date, end: date) -> dict[str, Any]:
    """Placeholders of a window of days (see ``baselines.yaml``)."""
    first = datetime.combine(start, datetime.min.time())
    last = datetime.combine(end, datetime.min.time()) + timedelta(days=1, seconds=-1)
    return {
        "start": _unix(first),
        "end": _unix(last),
        "start_day": start.isoformat(),
        "end_day": end.isoformat(),
        "before_day": (start - timedelta(days=1)).isoformat(),
        "start_next_day": (start + timedelta(days=1)).isoformat(),
        "after_day": (end + timedelta(days=1)).isoformat(),
    }


def _fill(template: str, values: Mapping[str, Any]) -> str:
    return " ".join(template.format_map(dict(values)).split())


class OracleAgent(Agent):
    """Submits the injected bug's diagnosis after the minimal evidence for it."""

    name = "oracle"

    def __init__(self) -> None:
        self._plan: list[Action] = []

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        env = _troubleshoot_env(env)
        bug = env.injected_bug
        evidence = playbooks().oracle[bug.bug]
        values = {
            **_window_values(bug.window_start.date(), bug.window_end.date()),
            "start": _unix(bug.window_start),
            "end": _unix(bug.window_end),
            "sample": bug.sample_ids[0] if bug.sample_ids else "",
            "job": bug.etl_job,
        }
        steps: list[Action] = [
            QueryDb(database="app", sql=_fill(evidence.sql, values)),
            CheckApi(
                resource=evidence.api.resource,
                filters={k: _fill(v, values) for k, v in evidence.api.filters.items()},
                limit=5,
            ),
            InspectEtlLog(
                job=bug.etl_job,
                since=_fill(evidence.etl.since, values),
                until=_fill(evidence.etl.until, values),
            ),
        ]
        submit = SubmitDiagnosis(
            diagnosis=bug.summary,
            table=bug.table,
            window_start=bug.window_start.date().isoformat(),
            window_end=bug.window_end.date().isoformat(),
            source=_fill(evidence.source, values),
        )
        budget = max(0, env.config.max_turns - 1)
        self._plan = [*steps[:budget], submit]

    def act(self, observation: Observation) -> Action:
        return self._plan.pop(0)


class RandomAgent(Agent):
    """Random tool calls from the env's example actions, seeded by the episode seed."""

    name = "random"

    def __init__(self) -> None:
        self._env: Any = None
        self._rng = random.Random(0)

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        self._env = _troubleshoot_env(env)
        self._rng = random.Random(info.get("seed", 0))

    def act(self, observation: Observation) -> Action:
        return self._rng.choice(self._env.example_actions(self._rng))


# -- the heuristic ---------------------------------------------------------------

Investigation = Generator[Action, Observation, None]


def _first_row(observation: Observation) -> dict[str, Any] | None:
    result = observation.result if not observation.error else None
    if not isinstance(result, dict) or not result.get("rows"):
        return None
    return dict(zip(result["columns"], result["rows"][0], strict=True))


def _rows(observation: Observation) -> list[dict[str, Any]]:
    result = observation.result if not observation.error else None
    if not isinstance(result, dict) or "rows" not in result:
        return []
    return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]


def _total(observation: Observation) -> int | None:
    result = observation.result if not observation.error else None
    return result.get("total_count") if isinstance(result, dict) else None


def _runs(observation: Observation) -> tuple[list[dict[str, Any]], int]:
    result = observation.result if not observation.error else None
    if not isinstance(result, dict):
        return [], 0
    return list(result.get("runs") or []), int(result.get("total") or 0)


def _day(text: str) -> date:
    return parse_time(text).date()


def _run_days(run: Mapping[str, Any]) -> tuple[date, date]:
    """The days a sync run's cursor covered (a stuck cursor: up to the day before the run)."""
    start, end = parse_time(run["cursor_start"]), parse_time(run["cursor_end"])
    if end > start:
        return start.date(), (end - timedelta(seconds=1)).date()
    return start.date(), (parse_time(run["started_at"]) - timedelta(days=1)).date()


class HeuristicAgent(Agent):
    """A systematic investigator (see the module docstring); it never reads the ground truth."""

    name = "heuristic"

    def __init__(self) -> None:
        self._plan: Investigation | None = None
        self._started = False
        self._fallback: SubmitDiagnosis | None = None

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        _troubleshoot_env(env)
        self._plan = self._investigate(observation)
        self._started = False
        self._fallback = None

    def act(self, observation: Observation) -> Action:
        assert self._plan is not None, "reset() first"
        try:
            action = self._plan.send(observation) if self._started else next(self._plan)
        except StopIteration:
            action = self._fallback or SubmitDiagnosis(
                diagnosis="no anomaly found",
                table="unknown",
                window_start="1970-01-01",
                source="unknown",
            )
        self._started = True
        return action

    # The generator yields actions and receives each one's observation.
    def _investigate(self, first: Observation) -> Investigation:
        book = playbooks().heuristic
        found = re.search(r"Today is (\d{4}-\d{2}-\d{2})", first.text)
        today = _day(found.group(1)) if found else DEFAULT_ANCHOR.date()
        now = _unix(datetime.combine(today, datetime.min.time()))
        symptom = getattr(first, "symptom", "") or first.text
        metric = next(
            (name for name, task in metric_tasks().items() if task.title in symptom),
            "active_user_arpu",
        )
        databases = set(getattr(first, "databases", []) or ["app"])
        layers = [
            layer
            for layer in LAYER_ORDER
            if any(
                probe.layers.get(layer) and probe.layers[layer].database in databases
                for probe in book.probes.values()
            )
        ]
        suspects = book.suspects.get(metric, list(book.probes))
        self._fallback = SubmitDiagnosis(
            diagnosis=f"No anomaly found in {', '.join(suspects)}.",
            table=suspects[0],
            window_start=(today - timedelta(days=30)).isoformat(),
            source="unknown",
        )
        yield ListFiles(path=".")
        observation = yield InspectEtlLog(limit=12)
        jobs = {run["target_table"]: run["job"] for run in _runs(observation)[0]}
        for table in suspects:
            probe = book.probes[table]
            job = jobs.get(table, f"{table}_sync")
            if probe.api is not None:
                submission = yield from self._compare(book, probe, job, layers, now)
            else:
                submission = yield from self._scan(book, probe, job, layers)
            if submission is not None:
                yield submission
                return

    def _compare(
        self, book: HeuristicPlaybook, probe: Probe, job: str, layers: list[str], now: int
    ) -> Generator[Action, Observation, SubmitDiagnosis | None]:
        """Source of truth vs each layer; on a difference, localize it and read the log."""
        assert probe.api is not None
        observation = yield CheckApi(
            resource=probe.api.resource, filters=probe.api.filters, limit=1
        )
        api_rows = _total(observation)
        counts: dict[str, dict[str, Any]] = {}
        for layer in layers:
            query = probe.layers.get(layer)
            if query is None:
                continue
            observation = yield QueryDb(database=query.database, sql=_fill(query.sql, {}))
            row = _first_row(observation)
            if row is not None:
                counts[layer] = row
        origin = counts.get("app_db")
        if origin is None or api_rows is None:
            return None
        kind = None
        if origin["n_rows"] > api_rows and probe.surplus:
            kind = probe.surplus
        elif origin["n_rows"] < api_rows and probe.deficit:
            kind = probe.deficit
        elif (origin.get("n_null") or 0) > 0 and probe.nulls:
            kind = probe.nulls
        if kind is None:
            return None
        observation = yield QueryDb(database="app", sql=_fill(book.localize[kind], {"now": now}))
        days = [(r["day"], r["n"]) for r in _rows(observation)]
        if not days:
            return None
        start, end = _day(days[0][0]), _day(days[-1][0])
        observation = yield InspectEtlLog(
            job=job,
            since=(start - timedelta(days=1)).isoformat(),
            until=(end + timedelta(days=3)).isoformat(),
        )
        anomalies = self._anomalies(book, _runs(observation)[0])
        window = self._window([(start, end), *map(_run_days, anomalies)])
        values = {
            "surplus": origin["n_rows"] - api_rows,
            "db_rows": origin["n_rows"],
            "api_rows": api_rows,
            "n": sum(n for _d, n in days),
            "job": job,
        }
        return self._submission(book, kind, window, anomalies, values)

    def _scan(
        self, book: HeuristicPlaybook, probe: Probe, job: str, layers: list[str]
    ) -> Generator[Action, Observation, SubmitDiagnosis | None]:
        """No source-of-truth count: read the job's log, then check the rows it touched."""
        anomalies: list[dict[str, Any]] = []
        offset = 0
        while True:
            observation = yield InspectEtlLog(job=job, limit=200, offset=offset)
            found, total = _runs(observation)
            anomalies += self._anomalies(book, found)
            offset += len(found)
            if not found or offset >= total:
                break
        if not anomalies or probe.etl_finding is None:
            return None
        window = self._window([_run_days(run) for run in anomalies])
        values = _window_values(*window)
        origin: dict[str, Any] | None = None
        for layer in layers:
            query = probe.layers.get(layer)
            if query is None:
                continue
            observation = yield QueryDb(database=query.database, sql=_fill(query.sql, values))
            row = _first_row(observation)
            if layer == "app_db":
                origin = row
        if not origin or not origin.get("n_null"):
            return None
        customer = "none found"
        samples = [s for s in str(origin.get("samples") or "").split(",") if s][:3]
        for sample in samples:
            observation = yield CheckApi(
                resource="customers", filters={"app_user_id": sample}, limit=1
            )
            result = observation.result if not observation.error else None
            if isinstance(result, dict) and result.get("data"):
                customer = result["data"][0]["id"]
                samples = [sample]
                break
        return self._submission(
            book,
            probe.etl_finding,
            window,
            anomalies,
            {
                "n": origin["n_null"],
                "db_rows": origin["n_rows"],
                "sample": samples[0] if samples else "?",
                "customer": customer,
                "job": job,
            },
        )

    @staticmethod
    def _anomalies(book: HeuristicPlaybook, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Successful runs whose counts disagree or whose message is not routine, oldest first."""
        routine = [re.compile(p) for p in book.routine_messages]
        odd = [
            run
            for run in runs
            if run["status"] == "success"
            and (
                run["rows_loaded"] != run["rows_extracted"]
                or not any(p.search(run["message"]) for p in routine)
            )
        ]
        return sorted(odd, key=lambda run: run["started_at"])

    @staticmethod
    def _window(ranges: list[tuple[date, date]]) -> tuple[date, date]:
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @staticmethod
    def _submission(
        book: HeuristicPlaybook,
        kind: str,
        window: tuple[date, date],
        anomalies: list[dict[str, Any]],
        values: dict[str, Any],
    ) -> SubmitDiagnosis:
        finding = book.findings[kind]
        first = anomalies[0] if anomalies else {"message": "no unusual run", "started_at": "?"}
        filled = {
            **values,
            **_window_values(*window),
            "message": first["message"],
            "run_started": first["started_at"],
        }
        return SubmitDiagnosis(
            diagnosis=_fill(finding.diagnosis, filled),
            table=finding.table,
            window_start=window[0].isoformat(),
            window_end=window[1].isoformat(),
            source=_fill(finding.source, filled),
        )
