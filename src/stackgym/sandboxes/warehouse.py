"""The DuckDB warehouse of the dbt sandboxes, built by real dbt.

Two steps, each cached by what it depends on:

1. **Raw load** (per data snapshot): the eleven tables are replicated into
   schema ``raw`` as ``app_<table>`` / ``stripe_<table>``, with every
   timestamp as ISO-8601 *text* (``2025-12-01T14:22:05Z``), the way
   replication tools often leave them. That is the trap behind DuckDB's
   ``No function matches ... '-(VARCHAR, INTERVAL)'``.
2. **dbt run** (per snapshot and *recipe*): the sandbox's dbt project runs on
   a copy of the raw file with ``dbt-core`` + ``dbt-duckdb`` and builds the
   staging views and mart tables. The recipe is the hash of the files that
   shape the database (``dbt_project.yml``, model SQL, macros), not of the
   documentation, so ``warehouse-dbt`` and ``warehouse-dbt-documented`` share
   one database, and ``-cast``, ``-fair`` and ``-realistic`` share another.

dbt runs offline in a subprocess: no anonymous usage statistics, no version
check, no packages. All pending recipes of a snapshot run in one process so
dbt is imported once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

from stackgym.core.errors import StackgymError
from stackgym.data import TABLE_NAMES, Dataset, table_schemas
from stackgym.sandboxes.codegen import mart_columns, raw_table, staging_model
from stackgym.sandboxes.locking import (
    COMPLETE,
    built_once,
    file_locks,
    is_complete,
    lock_path,
    publish,
)

RAW_SCHEMA = "raw"
TIMESTAMP_TEXT = "%Y-%m-%dT%H:%M:%SZ"
#: The dbt schema names the sandboxes document (a build-only macro keeps them exact).
SCHEMA_MACRO = """{% macro generate_schema_name(custom_schema_name, node) -%}
{{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
"""
DBT_TIMEOUT_S = 600


class BuildError(StackgymError):
    """A sandbox or warehouse build failed (dbt error, invalid project, broken docs)."""


def load_raw(dataset: Dataset, out: Path) -> None:
    """Replicate every table of ``dataset`` into schema ``raw`` of a new DuckDB file."""
    con = duckdb.connect(str(out))
    try:
        con.execute(f"CREATE SCHEMA {RAW_SCHEMA}")
        for name in TABLE_NAMES:
            con.register("source_table", dataset.table(name))
            columns = []
            for column, kind in table_schemas()[name].columns.items():
                if kind == "timestamp":
                    columns.append(f"strftime({column}, '{TIMESTAMP_TEXT}') AS {column}")
                elif column == "model":
                    columns.append(f"CAST({column} AS VARCHAR) AS {column}")
                else:
                    columns.append(column)
            con.execute(
                f"CREATE TABLE {RAW_SCHEMA}.{raw_table(name)} AS "
                f"SELECT {', '.join(columns)} FROM source_table"
            )
            con.unregister("source_table")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def raw_warehouse_for(dataset: Dataset, cache: Path) -> Path:
    """The raw-only DuckDB file of ``dataset``, built once."""
    folder = cache / "warehouses" / f"{dataset.snapshot[:16]}-raw"
    return built_once(
        folder, "base.duckdb", lambda staging: load_raw(dataset, staging / "base.duckdb")
    )


def _project_files(project: Path) -> list[Path]:
    """The files of a dbt project that shape the database it builds."""
    files = [project / "dbt_project.yml"]
    for folder in ("models", "macros"):
        files += sorted((project / folder).rglob("*.sql")) if (project / folder).is_dir() else []
    return files


def recipe_hash(project: Path) -> str:
    """Hash of what a dbt project builds (SQL and config; documentation excluded)."""
    if not (project / "dbt_project.yml").is_file():
        raise BuildError(f"{project} has no dbt_project.yml")
    digest = hashlib.sha256(b"stackgym.warehouse/1\n")
    digest.update(SCHEMA_MACRO.encode())
    for path in _project_files(project):
        digest.update(f"\n{path.relative_to(project).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _warehouse_folder(cache: Path, dataset: Dataset, recipe: str) -> Path:
    return cache / "warehouses" / f"{dataset.snapshot[:16]}-{recipe[:16]}"


def _stage_project(project: Path, work: Path, database: Path) -> None:
    """Copy the project into ``work`` with a profile and the schema-name macro."""
    for path in _project_files(project):
        target = work / path.relative_to(project)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for path in (project / "models").rglob("*.yml"):
        target = work / path.relative_to(project)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (work / "macros").mkdir(exist_ok=True)
    (work / "macros" / "_stackgym_schema_names.sql").write_text(SCHEMA_MACRO)
    config = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    profile = config.get("profile")
    if not isinstance(profile, str):
        raise BuildError(f"{project / 'dbt_project.yml'} names no profile")
    (work / "profiles.yml").write_text(
        yaml.safe_dump(
            {
                profile: {
                    "target": "build",
                    "outputs": {
                        "build": {
                            "type": "duckdb",
                            "path": str(database),
                            "schema": "main",
                            "threads": 2,
                        }
                    },
                }
            }
        )
    )


def dbt_environment() -> dict[str, str]:
    """The environment dbt runs in: offline, no telemetry, no version check."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_VERSION_CHECK="false",
        DBT_USE_COLORS="false",
        DBT_STATIC_PARSER="true",
        DO_NOT_TRACK="1",
    )
    return env


def _run_dbt(works: list[Path]) -> None:
    """Run ``dbt run`` in each staged project, in one subprocess (one dbt import)."""
    command = [sys.executable, "-m", "stackgym.sandboxes._dbt", *map(str, works)]
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=dbt_environment(),
            timeout=DBT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"dbt did not finish within {DBT_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise BuildError(
            f"dbt run failed (exit {proc.returncode}):\n{tail}",
            "fix the dbt project of the sandbox; see the dbt output above",
        )


