"""The one SQL sandbox refuses hostile SQL and stays usable afterwards."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest

from stackgym.sandboxes.sql import SqlError, SqlSandbox


@pytest.fixture
def duck(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE raw.app_users AS SELECT range AS id, "
        "strftime(TIMESTAMP '2025-01-01' + to_days(range::INT), '%Y-%m-%dT%H:%M:%SZ') AS created_at "
        "FROM range(100)"
    )
    con.execute(
        "CREATE VIEW staging.stg_app_users AS SELECT id AS user_id, created_at AS user_created_at "
        "FROM raw.app_users"
    )
    con.close()
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    sandbox = SqlSandbox(path, "duckdb", timeout_s=1.0, max_rows=10, search_path=["staging", "raw"])
    yield sandbox
    sandbox.close()


@pytest.fixture
def lite(tmp_path):
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    con.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"u{i}@x") for i in range(50)])
    con.commit()
    con.close()
    sandbox = SqlSandbox(path, "sqlite", timeout_s=1.0, max_rows=10)
    yield sandbox
    sandbox.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{tmp}/secret.csv')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "COPY (SELECT 1) TO '{tmp}/out.csv'",
        "EXPORT DATABASE '{tmp}/dump'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA enable_profiling",
        "CREATE TABLE raw.evil AS SELECT 1",
        "DROP VIEW staging.stg_app_users",
        "INSERT INTO raw.app_users VALUES (1, 'x')",
        "SELECT 1; DROP VIEW staging.stg_app_users",
        "CALL pragma_version()",
    ],
)
def test_duckdb_refuses_host_access_and_writes(duck, tmp_path, sql):
    with pytest.raises(SqlError) as caught:
        duck.query(sql.format(tmp=tmp_path))
    assert caught.value.kind in ("refused", "syntax")
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "dump").exists()
    # the sandbox is still usable and untouched afterwards
    assert duck.query("SELECT count(*) FROM stg_app_users").rows == [(100,)]


def test_duckdb_statement_timeout_interrupts_and_recovers(duck):
    with pytest.raises(SqlError) as caught:
        duck.query("SELECT count(*) FROM range(10000000000) a, range(1000) b")
    assert caught.value.kind == "timeout"
    assert "longer than 1 s" in caught.value.message
    assert duck.query("SELECT 41 + 1").rows == [(42,)]


def test_duckdb_row_cap_truncates_results(duck):
    result = duck.query("SELECT * FROM raw.app_users ORDER BY id")
    assert len(result.rows) == 10
    assert result.truncated
    assert "row cap" in result.format()


def test_duckdb_reports_the_string_timestamp_trap_verbatim(duck):
    with pytest.raises(SqlError) as caught:
        duck.query("SELECT max(user_created_at) - INTERVAL 30 DAY FROM stg_app_users")
    assert caught.value.kind == "type"
    assert "No function matches the given name and argument types '-(VARCHAR, INTERVAL)'" in (
        caught.value.message
    )


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT nope FROM stg_app_users", "schema"),
        ("SELECT * FROM stg_users", "schema"),
        ("SELEC 1", "syntax"),
        ("", "refused"),
    ],
)
def test_duckdb_classifies_errors(duck, sql, kind):
    with pytest.raises(SqlError) as caught:
        duck.query(sql)
    assert caught.value.kind == kind


def test_duckdb_reports_the_objects_a_query_reads(duck):
    result = duck.query(
        "WITH u AS (SELECT * FROM stg_app_users) SELECT count(*) FROM u JOIN raw.app_users r "
        "ON r.id = u.user_id"
    )
    assert result.tables == {"staging.stg_app_users", "raw.app_users"}


def test_duckdb_explain_binds_without_running(duck):
    assert "PROJECTION" in duck.explain("SELECT user_id FROM stg_app_users").upper()
    with pytest.raises(SqlError) as caught:
        duck.explain("SELECT missing FROM stg_app_users")
    assert caught.value.kind == "schema"


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{tmp}/x.db' AS x",
        "PRAGMA writable_schema = ON",
        "DELETE FROM users",
        "UPDATE users SET email = 'x'",
        "CREATE TABLE t (a)",
        "SELECT load_extension('/tmp/evil.so')",
        "VACUUM INTO '{tmp}/copy.db'",
        "SELECT 1; DELETE FROM users",
    ],
)
def test_sqlite_refuses_writes_attach_and_extensions(lite, tmp_path, sql):
    with pytest.raises(SqlError):
        lite.query(sql.format(tmp=tmp_path))
    assert not (tmp_path / "x.db").exists()
    assert not (tmp_path / "copy.db").exists()
    assert lite.query("SELECT count(*) FROM users").rows == [(50,)]


def test_sqlite_allows_reading_the_schema(lite):
    rows = lite.query("PRAGMA table_info(users)").rows
    assert [r[1] for r in rows] == ["id", "email"]


def test_sqlite_timeout_interrupts_runaway_queries(lite):
    with pytest.raises(SqlError) as caught:
        lite.query(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
        )
    assert caught.value.kind == "timeout"
    assert lite.query("SELECT count(*) FROM users").rows == [(50,)]


def test_sqlite_reports_tables_read_and_caps_rows(lite):
    result = lite.query("SELECT * FROM users")
    assert result.truncated and len(result.rows) == 10
    assert result.tables == {"main.users"}
