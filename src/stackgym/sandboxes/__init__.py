"""Sandboxes: file trees and databases that represent one architecture.

A small reusable library (the metrics and troubleshooting environments are
built on it):

* :class:`SandboxManifest` - ``sandbox.yaml``, validated: context files,
  answer location and runtime, prompts, and the surface map that tags every
  file and database with its layer (:data:`LAYERS`).
* :class:`Catalog` / :class:`Sandbox` - sandboxes by id, with ``extends`` and
  file overlays resolved, oracle and naive answers as data files.
* :class:`SandboxBuild` - a sandbox built for a data snapshot (real dbt into
  DuckDB, a unified SQLite app database), cached by (content hash, snapshot)
  under file locks; :meth:`SandboxBuild.checkout` gives each episode an
  isolated writable :class:`Workspace`.
* :class:`Workspace` - the confined file tools (``read_file``,
  ``write_file``, ``list_files``) and read-only database access.
* :class:`SqlSandbox` - the one SQL sandbox (DuckDB without external access,
  SQLite read-only; one statement, a timeout, a row cap).
* :func:`run_answer` / :func:`lint_answer` - execute or lint an answer (SQL,
  TypeScript through Node.js + tsx, Python), with a timeout and no network.

Names load lazily, so importing the package costs nothing; dbt itself only
ever runs in a subprocess.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuildInfo": "build",
    "SandboxBuild": "build",
    "build_sandbox": "build",
    "build_sandboxes": "build",
    "Catalog": "catalog",
    "Sandbox": "catalog",
    "default_catalog": "catalog",
    "get_sandbox": "catalog",
    "sandbox_ids": "catalog",
    "LintReport": "lint",
    "lint_answer": "lint",
    "APP_LAYERS": "manifest",
    "LAYERS": "manifest",
    "WAREHOUSE_LAYERS": "manifest",
    "DatabaseSpec": "manifest",
    "NaiveAnswer": "manifest",
    "SandboxManifest": "manifest",
    "AnswerResult": "runtimes",
    "run_answer": "runtimes",
    "QueryResult": "sql",
    "SqlError": "sql",
    "SqlSandbox": "sql",
    "BuildError": "warehouse",
    "Access": "workspace",
    "ToolError": "workspace",
    "Workspace": "workspace",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