def _check_warehouse(database: Path) -> None:
    con = duckdb.connect(str(database))
    try:
        con.execute("CHECKPOINT")
        rows = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    columns: dict[str, list[str]] = {}
    for schema, table, column in rows:
        columns.setdefault(f"{schema}.{table}", []).append(column)
    missing = [f"staging.{staging_model(t)}" for t in TABLE_NAMES]
    missing = [m for m in missing if m not in columns]
    for mart, expected in mart_columns().items():
        actual = columns.get(f"marts.{mart}")
        if actual is None:
            missing.append(f"marts.{mart}")
        elif actual != expected:
            raise BuildError(
                f"mart {mart} has columns {actual}, but docs.yaml documents {expected}",
                "update catalog/_shared/dbt/docs.yaml or the mart's SQL",
            )
    if missing:
        raise BuildError(f"the dbt run did not build {', '.join(missing)}")


def warehouses_for(projects: list[Path], dataset: Dataset, cache: Path) -> dict[Path, Path]:
    """The warehouse DuckDB file of each dbt project for ``dataset``.

    Builds every missing recipe in one dbt process, under the recipes' locks.
    """
    recipes = {project: recipe_hash(project) for project in projects}
    folders = {r: _warehouse_folder(cache, dataset, r) for r in set(recipes.values())}
    pending = {r: f for r, f in folders.items() if not is_complete(f)}
    if pending:
        raw = raw_warehouse_for(dataset, cache)
        locks = [lock_path(f) for f in pending.values()]
        locks += [lock_path(_recipe_dir(cache, r)) for r in pending]
        with file_locks(locks):
            todo = {r: f for r, f in pending.items() if not is_complete(f)}
            if todo:
                _build_recipes(todo, recipes, raw, cache)
    return {project: folders[recipe] / "warehouse.duckdb" for project, recipe in recipes.items()}


def _recipe_dir(cache: Path, recipe: str) -> Path:
    """Where a recipe's dbt project lives between builds (so dbt can parse it partially)."""
    return cache / "dbt-projects" / recipe[:16]


def _build_recipes(todo: dict[str, Path], recipes: dict[Path, str], raw: Path, cache: Path) -> None:
    """Run dbt for each recipe in ``todo`` (caller holds the locks) and publish the results.

    Each recipe's project is staged once into a fixed folder of the cache and
    reused for every snapshot: the database path in its profile never
    changes, so dbt's partial parsing skips re-parsing the project (about
    three times faster than a full parse).
    """
    project_of = {r: p for p, r in recipes.items()}
    works = {}
    for recipe in todo:
        work = _recipe_dir(cache, recipe)
        database = work / "warehouse.duckdb"
        if not is_complete(work):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            _stage_project(project_of[recipe], work / "project", database)
            (work / COMPLETE).write_text("staged\n")
        shutil.copyfile(raw, database)
        works[recipe] = work
    _run_dbt([w / "project" for w in works.values()])
    for recipe, folder in todo.items():
        database = works[recipe] / "warehouse.duckdb"
        _check_warehouse(database)

        def place(staging: Path, source: Path = database) -> None:
            shutil.move(source, staging / "warehouse.duckdb")

        publish(folder, place)
