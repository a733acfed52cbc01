"""The one SQL sandbox: untrusted SQL against a DuckDB or SQLite database file.

Every query an agent sends (``run_sql``, ``query_db``) and every SQL answer
that is graded goes through :class:`SqlSandbox`. It guarantees:

* **No host access.** DuckDB runs with ``enable_external_access=false`` and
  its configuration locked, so ``read_csv('/etc/passwd')``, ``ATTACH``,
  ``COPY … TO``, ``EXPORT``, ``INSTALL`` and ``LOAD`` fail with a permission
  error, and no ``SET`` can undo that. SQLite opens the file through a
  read-only URI and an authorizer refuses ``ATTACH``, ``PRAGMA`` writes and
  every write; extension loading stays disabled.
* **One statement, of an allowed kind** (``SELECT`` by default; ``EXPLAIN``
  where asked). Anything else is refused before it runs.
* **A statement timeout** (DuckDB: ``interrupt()`` from a timer; SQLite: a
  progress handler) and a **row cap** on what comes back.
* **Read-only** where asked (the default): the file is opened read-only.

Errors come back as :class:`SqlError` with the database's message verbatim
and a ``kind`` (``syntax``, ``schema``, ``type``, ``timeout``, ``refused``,
``runtime``) that graders and failure taxonomies use.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from stackgym.core.errors import StackgymError

SqlErrorKind = Literal["syntax", "schema", "type", "timeout", "refused", "runtime"]
Engine = Literal["duckdb", "sqlite"]

#: Statement kinds an agent may run; answers may only SELECT.
DEFAULT_ALLOWED = ("select",)
MAX_SQL_CHARS = 100_000


class SqlError(StackgymError):
    """A query that was refused or failed; ``message`` is the database's own text."""

    def __init__(self, message: str, kind: SqlErrorKind, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.kind = kind


@dataclass
class QueryResult:
    """Rows of one query, at most ``max_rows`` of them."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    seconds: float
    #: ``schema.table`` of every database object the query names.
    tables: set[str] = field(default_factory=set)

    def format(self, limit: int = 50, width: int = 40) -> str:
        """A plain-text table of the first ``limit`` rows, for an agent to read."""
        shown = self.rows[:limit]
        cells = [[_cell(v, width) for v in row] for row in shown]
        widths = [
            max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)
        ]
        lines = [
            " | ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)),
            "-+-".join("-" * w for w in widths),
        ]
        lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        more = len(self.rows) - len(shown)
        if self.truncated:
            lines.append(f"({len(self.rows)}+ rows; showing {len(shown)}; the row cap was hit)")
        elif more:
            lines.append(f"({len(self.rows)} rows; showing the first {len(shown)})")
        else:
            lines.append(f"({len(self.rows)} row{'s' if len(self.rows) != 1 else ''})")
        return "\n".join(lines)


def _cell(value: Any, width: int) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def plain_value(value: Any) -> Any:
    """A database value as plain JSON-able Python (Decimal -> float, times -> ISO)."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _duckdb_kind(exc: Exception) -> SqlErrorKind:
    text = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        return "timeout"
    if isinstance(exc, duckdb.PermissionException):
        return "refused"
    if isinstance(exc, duckdb.ParserException):
        return "syntax"
    if isinstance(exc, duckdb.CatalogException):
        return "schema"
    if isinstance(exc, duckdb.BinderException):
        if "not found in FROM clause" in text or "does not have a column" in text:
            return "schema"
        if "No function matches" in text or "Could not choose a best candidate" in text:
            return "type"
        if "cannot be referenced" in text or "Referenced column" in text:
            return "schema"
        return "type"
    if isinstance(exc, (duckdb.ConversionException, duckdb.TypeMismatchException)):
        return "type"
    if isinstance(exc, duckdb.InvalidInputException) and "read-only" in text:
        return "refused"
    return "runtime"


def _sqlite_kind(exc: Exception) -> SqlErrorKind:
    text = str(exc).lower()
    if "interrupted" in text:
        return "timeout"
    if "not authorized" in text or "readonly" in text or "read-only" in text:
        return "refused"
    if "no such table" in text or "no such column" in text or "ambiguous column" in text:
        return "schema"
    if "syntax error" in text or "incomplete input" in text or "unrecognized token" in text:
        return "syntax"
    if "no such function" in text or "wrong number of arguments" in text:
        return "type"
    return "runtime"


def _base_tables(tree: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(tree, dict):
        if tree.get("type") == "BASE_TABLE" and "table_name" in tree:
            out.append((tree.get("schema_name") or "", tree["table_name"]))
        for value in tree.values():
            _base_tables(value, out)
    elif isinstance(tree, list):
        for value in tree:
            _base_tables(value, out)


# SQLite authorizer action codes that only read (everything else is refused).
_SQLITE_READ_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
_SQLITE_SAFE_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "foreign_key_list"}


class SqlSandbox:
    """Run untrusted SQL against one database file, safely (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        engine: Engine = "duckdb",
        *,
        read_only: bool = True,
        timeout_s: float = 10.0,
        max_rows: int = 1_000,
        memory_limit: str = "1GB",
        threads: int = 2,
        search_path: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.engine = engine
        self.read_only = read_only
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.search_path = tuple(search_path)
        self._lock = threading.Lock()
        self._running = 0
        self._sqlite_reads: set[str] = set()
        self._deadline = 0.0
        if not self.path.is_file():
            raise StackgymError(f"database file {self.path} does not exist")
        if engine == "duckdb":
            self._duck = duckdb.connect(
                str(self.path),
                read_only=read_only,
                config={
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "allow_community_extensions": False,
                    "memory_limit": memory_limit,
                    "threads": threads,
                    "lock_configuration": True,
                },
            )
            if self.search_path:
                # a session setting: allowed after the lock, and agents cannot SET it
                self._duck.execute(f"SET search_path = '{','.join(self.search_path)}'")
            self._objects = self._duckdb_objects()
        elif engine == "sqlite":
            mode = "ro" if read_only else "rw"
            self._lite = sqlite3.connect(
                f"file:{self.path}?mode={mode}", uri=True, check_same_thread=False
            )
            self._lite.execute("PRAGMA query_only = ON" if read_only else "PRAGMA query_only = OFF")
            self._lite.set_authorizer(self._authorize)
            self._lite.set_progress_handler(self._progress, 10_000)
            self._objects = self._sqlite_objects()
        else:
            raise StackgymError(f"unknown SQL engine {engine!r}", "use 'duckdb' or 'sqlite'")

    # -- catalog ------------------------------------------------------------

    def _duckdb_objects(self) -> dict[str, list[str]]:
        rows = self._duck.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY 1, 2"
        ).fetchall()
        objects: dict[str, list[str]] = {}
        for schema, name in rows:
            objects.setdefault(name.lower(), []).append(schema)
        return objects

    def _sqlite_objects(self) -> dict[str, list[str]]:
        rows = self._lite.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
        return {name.lower(): ["main"] for (name,) in rows}

    def tables(self) -> list[str]:
        """Every table and view as ``schema.name``."""
        return sorted(f"{s}.{n}" for n, schemas in self._objects.items() for s in schemas)

    def qualify(self, schema: str, name: str) -> str | None:
        """``schema.name`` of an object as a query names it, or None if no such object."""
        schemas = self._objects.get(name.lower())
        if not schemas:
            return None
        if schema:
            return f"{schema}.{name}" if schema in schemas else None
        for preferred in (*self.search_path, "main"):
            if preferred in schemas:
                return f"{preferred}.{name}"
        return f"{schemas[0]}.{name}"

    # -- guards -------------------------------------------------------------

    def _authorize(self, action: int, arg1: Any, arg2: Any, dbname: Any, source: Any) -> int:
        if action == sqlite3.SQLITE_READ:
            self._sqlite_reads.add(str(arg1).lower())
            return sqlite3.SQLITE_OK
        if action in _SQLITE_READ_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() == "load_extension":
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and str(arg1).lower() in _SQLITE_SAFE_PRAGMAS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        return 1 if self._deadline and time.monotonic() > self._deadline else 0

    def _check_statement(self, sql: str, allowed: Sequence[str]) -> None:
        if not isinstance(sql, str) or not sql.strip():
            raise SqlError("the query is empty", "refused", "send one SELECT statement")
        if len(sql) > MAX_SQL_CHARS:
            raise SqlError(
                f"the query is {len(sql):,} characters long; the limit is {MAX_SQL_CHARS:,}",
                "refused",
            )
        if self.engine != "duckdb":
            head = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
            kinds = {"select": ("select", "with", "values"), "explain": ("explain",)}
            starts = {word for kind in allowed for word in kinds.get(kind, ())}
            if head not in starts and head != "pragma":
                raise SqlError(
                    f"only {' / '.join(k.upper() for k in allowed)} statements may run here, "
                    f"not {head.upper() or 'this'}",
                    "refused",
                )
            return
        try:
            statements = self._duck.extract_statements(sql)
        except duckdb.Error as exc:
            raise SqlError(str(exc), _duckdb_kind(exc)) from None
        if len(statements) != 1:
            raise SqlError(
                f"send exactly one SQL statement at a time (got {len(statements)})",
                "refused" if statements else "syntax",
            )
        kind = statements[0].type.name.lower()
        if kind not in allowed:
            raise SqlError(
                f"{kind.upper()} statements are not allowed here; only "
                f"{' / '.join(k.upper() for k in allowed)}",
                "refused",
                "the database is read-only and sandboxed: query it with SELECT",
            )

    def referenced(self, sql: str) -> set[str]:
        """``schema.name`` of each existing object ``sql`` names (parsed, not executed)."""
        if self.engine != "duckdb":
            return set()
        try:
            text = self._duck.execute("SELECT json_serialize_sql($1)", [sql]).fetchone()[0]
            tree = json.loads(text)
        except (duckdb.Error, ValueError, TypeError):
            return set()
        found: list[tuple[str, str]] = []
        _base_tables(tree, found)
        return {q for q in (self.qualify(s, n) for s, n in found) if q}

    # -- running ------------------------------------------------------------

    def query(self, sql: str, *, allowed: Sequence[str] = DEFAULT_ALLOWED) -> QueryResult:
        """Run one statement and return at most ``max_rows`` rows, or raise :class:`SqlError`."""
        sql = sql.strip().rstrip(";").strip() if isinstance(sql, str) else sql
        with self._lock:
            self._check_statement(sql, allowed)
            started = time.perf_counter()
            if self.engine == "duckdb":
                result = self._query_duckdb(sql)
                result.tables = self.referenced(sql)
            else:
                result = self._query_sqlite(sql)
            result.seconds = time.perf_counter() - started
            return result

    def _query_duckdb(self, sql: str) -> QueryResult:
        token = self._running = self._running + 1

        def interrupt() -> None:
            if self._running == token:
                self._duck.interrupt()

        timer = threading.Timer(self.timeout_s, interrupt)
        timer.daemon = True
        timer.start()
        try:
            cursor = self._duck.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(self.max_rows + 1)
        except duckdb.Error as exc:
            kind = _duckdb_kind(exc)
            if kind == "timeout":
                raise SqlError(
                    f"the query ran longer than {self.timeout_s:g} s and was stopped",
                    "timeout",
                    "filter or aggregate earlier, or avoid cross joins",
                ) from None
            raise SqlError(str(exc), kind) from None
        finally:
            self._running += 1  # a late timer now matches no query
            timer.cancel()
        return QueryResult(columns, rows[: self.max_rows], len(rows) > self.max_rows, 0.0)

    def _query_sqlite(self, sql: str) -> QueryResult:
        self._sqlite_reads = set()
        self._deadline = time.monotonic() + self.timeout_s
        try:
            cursor = self._lite.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(self.max_rows + 1)
        except sqlite3.Error as exc:
            kind = _sqlite_kind(exc)
            if kind == "timeout":
                raise SqlError(
                    f"the query ran longer than {self.timeout_s:g} s and was stopped",
                    "timeout",
                    "filter or aggregate earlier, or avoid cross joins",
                ) from None
            raise SqlError(str(exc), kind) from None
        except (ValueError, OverflowError) as exc:
            raise SqlError(str(exc), "runtime") from None
        finally:
            self._deadline = 0.0
        tables = {f"main.{t}" for t in self._sqlite_reads if t in self._objects}
        return QueryResult(columns, rows[: self.max_rows], len(rows) > self.max_rows, 0.0, tables)

    def explain(self, sql: str) -> str:
        """The query plan of ``sql`` (binds it: catches unknown tables, columns, types)."""
        sql = sql.strip().rstrip(";").strip()
        self._check_statement(sql, DEFAULT_ALLOWED)
        result = self.query(f"EXPLAIN {sql}", allowed=("explain", "select"))
        return "\n".join(str(r[-1]) for r in result.rows)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.engine == "duckdb":
            self._duck.close()
        else:
            self._lite.close()

    def __enter__(self) -> SqlSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
