"""Answer runtimes: execute an agent's answer file and get one number back.

* ``sql``: the file is a dbt-style model (``{{ ref('stg_app_users') }}``,
  ``{{ source('raw', 'app_users') }}`` and ``{{ config(...) }}`` are
  understood; other Jinja is refused) run in the sandbox's DuckDB through
  :class:`~stackgym.sandboxes.sql.SqlSandbox`. It must return one row; the
  value is its only column, or its column named ``value``.
* ``typescript``: Node.js 20 loads the file through ``tsx`` and calls its
  ``entry`` export with what the sandbox's provider returns (a Drizzle
  client, or all tables in typed arrays).
* ``python``: a child Python calls the entry function the same way.

Code answers run under :func:`~stackgym.sandboxes.isolation.run_child`
(timeout, no network, resource limits). Every failure comes back as an
:class:`AnswerResult` with the error text verbatim (workspace paths made
relative) and an ``error_kind``; nothing raises for what an answer does.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackgym.sandboxes.isolation import minimal_env, run_child
from stackgym.sandboxes.sql import SqlError, SqlSandbox, plain_value

if TYPE_CHECKING:
    from stackgym.sandboxes.workspace import Workspace

ErrorKind = Literal[
    "no_answer", "syntax", "schema", "type", "timeout", "refused", "runtime", "output_shape"
]
MARK = "__STACKGYM_RESULT__"
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}|\{#.*?#\}", re.S)
_REF = re.compile(r"""^\s*ref\(\s*(['"])([\w.]+)\1\s*\)\s*$""")
_SOURCE = re.compile(r"""^\s*source\(\s*(['"])(\w+)\1\s*,\s*(['"])(\w+)\3\s*\)\s*$""")
_CONFIG = re.compile(r"^\s*config\(.*\)\s*$", re.S)


@dataclass
class AnswerResult:
    """What running an answer gave: a value, or an error and its kind."""

    value: float | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    seconds: float = 0.0
    #: ``schema.table`` of every database object a SQL answer read.
    tables: set[str] = field(default_factory=set)
    #: Whether a code answer ran without network (None for SQL, which has none).
    network_isolated: bool | None = None
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


class RenderError(Exception):
    pass


def render_sql(text: str, sql: SqlSandbox) -> str:
    """Resolve dbt's ``ref``/``source``/``config`` in ``text`` to plain SQL."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0).startswith("{#"):
            return ""
        inner = match.group(1) if match.group(1) is not None else None
        if inner is None:
            raise RenderError(
                f"Jinja statements such as {match.group(0)[:40]!r} are not supported; "
                "use plain SQL with {{ ref('model') }} or {{ source('raw', 'table') }}"
            )
        if _CONFIG.match(inner):
            return ""
        ref = _REF.match(inner)
        if ref:
            name = ref.group(2).split(".")[-1]
            qualified = sql.qualify("", name)
            if qualified is None:
                raise RenderError(f"ref('{name}'): no model or table named {name!r} exists")
            return qualified
        source = _SOURCE.match(inner)
        if source:
            schema, table = source.group(2), source.group(4)
            qualified = sql.qualify(schema, table)
            if qualified is None:
                raise RenderError(f"source('{schema}', '{table}'): no such table {schema}.{table}")
            return qualified
        raise RenderError(
            "only ref(), source() and config() are supported inside {{ }}, "
            f"not {inner.strip()!r}"
        )

    return _JINJA.sub(replace, text)


def coerce(value: Any) -> float:
    """A returned value as a float, or ``ValueError`` saying what was wrong."""
    value = plain_value(value)
    if isinstance(value, bool):
        raise ValueError(f"the answer returned a boolean ({value}); return a number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"the answer returned text {value[:60]!r}; return a number") from None
    elif value is None:
        raise ValueError("the answer returned NULL/None; return a number")
    else:
        raise ValueError(f"the answer returned {type(value).__name__}; return a number")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"the answer returned {number}; return a finite number")
    return number


def run_sql_answer(workspace: Workspace, text: str) -> AnswerResult:
    started = time.perf_counter()
    spec = workspace.manifest.require_answer()
    sql = workspace.sql(spec.database)
    try:
        rendered = render_sql(text, sql)
        result = sql.query(rendered)
    except RenderError as exc:
        return AnswerResult(error=str(exc), error_kind="syntax", seconds=_since(started))
    except SqlError as exc:
        return AnswerResult(error=exc.message, error_kind=exc.kind, seconds=_since(started))
    seconds = _since(started)
    columns = [c.lower() for c in result.columns]
    if len(result.rows) != 1:
        count = f"{len(result.rows)}{'+' if result.truncated else ''}"
        return AnswerResult(
            error=f"the query returned {count} rows; return exactly one row with the value",
            error_kind="output_shape",
            seconds=seconds,
            tables=result.tables,
        )
    if len(columns) == 1:
        raw = result.rows[0][0]
    elif "value" in columns:
        raw = result.rows[0][columns.index("value")]
    else:
        return AnswerResult(
            error=(
                f"the query returned {len(columns)} columns ({', '.join(result.columns)}); "
                "return one column, or name the answer column `value`"
            ),
            error_kind="output_shape",
            seconds=seconds,
            tables=result.tables,
        )
    try:
        value = coerce(raw)
    except ValueError as exc:
        return AnswerResult(
            error=str(exc), error_kind="output_shape", seconds=seconds, tables=result.tables
        )
    return AnswerResult(value=value, seconds=seconds, tables=result.tables)


def _since(started: float) -> float:
    return time.perf_counter() - started


def _classify_code_error(name: str, message: str) -> ErrorKind:
    text = f"{name}: {message}".lower()
    if "no such column" in text or "no such table" in text or "has no column" in text:
        return "schema"
    if "is not a function" in text or "cannot read properties" in text or name == "TypeError":
        return "type"
    if name in ("SyntaxError", "TransformError") or "transform failed" in text:
        return "syntax"
    if name in ("AnswerShapeError",):
        return "output_shape"
    if name in ("AttributeError", "KeyError") and "has no attribute" in text:
        return "schema"
    if name in ("ModuleNotFoundError", "ImportError") or "cannot find module" in text:
        return "schema"
    return "runtime"


def _run_code(
    workspace: Workspace,
    argv: list[str],
    env_extra: dict[str, str],
    address_space_mb: int | None,
    timeout_s: float,
) -> AnswerResult:
    child = run_child(
        argv,
        cwd=workspace.root,
        env=minimal_env(workspace.folder, env_extra),
        timeout_s=timeout_s,
        address_space_mb=address_space_mb,
    )
    output = workspace.sanitize((child.stdout + child.stderr)[-4000:])
    if child.timed_out:
        return AnswerResult(
            error=f"the answer did not finish within {timeout_s:g} s and was stopped",
            error_kind="timeout",
            seconds=child.seconds,
            network_isolated=child.network_isolated,
            output=output,
        )
    line = next((ln for ln in reversed(child.stdout.splitlines()) if ln.startswith(MARK)), None)
    if line is None:
        detail = workspace.sanitize(child.stderr.strip()[-1500:]) or f"exit code {child.returncode}"
        return AnswerResult(
            error=f"the answer process failed before reporting a value: {detail}",
            error_kind="runtime",
            seconds=child.seconds,
            network_isolated=child.network_isolated,
            output=output,
        )
    report = json.loads(line[len(MARK) :])
    if "error" in report:
        err = report["error"]
        name, message = str(err.get("name", "Error")), str(err.get("message", ""))
        return AnswerResult(
            error=workspace.sanitize(f"{name}: {message}"),
            error_kind=_classify_code_error(name, message),
            seconds=child.seconds,
            network_isolated=child.network_isolated,
            output=output,
        )
    raw = report.get("value")
    if raw is None and report.get("text"):
        raw = report["text"]
    try:
        value = coerce(raw)
    except ValueError as exc:
        return AnswerResult(
            error=str(exc),
            error_kind="output_shape",
            seconds=child.seconds,
            network_isolated=child.network_isolated,
            output=output,
        )
    return AnswerResult(
        value=value, seconds=child.seconds, network_isolated=child.network_isolated, output=output
    )


def run_typescript_answer(workspace: Workspace, answer: Path, timeout_s: float) -> AnswerResult:
    from stackgym.sandboxes.node import node_binary, tsx_loader

    spec = workspace.manifest.require_answer()
    assert spec.provider is not None
    argv = [
        node_binary(),
        "--max-old-space-size=2048",
        "--no-warnings",
        "--import",
        tsx_loader(),
        str(RUNTIME_DIR / "run_answer.mjs"),
        str(answer),
        str(workspace.root / spec.provider.module),
        spec.provider.export,
        spec.entry,
        str(workspace.database_path(spec.database)),
    ]
    return _run_code(workspace, argv, {"NODE_ENV": "production"}, None, timeout_s)


def run_python_answer(workspace: Workspace, answer: Path, timeout_s: float) -> AnswerResult:
    spec = workspace.manifest.require_answer()
    assert spec.provider is not None
    argv = [
        sys.executable,
        "-I",  # no PYTHON* variables, no user site
        "-S",  # no site-packages: the standard library only, not this project's packages
        "-B",
        str(RUNTIME_DIR / "run_answer.py"),
        str(workspace.root),
        str(answer),
        str(workspace.root / spec.provider.module),
        spec.provider.export,
        spec.entry,
        str(workspace.database_path(spec.database)),
    ]
    return _run_code(workspace, argv, {}, 2048, timeout_s)


def run_answer(workspace: Workspace, task: str, *, timeout_s: float | None = None) -> AnswerResult:
    """Execute the answer of ``task`` in ``workspace``; never raises for the answer's faults.

    ``timeout_s`` overrides the manifest's answer timeout (code answers; SQL
    answers use the SQL sandbox's statement timeout).
    """
    spec = workspace.manifest.require_answer()
    timeout = timeout_s if timeout_s is not None else spec.timeout_s
    relative = spec.path_for(task)
    answer = workspace.root / relative
    if not answer.is_file():
        return AnswerResult(error=f"no answer: {relative} was not written", error_kind="no_answer")
    if spec.runtime == "sql":
        return run_sql_answer(workspace, answer.read_text(errors="replace"))
    workspace.materialize()  # code may open any database of the sandbox by its path
    if spec.runtime == "typescript":
        return run_typescript_answer(workspace, answer, timeout)
    return run_python_answer(workspace, answer, timeout)
