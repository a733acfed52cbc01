"""Database builders of the troubleshooting sandboxes (``build: custom`` in their manifests).

Each is called by the sandboxes library as ``builder(dataset, out_path)`` with
the *bugged* dataset of the episode's snapshot, once per snapshot, and cached:

* :func:`write_app_db` - the app database as the sync jobs loaded it (the bug
  included), like the metrics sandboxes' app database but with the columns a
  broken load can leave NULL declared nullable.
* :func:`write_stripe_store` - the billing provider's objects from the
  *clean* snapshot (``spec.clean()``): what ``check_api`` serves.
* :func:`write_etl_store` - the sync jobs' run history (``dataset.etl_log()``):
  what ``inspect_etl_log`` reads.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from stackgym.data import Dataset, dataset_for, table_schemas
from stackgym.data.etl import JOB_CURSORS
from stackgym.sandboxes import appdb
from stackgym.sandboxes.codegen import sqlite_ddl

#: Columns the ORM declares NOT NULL but a broken load can leave NULL (the
#: ``schema_drift`` bug): the database itself does not enforce it, as often
#: happens when loaders write with raw SQL.
NULLABLE_IN_DATABASE = {"invoices": ("amount_paid",)}
#: The billing provider's objects, served by ``check_api``.
STRIPE_TABLES = ("customers", "products", "prices", "subscriptions", "invoices", "payment_intents")


def app_db_ddl() -> list[str]:
    """The app database's DDL: the generated one with :data:`NULLABLE_IN_DATABASE` relaxed."""
    statements = []
    for statement in sqlite_ddl():
        for table, columns in NULLABLE_IN_DATABASE.items():
            if statement.startswith(f"CREATE TABLE {table} ("):
                for column in columns:
                    relaxed = re.sub(rf"(\n\s+{column} \w+) NOT NULL", r"\1", statement)
                    if relaxed == statement:
                        raise RuntimeError(f"the app DDL declares no NOT NULL {table}.{column}")
                    statement = relaxed
        statements.append(statement)
    return statements


def write_app_db(dataset: Dataset, out: Path) -> None:
    """The app database of ``dataset`` (bug included), in the metrics sandboxes' layout."""
    appdb.write_app_db(dataset, out, ddl=app_db_ddl())


def _python_values(table: pa.Table, name: str) -> list[list[object]]:
    """Columns of a dataset table as SQLite values: Unix seconds, 0/1, plain text."""
    columns = []
    for column, kind in table_schemas()[name].columns.items():
        array = table[column]
        if kind == "timestamp":
            columns.append(pc.divide(array.cast(pa.int64()), 1_000_000).to_pylist())
        elif kind == "boolean":
            columns.append([None if v is None else int(v) for v in array.to_pylist()])
        elif pa.types.is_dictionary(array.type):
            columns.append(array.cast(pa.string()).to_pylist())
        else:
            columns.append(array.to_pylist())
    return columns


_SQL_TYPES = {"string": "TEXT", "integer": "INTEGER", "boolean": "INTEGER", "timestamp": "INTEGER"}


def _create(db: sqlite3.Connection, name: str, rows: list[list[object]]) -> None:
    columns = table_schemas()[name].columns
    ddl = ", ".join(f"{c} {_SQL_TYPES[k]}" for c, k in columns.items())
    db.execute(f"CREATE TABLE {name} ({ddl})")
    marks = ", ".join("?" * len(columns))
    db.executemany(f"INSERT INTO {name} VALUES ({marks})", zip(*rows, strict=True))


def write_stripe_store(dataset: Dataset, out: Path) -> None:
    """The clean billing objects of ``dataset``'s snapshot, as ``check_api`` reads them.

    Customers carry ``metadata.app_user_ids``: the app users linked to them in
    the clean data (what the product registered with the provider), also kept
    in ``customer_users`` for the ``app_user_id`` filter.
    """
    clean = dataset_for(dataset.spec.clean())
    users = clean.table("users")
    linked: dict[str, list[int]] = defaultdict(list)
    for user, customer in zip(
        users["id"].to_pylist(), users["stripe_customer_id"].to_pylist(), strict=True
    ):
        if customer is not None:
            linked[customer].append(int(user))
    db = sqlite3.connect(out)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        for name in STRIPE_TABLES:
            rows = _python_values(clean.table(name), name)
            if name == "customers":
                index = list(table_schemas()[name].columns).index("metadata")
                rows[index] = [
                    json.dumps(
                        {
                            **json.loads(meta),
                            **(
                                {"app_user_ids": ",".join(map(str, sorted(linked[cid])))}
                                if linked.get(cid)
                                else {}
                            ),
                        },
                        separators=(",", ":"),
                    )
                    for cid, meta in zip(rows[0], rows[index], strict=True)
                ]
            _create(db, name, rows)
            db.execute(f"CREATE INDEX {name}_created ON {name} (created_at, id)")
        db.execute("CREATE TABLE customer_users (customer_id TEXT, app_user_id TEXT)")
        db.executemany(
            "INSERT INTO customer_users VALUES (?, ?)",
            [(c, str(u)) for c, ids in sorted(linked.items()) for u in ids],
        )
        db.execute("CREATE INDEX customer_users_user ON customer_users (app_user_id)")
        for table, column in (
            ("invoices", "customer_id"),
            ("subscriptions", "customer_id"),
            ("payment_intents", "customer_id"),
        ):
            db.execute(f"CREATE INDEX {table}_{column} ON {table} ({column})")
        db.commit()
    finally:
        db.close()


def write_etl_store(dataset: Dataset, out: Path) -> None:
    """The sync jobs' run history of ``dataset``, one row per run (``inspect_etl_log``'s store)."""
    db = sqlite3.connect(out)
    try:
        db.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, job TEXT, target_table TEXT, "
            "started_at TEXT, finished_at TEXT, status TEXT, cursor_start TEXT, "
            "cursor_end TEXT, rows_extracted INTEGER, rows_loaded INTEGER, message TEXT)"
        )
        stamp = "%Y-%m-%d %H:%M:%S"
        db.executemany(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run.run_id,
                    run.job,
                    JOB_CURSORS[run.job][0],
                    run.started_at.strftime(stamp),
                    run.finished_at.strftime(stamp),
                    run.status,
                    run.cursor_start.strftime(stamp),
                    run.cursor_end.strftime(stamp),
                    run.rows_extracted,
                    run.rows_loaded,
                    run.message,
                )
                for run in dataset.etl_log()
            ],
        )
        db.execute("CREATE INDEX runs_job_started ON runs (job, started_at)")
        db.execute("CREATE INDEX runs_started ON runs (started_at)")
        db.commit()
    finally:
        db.close()
