"""The unified app database: app and Stripe tables in one SQLite file.

Built once per data snapshot (and DDL) into the cache and shared by every
sandbox that ships it (app-typed, app-drizzle, app-python, the realistic
warehouse). Timestamps are Unix seconds and booleans 0/1, the way Drizzle's
``integer({ mode: "timestamp" | "boolean" })`` columns store them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from stackgym.data import TABLE_NAMES, Dataset, table_schemas
from stackgym.sandboxes.codegen import sqlite_ddl
from stackgym.sandboxes.locking import built_once


def _python_columns(table: pa.Table, name: str) -> list[list[object]]:
    columns = []
    for column, kind in table_schemas()[name].columns.items():
        array = table[column]
        if kind == "timestamp":
            seconds = pc.divide(array.cast(pa.int64()), 1_000_000)
            columns.append(seconds.to_pylist())
        elif kind == "boolean":
            columns.append([None if v is None else int(v) for v in array.to_pylist()])
        elif pa.types.is_dictionary(array.type):
            columns.append(array.cast(pa.string()).to_pylist())
        else:
            columns.append(array.to_pylist())
    return columns


def write_app_db(dataset: Dataset, out: Path, ddl: list[str] | None = None) -> None:
    """Write the eleven tables of ``dataset`` into a new SQLite file ``out``.

    ``ddl`` replaces the generated DDL (:func:`codegen.sqlite_ddl`) for
    databases built by other environments, e.g. with a constraint relaxed.
    """
    statements = sqlite_ddl() if ddl is None else ddl
    tables = [s for s in statements if s.startswith("CREATE TABLE")]
    indexes = [s for s in statements if s.startswith("CREATE INDEX")]
    db = sqlite3.connect(out)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        for statement in tables:
            db.execute(statement)
        for name in TABLE_NAMES:
            columns = _python_columns(dataset.table(name), name)
            marks = ", ".join("?" * len(columns))
            db.executemany(f"INSERT INTO {name} VALUES ({marks})", zip(*columns, strict=True))
        for statement in indexes:
            db.execute(statement)
        db.execute("ANALYZE")
        db.commit()
    finally:
        db.close()


def app_db_key() -> str:
    """What, besides the snapshot, the app database depends on."""
    return hashlib.sha256("\n".join(sqlite_ddl()).encode()).hexdigest()[:16]


def app_db_for(dataset: Dataset, cache: Path) -> Path:
    """The app database of ``dataset``, built once into ``cache``."""
    folder = cache / "appdb" / f"{dataset.snapshot[:16]}-{app_db_key()}"
    return built_once(folder, "app.db", lambda staging: write_app_db(dataset, staging / "app.db"))
