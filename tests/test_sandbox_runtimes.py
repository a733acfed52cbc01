"""Answer runtimes: real Node.js/tsx and Python children, with timeouts and no network."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from sandbox_helpers import checkout, write_answer
from stackgym.sandboxes import run_answer
from stackgym.sandboxes.isolation import network_isolation

TASK = "avg_org_ltv"


@pytest.fixture(scope="module")
def typed():
    ws = checkout("app-typed")
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def drizzle():
    ws = checkout("app-drizzle")
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def python_app():
    ws = checkout("app-python")
    yield ws
    ws.close()


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"42")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/leak", hits
    httpd.shutdown()
    httpd.server_close()


def test_this_machine_isolates_answer_network():
    # Where this fails, answers would run with the host network; the docs say so.
    assert network_isolation()


def test_typescript_answer_cannot_reach_the_network(drizzle, server):
    url, hits = server
    write_answer(
        drizzle,
        TASK,
        f"export async function computeMetric(): Promise<number> {{\n"
        f'  const response = await fetch("{url}");\n'
        "  return Number(await response.text());\n}\n",
    )
    result = run_answer(drizzle, TASK)
    assert result.value is None and result.error is not None
    assert "fetch failed" in result.error
    assert result.network_isolated is True
    assert hits == []


def test_python_answer_cannot_reach_the_network(python_app, server):
    url, hits = server
    write_answer(
        python_app,
        TASK,
        "import urllib.request\n\n"
        f"def compute_metric(data):\n    return float(urllib.request.urlopen('{url}').read())\n",
    )
    result = run_answer(python_app, TASK)
    assert result.value is None
    assert "URLError" in result.error or "unreachable" in result.error.lower()
    assert hits == []


def test_runaway_answers_are_stopped_at_the_timeout(typed, python_app):
    write_answer(typed, TASK, "export function computeMetric(): number {\n  while (true) {}\n}\n")
    result = run_answer(typed, TASK, timeout_s=3)
    assert result.error_kind == "timeout"
    assert "did not finish within 3 s" in result.error
    write_answer(python_app, TASK, "def compute_metric(data):\n    while True:\n        pass\n")
    assert run_answer(python_app, TASK, timeout_s=3).error_kind == "timeout"


def test_processes_an_answer_starts_die_with_it(python_app, tmp_path):
    pid_file = tmp_path / "child.pid"
    write_answer(
        python_app,
        TASK,
        "import subprocess\n\n"
        "def compute_metric(data):\n"
        "    child = subprocess.Popen(['sleep', '300'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "    return 1.0\n",
    )
    result = run_answer(python_app, TASK)
    assert result.value == 1.0
    pid = pid_file.read_text()  # the answer shares the host's PID namespace
    deadline = time.monotonic() + 5
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL was sent; give the kernel a moment
    assert not _running(pid)


def _running(pid: str) -> bool:
    """True while ``pid`` is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            state = next(line for line in handle if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1]


def test_answers_do_not_see_the_callers_secrets(typed, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    write_answer(
        typed,
        TASK,
        "export function computeMetric(): number {\n"
        "  return process.env.OPENAI_API_KEY === undefined ? -1 : 1;\n}\n",
    )
    assert run_answer(typed, TASK).value == -1


@pytest.mark.parametrize(
    ("source", "kind", "fragment"),
    [
        ("export function computeMetric(: number {", "syntax", "src/metrics/avg_org_ltv.ts"),
        (
            "export const answer = 1;\n",
            "output_shape",
            "must export a function named computeMetric",
        ),
        ('export function computeMetric() { return "many"; }\n', "output_shape", "text 'many'"),
        ("export function computeMetric() { return NaN; }\n", "output_shape", "finite number"),
        ("export function computeMetric() { return true; }\n", "output_shape", "boolean"),
        (
            "export function computeMetric() { throw new Error('boom'); }\n",
            "runtime",
            "Error: boom",
        ),
    ],
)
def test_typescript_failures_come_back_as_readable_errors(typed, source, kind, fragment):
    write_answer(typed, TASK, source)
    result = run_answer(typed, TASK)
    assert result.value is None
    assert result.error_kind == kind, result.error
    assert fragment in result.error
    assert str(typed.folder) not in result.error


def test_drizzle_answer_with_an_unknown_column_is_a_schema_error(drizzle):
    write_answer(
        drizzle,
        TASK,
        'import { sql } from "drizzle-orm";\nimport type { AppDatabase } from "../db/client";\n\n'
        "export async function computeMetric(db: AppDatabase): Promise<number> {\n"
        "  const rows = await db.all<{ v: number }>(sql`select sum(amount) as v from invoices`);\n"
        "  return rows[0].v;\n}\n",
    )
    result = run_answer(drizzle, TASK)
    assert result.error_kind == "schema"
    assert result.error == "SqliteError: no such column: amount"


def test_answers_cannot_modify_the_database(drizzle):
    write_answer(
        drizzle,
        TASK,
        'import Database from "better-sqlite3";\n\n'
        "export function computeMetric(): number {\n"
        '  const db = new Database("app.db", { readonly: true });\n'
        '  db.exec("DELETE FROM invoices");\n'
        "  return 0;\n}\n",
    )
    result = run_answer(drizzle, TASK)
    assert result.error is not None and "readonly" in result.error.lower()


def test_a_missing_answer_is_reported_as_such(python_app):
    (python_app.root / python_app.manifest.answer_path("org_churn_rate")).unlink(missing_ok=True)
    result = run_answer(python_app, "org_churn_rate")
    assert result.error_kind == "no_answer"
    assert "metrics/org_churn_rate.py was not written" in result.error


def test_python_answers_cannot_import_this_projects_packages(python_app):
    # the ground truth's reference implementation must stay out of an answer's reach
    write_answer(
        python_app, TASK, "import stackgym\n\n\ndef compute_metric(data):\n    return 1.0\n"
    )
    result = run_answer(python_app, TASK)
    assert result.error == "ModuleNotFoundError: No module named 'stackgym'"
