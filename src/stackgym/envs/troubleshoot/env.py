"""The troubleshooting gym: find the pipeline bug behind a wrong metric (SPEC §4).

An episode is (sandbox, bug type, data snapshot). The app database - and, in
``troubleshoot-warehouse``, the warehouse replicated from it - holds the data
a broken sync job loaded; the billing provider's API holds the clean objects;
the ETL log records every sync run. The agent sees the symptom ("Active-user
ARPU reports $X; the billing provider's data implies about $Y"), investigates
with ``query_db``, ``check_api``, ``inspect_etl_log``, ``read_file`` and
``list_files``, and ends the episode with ``submit_diagnosis`` (table, window,
what happened, where it came from), graded by the deterministic rubric
(:mod:`stackgym.envs.troubleshoot.rubric`). Each tool call is one turn; at
``max_turns`` without a diagnosis the episode is truncated and fails.

The episode seed changes nothing in the episode: the snapshot comes from
``bug``/``data_seed``/``scale``/``anchor``, and sandboxes, prompts and grading
are deterministic. The seed only feeds agents' randomness.
"""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from stackgym.core.env import Env
from stackgym.core.errors import ConfigError, StackgymError
from stackgym.core.models import Action, StepResult
from stackgym.core.tools import ActionSet
from stackgym.data import DEFAULT_ANCHOR, BugDiagnosis, DatasetSpec, dataset_for, metric_tasks
from stackgym.data.etl import JOBS
from stackgym.envs.options import episode_options, validate_options
from stackgym.envs.troubleshoot import api, runs
from stackgym.envs.troubleshoot.metrics import episode_metrics, estimate_tokens
from stackgym.envs.troubleshoot.models import (
    EPISODE_OPTIONS,
    ROWS_FETCHED,
    ROWS_SHOWN,
    SQL_TIMEOUT_S,
    TOOLS,
    CheckApi,
    InspectEtlLog,
    ListFiles,
    QueryDb,
    ReadFile,
    SubmitDiagnosis,
    TroubleshootConfig,
    TroubleshootObservation,
    get_sandbox,
)
from stackgym.envs.troubleshoot.rubric import Diagnosis, Truth, grade, table_name, window_days
from stackgym.sandboxes.build import SandboxBuild
from stackgym.sandboxes.catalog import Sandbox
from stackgym.sandboxes.sql import SqlError, plain_value
from stackgym.sandboxes.workspace import Access, ToolError, Workspace

ACTIONS = ActionSet(TOOLS)
#: Layers of the databases ``query_db`` serves (the stores behind the API and the log are not).
QUERYABLE_LAYERS = ("app_db", "warehouse_raw")
#: The symptom names the first affected metric in this order.
SYMPTOM_ORDER = ("active_user_arpu", "avg_org_ltv", "org_churn_rate")
_TEMPLATE = re.compile(r"\{(\w+)\}")
#: Queries of a database's own catalog (which tables and columns exist).
CATALOG_QUERY = re.compile(
    r"(?i)\b(information_schema|sqlite_master|sqlite_schema|duckdb_tables|duckdb_columns|"
    r"duckdb_views|table_info|show_tables)\b"
)
#: Queries and API calls the env checker and the random baseline draw from.
EXAMPLE_SQL = {
    "app": (
        "select count(*) as n from invoices",
        "select status, count(*) as n from subscriptions group by status",
        "select count(*) as n from users where stripe_customer_id is null",
    ),
    "warehouse": (
        "select count(*) as n from raw.stripe_invoices",
        "select subscription_status as status, count(*) as n\n"
        "from staging.stg_stripe_subscriptions group by 1",
        "select * from marts.fct_org_revenue limit 5",
    ),
}
EXAMPLE_MECHANISMS = (
    "invoices were loaded twice (duplicates)",
    "users lost their Stripe customer mapping",
    "the amount_paid field was renamed upstream",
    "cancellations were not propagated; statuses are stale",
)


def _config(options: dict[str, Any]) -> TroubleshootConfig:
    config = validate_options("troubleshoot", TroubleshootConfig, options)
    get_sandbox(config.sandbox)  # unknown ids fail here, listing the known ones
    return config


