"""Sandbox manifests: what a sandbox holds, where each file belongs, how answers run.

A sandbox is a folder in a catalog with a ``sandbox.yaml`` manifest and
optional ``files/`` (copied into the sandbox tree), ``oracle/`` and
``naive/`` folders. A manifest may ``extends`` another: dicts merge key by
key (the child wins), lists are replaced, except ``surface`` rules, which are
concatenated with the child's first (first match wins), and the file
overlays, which stack parent first.

The **surface map** tags every file and database of a built sandbox with its
layer. Loading a build refuses a tree with an untagged file, so the layer
metrics an experiment reports can never silently miss a file.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackgym.core.errors import ConfigError

#: Every layer a file or database object can belong to (SPEC section 3).
Layer = Literal[
    "app_code",
    "orm_schema",
    "app_db",
    "warehouse_raw",
    "dbt_staging",
    "dbt_marts",
    "dbt_docs",
    "mock_api",
    "etl_log",
]
LAYERS: tuple[str, ...] = Layer.__args__  # type: ignore[attr-defined]
#: The application side of a stack: its code, its ORM/type schema, its database.
APP_LAYERS: frozenset[str] = frozenset({"app_code", "orm_schema", "app_db"})
#: The warehouse side: replicated raw tables and the dbt project on top.
WAREHOUSE_LAYERS: frozenset[str] = frozenset(
    {"warehouse_raw", "dbt_staging", "dbt_marts", "dbt_docs"}
)

Runtime = Literal["sql", "typescript", "python"]
FailureKind = Literal["wrong_value", "runtime_error", "schema_error"]

_Strict = ConfigDict(extra="forbid", frozen=True)
RelPath = Annotated[str, Field(min_length=1, pattern=r"^[^/\\][^\\]*$")]


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``**`` spans folders, ``*`` and ``?`` stay inside one."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        index += 1
    return re.compile("".join(out) + r"\Z")


class SurfaceRule(BaseModel):
    """Files matching ``path`` (a glob relative to the sandbox root) belong to ``layer``."""

    model_config = _Strict

    path: RelPath
    layer: Layer

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return glob_to_regex(self.path)


class Overlay(BaseModel):
    """Copy the catalog folder ``source`` into the sandbox tree at ``to``."""

    model_config = _Strict

    source: RelPath
    to: str = "."


class DatabaseSpec(BaseModel):
    """A database file in the sandbox tree and how it is built.

    ``build: dbt`` loads the raw tables into a DuckDB file and runs the dbt
    project at ``project`` on it; ``build: app_sqlite`` writes the unified
    app + Stripe SQLite database; ``build: custom`` calls ``builder``
    (``"package.module:function"``) as ``function(dataset, out_path)``, for
    databases other environments need (a mock API's store, a bugged copy).
    ``schemas`` tags each DuckDB schema with a layer (queries are attributed
    to the layers of the objects they read).
    """

    model_config = _Strict

    engine: Literal["duckdb", "sqlite"]
    path: RelPath
    build: Literal["dbt", "app_sqlite", "custom"]
    layer: Layer
    project: str = "."
    builder: str | None = None
    schemas: dict[str, Layer] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _engine_matches_build(self) -> DatabaseSpec:
        if self.build == "custom":
            if not self.builder or ":" not in self.builder:
                raise ValueError("build 'custom' needs builder: 'package.module:function'")
            return self
        expected = {"dbt": "duckdb", "app_sqlite": "sqlite"}[self.build]
        if self.engine != expected:
            raise ValueError(f"build {self.build!r} makes a {expected} database, not {self.engine}")
        return self

    def layer_of(self, schema: str | None) -> str:
        """The layer of an object in ``schema`` (the file's layer when unknown)."""
        return self.schemas.get(schema or "", self.layer)


class Provider(BaseModel):
    """What a TypeScript/Python answer is called with: ``export(database path)``."""

    model_config = _Strict

    module: RelPath
    export: str


class AnswerSpec(BaseModel):
    """Where the agent writes its answer and how it is executed.

    ``path`` may contain ``{task}``. SQL answers run against ``database``;
    TypeScript and Python answers export ``entry``, which is called with what
    ``provider`` returns for ``database`` (e.g. a Drizzle client, or all
    tables loaded into typed arrays).
    """

    model_config = _Strict

    path: RelPath
    runtime: Runtime
    database: str
    entry: str = "computeMetric"
    provider: Provider | None = None
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0

    def path_for(self, task: str) -> str:
        return self.path.format(task=task)

    @model_validator(mode="after")
    def _provider_for_code(self) -> AnswerSpec:
        if self.runtime != "sql" and self.provider is None:
            raise ValueError(f"a {self.runtime} answer needs a provider (module and export)")
        return self


class Prompts(BaseModel):
    """The system prompt and the task prompt template.

    The task template may use ``{task}``, ``{title}``, ``{definition}``,
    ``{unit}``, ``{decimals}``, ``{answer_path}``, ``{tools}`` and
    ``{context_files}``.
    """

    model_config = _Strict

    system: str
    task: str


class NaiveAnswer(BaseModel):
    """A plausible but wrong answer, kept to show the grader discriminates."""

    model_config = _Strict

    file: RelPath
    task: str
    mistake: str
    fails_with: FailureKind
    #: The heuristic baseline writes this one for its task.
    heuristic: bool = False


class DbtProjectOptions(BaseModel):
    """Render ``sources.yml``, the staging models and ``schema.yml`` of a dbt project."""

    model_config = _Strict

    dir: str = "."
    cast_timestamps: bool = False
    documented: bool = False


class CodeOptions(BaseModel):
    """Generate one source file (a Drizzle schema, TS types, loaders…) at ``to``."""

    model_config = _Strict

    to: RelPath
    types_module: str = "./types"


class Generators(BaseModel):
    """Files generated from ``tables.yaml`` so no table layout is written twice."""

    model_config = _Strict

    dbt_project: DbtProjectOptions | None = None
    drizzle_schema: CodeOptions | None = None
    ts_types: CodeOptions | None = None
    ts_loaders: CodeOptions | None = None
    python_models: CodeOptions | None = None
    python_loaders: CodeOptions | None = None


class SandboxManifest(BaseModel):
    """``sandbox.yaml`` after ``extends`` is resolved."""

    model_config = _Strict

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    name: str
    description: str
    family: Literal["app", "warehouse"]
    extends: str | None = None
    overlays: list[Overlay] = Field(default_factory=list)
    generate: Generators = Field(default_factory=Generators)
    databases: dict[str, DatabaseSpec] = Field(default_factory=dict)
    surface: list[SurfaceRule]
    context_files: list[RelPath]
    #: Where answers go and how they run; None for sandboxes of environments
    #: that grade through a tool call instead of an answer file (troubleshoot).
    answer: AnswerSpec | None = None
    prompts: Prompts
    #: The oracle answer file per task (``oracle/{task}.sql``); None without ``answer``.
    oracle: str | None = None
    naive: list[NaiveAnswer] = Field(default_factory=list)

    @field_validator("context_files")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("context_files lists a file twice")
        return value

    @model_validator(mode="after")
    def _references(self) -> SandboxManifest:
        if self.answer is None:
            if self.oracle is not None or self.naive:
                raise ValueError("oracle and naive answers need an `answer` spec")
            return self
        if self.answer.database not in self.databases:
            raise ValueError(
                f"answer.database {self.answer.database!r} is not one of the databases "
                f"({', '.join(self.databases) or 'none'})"
            )
        if self.oracle is None or "{task}" not in self.oracle:
            raise ValueError("oracle must name a file per task, e.g. 'oracle/{task}.sql'")
        return self

    def layer_of(self, path: str) -> str | None:
        """The layer of the file at ``path`` (relative, POSIX), or None when untagged."""
        for database in self.databases.values():
            if database.path == path:
                return database.layer
        for rule in self.surface:
            if rule.regex.match(path):
                return rule.layer
        return None

    def require_answer(self) -> AnswerSpec:
        """The answer spec, or a :class:`ConfigError` for a sandbox that takes no answer file."""
        if self.answer is None:
            raise ConfigError(
                f"sandbox {self.id!r} takes no answer file (its environment grades a tool call)",
                "use a sandbox with an `answer` section, e.g. one of the metrics environment's",
            )
        return self.answer

    def answer_path(self, task: str) -> str:
        return self.require_answer().path_for(task)


def merge_manifests(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Merge a child manifest onto its parent (see the module docstring)."""
    merged = dict(parent)
    for key, value in child.items():
        if key == "surface":
            merged[key] = list(value) + list(parent.get(key, []))
        elif key == "overlays":
            merged[key] = list(parent.get(key, [])) + list(value)
        elif isinstance(value, dict) and isinstance(parent.get(key), dict):
            merged[key] = merge_manifests(parent[key], value)
        else:
            merged[key] = value
    return merged
