"""Linting an answer before it is graded (the ``lint`` policy and the ``lint`` tool).

* SQL: ``sqlfluff`` (DuckDB dialect, dbt's ``ref``/``source`` understood)
  for parse errors and the ambiguity/reference rules that flag likely bugs
  (style rules stay off: they are noise for this task), then DuckDB
  ``EXPLAIN`` of the rendered query, which binds it without running it and
  so catches unknown tables and columns and type errors such as
  ``-(VARCHAR, INTERVAL)``.
* TypeScript: the TypeScript compiler (``tsc --noEmit``) over the sandbox's
  ``tsconfig.json``, in a child process with a timeout and no network.
* Python: compiling the file (syntax only; nothing runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stackgym.sandboxes.isolation import minimal_env, run_child
from stackgym.sandboxes.runtimes import RenderError, render_sql
from stackgym.sandboxes.sql import SqlError

if TYPE_CHECKING:
    from stackgym.sandboxes.workspace import Workspace

SQLFLUFF_RULES = ("AM01", "AM02", "AM03", "AM05", "AM06", "AM07", "RF01")
TSC_TIMEOUT_S = 60.0


@dataclass
class LintReport:
    """Problems found in one answer file; ``ok`` when there are none."""

    path: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            return f"lint: {self.path} has no problems."
        lines = [f"lint: {len(self.problems)} problem(s) in {self.path}:"]
        lines += [f"- {p}" for p in self.problems]
        return "\n".join(lines)


def _lint_sql(workspace: Workspace, relative: str, text: str) -> list[str]:
    import sqlfluff

    problems = []
    try:
        violations = sqlfluff.lint(text, dialect="duckdb", rules=list(SQLFLUFF_RULES))
    except Exception as exc:  # sqlfluff's own failure must not end the episode
        violations = []
        problems.append(f"sqlfluff could not lint the file: {exc}")
    for v in violations:
        problems.append(f"sqlfluff line {v['start_line_no']}: {v['code']} {v['description']}")
    sql = workspace.sql(workspace.manifest.require_answer().database)
    try:
        sql.explain(render_sql(text, sql))
    except RenderError as exc:
        problems.append(f"template: {exc}")
    except SqlError as exc:
        problems.append(f"DuckDB EXPLAIN: {exc.message}")
    return problems


def _lint_typescript(workspace: Workspace, relative: str) -> list[str]:
    from stackgym.sandboxes.node import node_binary, tsc_script

    child = run_child(
        [node_binary(), str(tsc_script()), "--noEmit", "--pretty", "false", "-p", "tsconfig.json"],
        cwd=workspace.root,
        env=minimal_env(workspace.folder),
        timeout_s=TSC_TIMEOUT_S,
    )
    if child.timed_out:
        return [f"the TypeScript compiler did not finish within {TSC_TIMEOUT_S:g} s"]
    lines = [ln for ln in (child.stdout + child.stderr).splitlines() if ln.strip()]
    problems = [workspace.sanitize(ln) for ln in lines if "error TS" in ln]
    if child.returncode != 0 and not problems:
        problems = [workspace.sanitize(ln) for ln in lines[-10:]] or [
            f"tsc failed with exit code {child.returncode}"
        ]
    return problems


def _lint_python(relative: str, text: str) -> list[str]:
    try:
        compile(text, relative, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: SyntaxError: {exc.msg}"]
    except ValueError as exc:
        return [f"ValueError: {exc}"]
    return []


def lint_answer(workspace: Workspace, task: str) -> LintReport:
    """Lint the answer file of ``task`` (a missing file is itself the problem)."""
    spec = workspace.manifest.require_answer()
    relative = spec.path_for(task)
    path = workspace.root / relative
    report = LintReport(relative)
    if not path.is_file():
        report.problems.append(f"{relative} does not exist yet; write your answer there")
        return report
    text = path.read_text(errors="replace")
    if spec.runtime == "sql":
        report.problems = _lint_sql(workspace, relative, text)
    elif spec.runtime == "typescript":
        report.problems = _lint_typescript(workspace, relative)
    else:
        report.problems = _lint_python(relative, text)
    return report