def _render(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ConfigError(f"prompt template names an unknown field {{{match.group(1)}}}")
        return values[match.group(1)]

    return _TEMPLATE.sub(replace, template)


def _money(cents: float) -> str:
    return f"${cents / 100:,.2f}"


@cache
def _facts(spec: DatasetSpec) -> tuple[BugDiagnosis, str, dict[str, Any]]:
    """The injected bug's diagnosis and the symptom of ``spec``'s snapshot (computed once)."""
    dataset = dataset_for(spec)
    diagnosis = dataset.diagnosis
    if diagnosis is None:  # pragma: no cover - the config always names a bug
        raise StackgymError(f"the snapshot of {spec.key()} has no injected bug")
    reported = dataset.truth().model_dump()
    implied = dataset_for(spec.clean()).truth().model_dump()
    affected = [m for m in SYMPTOM_ORDER if m in diagnosis.affected_metrics]
    metric = (
        affected[0]
        if affected
        else max(SYMPTOM_ORDER, key=lambda m: abs(diagnosis.inflation.get(m, 1.0) - 1.0))
    )
    task = metric_tasks()[metric]
    show = _money if task.unit == "cents" else (lambda v: f"{v:.2%}")
    symptom = (
        f"Incident: {task.title} reports {show(reported[metric])}; the billing provider's "
        f"data implies about {show(implied[metric])}."
    )
    return (
        diagnosis,
        symptom,
        {"metric": metric, "reported": reported[metric], "implied": implied[metric]},
    )


@cache
def _lineage(tree: Path) -> dict[str, frozenset[str]]:
    """Warehouse object (``schema.name``) -> the dataset tables it is derived from.

    Read from the build's dbt models: ``source('raw', 'x')`` and ``ref('y')``
    calls, resolved down to raw tables. Raw tables map to themselves.
    """
    models: dict[str, tuple[str, set[str], set[str]]] = {}
    for path in sorted((tree / "models").rglob("*.sql")) if (tree / "models").is_dir() else []:
        text = path.read_text()
        refs = set(re.findall(r"ref\(\s*['\"](\w+)['\"]\s*\)", text))
        sources = set(re.findall(r"source\(\s*['\"]\w+['\"]\s*,\s*['\"](\w+)['\"]\s*\)", text))
        models[path.stem] = (path.parent.name, refs, sources)

    def tables(name: str, seen: frozenset[str]) -> set[str]:
        if name in seen or name not in models:
            return set()
        _schema, refs, sources = models[name]
        found = {t for s in sources if (t := table_name(s))}
        for ref in refs:
            found |= tables(ref, seen | {name})
        return found

    return {
        f"{schema}.{name}": frozenset(tables(name, frozenset()))
        for name, (schema, _r, _s) in models.items()
    }


class TroubleshootEnv(Env):
    """See the module docstring; options are :class:`TroubleshootConfig`'s fields."""

    env_id = "troubleshoot"
    observation_type = TroubleshootObservation

    def __init__(self, **options: Any) -> None:
        self.config = _config(options)
        super().__init__(**self.config.model_dump(mode="json"))
        self.episode = self.config
        self.sandbox: Sandbox | None = None
        self.build: SandboxBuild | None = None
        self.workspace: Workspace | None = None
        self._api: api.BillingApi | None = None
        self._runs: runs.EtlRunHistory | None = None
        self._stores_of: Path | None = None
        self._snapshot: str | None = None
        self._truth: Truth | None = None
        self._symptom = ""
        self._symptom_facts: dict[str, Any] = {}
        self._steps: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._turn = 0
        self._prompt_tokens = 0
        self._finished: tuple[bool, bool] | None = None

    # -- protocol pieces ---------------------------------------------------------

    @property
    def action_set(self) -> ActionSet:
        return ACTIONS

    @property
    def data_snapshot(self) -> str | None:
        return self._snapshot

    def _extra_state(self) -> dict[str, Any]:
        return {
            "sandbox": self.episode.sandbox,
            "bug": self.episode.bug,
            "turn": self._turn,
            "max_turns": self.config.max_turns,
        }

    @property
    def databases(self) -> list[str]:
        """The databases ``query_db`` accepts in this episode's sandbox."""
        assert self.sandbox is not None
        return [
            name
            for name, db in self.sandbox.manifest.databases.items()
            if db.layer in QUERYABLE_LAYERS
        ]

    @property
    def injected_bug(self) -> BugDiagnosis:
        """The injected bug's full ground truth (what the oracle reads; never shown to agents)."""
        return _facts(self.spec())[0]

    @property
    def truth(self) -> Truth:
        """The ground truth this episode's diagnosis is graded against (for oracles and tests)."""
        assert self._truth is not None, "reset() first"
        return self._truth

    # -- reset ---------------------------------------------------------------------

    def _episode_config(self, options: dict[str, Any]) -> TroubleshootConfig:
        merged = episode_options(self.config, options, EPISODE_OPTIONS)
        return self.config if merged is None else _config(merged)

    def spec(self) -> DatasetSpec:
        """The data snapshot of this episode (the bugged one; ``.clean()`` is the source)."""
        config = self.episode
        return DatasetSpec(
            seed=config.data_seed,
            scale=config.scale,
            anchor=config.anchor or DEFAULT_ANCHOR,
            bug=config.bug,
        )

    def _open_stores(self) -> None:
        """The API's and the ETL log's stores of this build (read-only, reused across episodes)."""
        assert self.build is not None
        if self._stores_of == self.build.folder:
            return
        self._close_stores()
        databases = self.build.manifest.databases
        self._api = api.BillingApi(self.build.tree / databases["stripe_api"].path)
        self._runs = runs.EtlRunHistory(self.build.tree / databases["etl"].path)
        self._stores_of = self.build.folder

    def _close_stores(self) -> None:
        for store in (self._api, self._runs):
            if store is not None:
                store.close()
        self._api = self._runs = None
        self._stores_of = None

    def _reset(
        self, seed: int, options: dict[str, Any]
    ) -> tuple[TroubleshootObservation, dict[str, Any]]:
        self.episode = self._episode_config(options)
        spec = self.spec()
        self.sandbox = get_sandbox(self.episode.sandbox)
        self.build = self.sandbox.build(spec)
        self._snapshot = self.build.info.snapshot
        if self.workspace is not None:
            self.workspace.close(wait=False)
        self.workspace = self.build.checkout()
        self._open_stores()
        diagnosis, self._symptom, self._symptom_facts = _facts(spec)
        self._truth = Truth.from_diagnosis(diagnosis, as_of=spec.anchor)
        self._steps = []
        self._seen = set()
        self._turn = 0
        self._finished = None
        manifest = self.sandbox.manifest
        values = {
            "symptom": self._symptom,
            "today": f"{spec.anchor:%Y-%m-%d}",
            "tools": ", ".join(ACTIONS.names),
            "max_turns": str(self.config.max_turns),
            "databases": ", ".join(self.databases),
            "context_files": ", ".join(manifest.context_files),
        }
        system = _render(manifest.prompts.system, values)
        task = _render(manifest.prompts.task, values)
        text = f"{system}\n\n{task}"
        self._prompt_tokens = estimate_tokens(text)
        observation = self._observe(text, system_prompt=system, task_prompt=task)
        info = {
            "sandbox": self.episode.sandbox,
            "bug": self.episode.bug,
            "data_snapshot": self._snapshot,
            "dataset": spec.model_dump(mode="json"),
            "symptom": dict(self._symptom_facts),
            "tools": list(ACTIONS.names),
            "databases": self.databases,
            "context_files": list(manifest.context_files),
            "components_total": len(set(self.build.files.values())),
            "max_turns": self.config.max_turns,
        }
        return observation, info

    def _observe(
        self,
        text: str,
        *,
        error: str | None = None,
        done: bool = False,
        reward: float | None = None,
        result: Any = None,
        system_prompt: str | None = None,
        task_prompt: str | None = None,
    ) -> TroubleshootObservation:
        return TroubleshootObservation(
            text=text,
            error=error,
            done=done,
            reward=reward,
            sandbox=self.episode.sandbox,
            symptom=self._symptom,
            tools=list(ACTIONS.names),
            databases=self.databases if self.sandbox else [],
            turn=self._turn,
            max_turns=self.config.max_turns,
            turns_left=max(0, self.config.max_turns - self._turn),
            result=result,
            system_prompt=system_prompt,
            task_prompt=task_prompt,
        )

    # -- tools ---------------------------------------------------------------------

    def _query_db(self, action: QueryDb) -> tuple[str, Any, list[Access], bool]:
        assert self.workspace is not None and self.sandbox is not None and self._truth is not None
        databases = self.sandbox.manifest.databases
        name = action.database.strip()
        if name not in self.databases:
            where = {"mock_api": "check_api", "etl_log": "inspect_etl_log"}
            spec = databases.get(name)
            hint = (
                f"read it with {where[spec.layer]}"
                if spec is not None and spec.layer in where
                else f"databases: {', '.join(self.databases)}"
            )
            raise ToolError(f"query_db cannot query database {name!r}", hint)
        spec = databases[name]
        sql = self.workspace.sql(name, timeout_s=SQL_TIMEOUT_S, max_rows=ROWS_FETCHED)
        result = sql.query(action.sql)
        lineage = _lineage(self.build.tree) if self.build else {}
        accesses = []
        evidence = False
        for obj in sorted(result.tables):
            schema, _, table = obj.partition(".")
            accesses.append(Access("query", f"{name}:{obj}", spec.layer_of(schema)))
            derived = lineage.get(obj) or {t for t in (table_name(table),) if t}
            evidence = evidence or self._truth.table in derived
        if not result.tables and CATALOG_QUERY.search(action.sql):
            evidence = True  # listing the database's tables is orientation, like list_files
        data = {
            "database": name,
            "columns": list(result.columns),
            "rows": [[plain_value(v) for v in row] for row in result.rows[:ROWS_SHOWN]],
            "row_count": len(result.rows),
            "truncated": result.truncated,
        }
        return result.format(limit=ROWS_SHOWN), data, accesses, evidence

    def _check_api(self, action: CheckApi) -> tuple[str, Any, list[Access], bool]:
        assert self._api is not None and self._truth is not None
        response = self._api.list(
            action.resource,
            action.filters,
            limit=action.limit,
            starting_after=action.starting_after,
        )
        resource = self._api.resource(action.resource)
        evidence = self._truth.table in resource.truth_for
        access = Access("query", f"api:{response['url'].split('?')[0]}", "mock_api")
        return api.render(response), response, [access], evidence

    def _inspect_etl_log(self, action: InspectEtlLog) -> tuple[str, Any, list[Access], bool]:
        assert self._runs is not None and self._truth is not None
        found, total = self._runs.runs(
            job=action.job,
            since=action.since,
            until=action.until,
            status=action.status,
            limit=action.limit,
            offset=action.offset,
        )
        filters = {
            "job": action.job,
            "since": action.since,
            "until": action.until,
            "status": action.status,
        }
        text = runs.render(found, total, action.offset, filters)
        evidence = action.job is None or action.job == self._truth.etl_job
        data = {"total": total, "offset": action.offset, "runs": found}
        return text, data, [Access("query", "etl:runs", "etl_log")], evidence

    def _read_file(self, action: ReadFile) -> tuple[str, Any, list[Access], bool]:
        assert self.workspace is not None and self._truth is not None
        relative = self.workspace.relative(self.workspace.resolve(action.path))
        database = self.workspace.is_database(relative)
        if database is not None:
            tool = {"stripe_api": "check_api", "etl": "inspect_etl_log"}.get(
                database, f"query_db (database={database!r})"
            )
            raise ToolError(f"{relative} is a database file, not text", f"read it with {tool}")
        text, access = self.workspace.read_file(action.path)
        singular = self._truth.table.removesuffix("s")
        mentions = re.search(rf"(?i)(?<![a-z]){singular}s?(?![a-z])", text) is not None
        return text, None, [access], mentions

    def _list_files(self, action: ListFiles) -> tuple[str, Any, list[Access], bool]:
        assert self.workspace is not None
        entries, access = self.workspace.list_files(action.path)
        return "\n".join(entries) if entries else "(no files)", entries, [access], True

    def _submission(self, action: SubmitDiagnosis) -> Diagnosis:
        assert self._truth is not None
        diagnosis = Diagnosis(**action.arguments())
        for field in ("diagnosis", "table", "window_start", "source"):
            if not getattr(diagnosis, field).strip():
                raise ToolError(f"{field} is empty", "fill in every field of submit_diagnosis")
        try:
            window_days(diagnosis, self._truth.as_of)
        except ValueError as exc:
            raise ToolError(
                f"the window does not parse: {exc}", "give dates as YYYY-MM-DD"
            ) from None
        return diagnosis

    # -- steps ---------------------------------------------------------------------

    def _step(self, action: Action) -> StepResult:
        self._turn += 1
        key = json.dumps(action.model_dump(mode="json"), sort_keys=True)
        facts: dict[str, Any] = {
            "turn": self._turn,
            "tool": action.type,
            "accesses": [],
            "layers": [],
            "tables": [],
            "evidence": None,
            "repeat": key in self._seen,
            "failed": False,
        }
        self._seen.add(key)
        handlers = {
            "query_db": self._query_db,
            "check_api": self._check_api,
            "inspect_etl_log": self._inspect_etl_log,
            "read_file": self._read_file,
            "list_files": self._list_files,
        }
        error = None
        result: Any = None
        try:
            if isinstance(action, SubmitDiagnosis):
                diagnosis = self._submission(action)
                facts["tokens"] = estimate_tokens(key)
                return self._finish(facts, diagnosis=diagnosis)
            text, result, accesses, evidence = handlers[action.type](action)
            facts["accesses"] = [a.as_dict() for a in accesses]
            facts["layers"] = sorted({a.layer for a in accesses if a.layer})
            if action.type == "query_db":
                facts["tables"] = [a.path for a in accesses]
            facts["evidence"] = evidence
        except (ToolError, SqlError) as exc:
            error, text = str(exc), f"{action.type} failed: {exc.message}"
            if exc.hint:
                text += f"\nhint: {exc.hint}"
        except StackgymError as exc:  # e.g. a database that could not be opened
            error, text = str(exc), f"{action.type} failed: {exc.message}"
        if error is not None:
            facts.update(failed=True, evidence=False)
        assert self.workspace is not None
        text = self.workspace.sanitize(text)
        facts["tokens"] = estimate_tokens(text) + estimate_tokens(key)
        return self._after_turn(facts, text, error, result)

    def _after_turn(
        self, facts: dict[str, Any], text: str, error: str | None, result: Any
    ) -> StepResult:
        self._steps.append(facts)
        info = dict(facts)
        if self._turn >= self.config.max_turns:
            return self._finish(info, diagnosis=None, before=text)
        observation = self._observe(text, error=error, reward=0.0, result=result)
        return StepResult(observation, 0.0, False, False, info)

    def _finish(
        self, facts: dict[str, Any], *, diagnosis: Diagnosis | None, before: str = ""
    ) -> StepResult:
        assert self._truth is not None and self.build is not None
        if diagnosis is not None:
            self._steps.append(facts)
        graded = grade(diagnosis, self._truth) if diagnosis is not None else None
        summary = graded.as_dict() if graded is not None else None
        truncated = diagnosis is None
        metrics = episode_metrics(
            self._steps,
            grade=summary,
            components_total=len(set(self.build.files.values())),
            prompt_tokens=self._prompt_tokens,
            turns=self._turn,
            max_turns_reached=truncated,
        )
        passed = bool(graded and graded.passed)
        info = {
            **facts,
            "outcome": {"passed": passed, "metrics": metrics, "error": None},
            "grade": summary,
            "truth": self._truth.model_dump(mode="json"),
        }
        self._finished = (not truncated, truncated)
        lines = [before] if before else []
        if graded is None:
            lines.append(
                f"The turn budget ({self.config.max_turns}) is used up without a diagnosis."
            )
        else:
            met = [name for name, c in graded.criteria.items() if c.ok]
            verdict = "PASSED" if passed else "FAILED"
            lines.append(
                f"Diagnosis graded: {verdict}, {graded.met} of 4 criteria met"
                f" ({', '.join(met) or 'none'}). A pass needs 3, table and mechanism among them."
            )
        reward = 1.0 if passed else 0.0
        observation = self._observe("\n\n".join(lines), done=True, reward=reward)
        return StepResult(observation, reward, not truncated, truncated, info)

    def _invalid(self, message: str) -> StepResult:
        if self._finished is not None:
            terminated, truncated = self._finished
            observation = self._observe("the episode is over", error=message, done=True, reward=0.0)
            return StepResult(observation, 0.0, terminated, truncated, {})
        # a refused action still uses a turn, so a confused agent cannot loop forever
        self._turn += 1
        text = f"invalid action: {message}"
        facts = {
            "turn": self._turn,
            "tool": "invalid",
            "accesses": [],
            "layers": [],
            "tables": [],
            "evidence": False,
            "repeat": False,
            "failed": True,
            "tokens": estimate_tokens(text),
        }
        result = self._after_turn(facts, text, message, None)
        observation = result.observation.model_copy(update={"error": message})
        return result._replace(observation=observation)

    # -- helpers for checkers and baselines -------------------------------------------

    def example_actions(self, rng: random.Random) -> list[Action]:
        """One meaningful action per tool (a query, an API page, a log page, a context file...)."""
        assert self.sandbox is not None and self._truth is not None
        manifest = self.sandbox.manifest
        database = rng.choice(self.databases)
        start = self._truth.as_of.date() - timedelta(days=rng.randint(10, 150))
        end = start + timedelta(days=rng.choice([2, 9, 13]))
        folder = str(PurePosixPath(rng.choice(manifest.context_files)).parent)
        return [
            QueryDb(database=database, sql=rng.choice(EXAMPLE_SQL[database])),
            CheckApi(
                resource=rng.choice(list(api.api_definition().resources)),
                limit=rng.choice([1, 5]),
            ),
            InspectEtlLog(job=rng.choice([None, *JOBS]), limit=10),
            ReadFile(path=rng.choice(manifest.context_files)),
            ListFiles(path=folder),
            SubmitDiagnosis(
                diagnosis=rng.choice(EXAMPLE_MECHANISMS),
                table=rng.choice(["invoices", "users", "subscriptions"]),
                window_start=start.isoformat(),
                window_end=end.isoformat(),
                source="the nightly ETL sync",
            ),
        ]

    def close(self) -> None:
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None
        self._close_stores()
