"""The troubleshooting sandboxes' databases: the bugged app db, the clean API store, the ETL log."""

from __future__ import annotations

import sqlite3
import sys
import textwrap

import pytest
import yaml

from stackgym.core.errors import ConfigError
from stackgym.data import DatasetSpec, dataset_for
from stackgym.envs.troubleshoot.models import CATALOG_ROOT, get_sandbox
from stackgym.envs.troubleshoot.stores import STRIPE_TABLES, app_db_ddl
from stackgym.sandboxes import run_answer
from stackgym.sandboxes.catalog import BUILTIN_CATALOG, Catalog

#: A small snapshot: these tests need builds, not volume.
SMALL = DatasetSpec(seed=4, scale=0.2, bug="schema_drift")


@pytest.fixture(scope="module")
def build():
    return get_sandbox("troubleshoot-orm").build(SMALL)


def rows(path, sql):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_the_app_database_leaves_only_amount_paid_nullable_beyond_the_orm():
    relaxed = "\n".join(app_db_ddl())
    assert "amount_paid INTEGER NOT NULL" not in relaxed
    assert "amount_due INTEGER NOT NULL" in relaxed and "customer_id TEXT NOT NULL" in relaxed


def test_the_app_database_holds_the_bugged_rows(build):
    app = build.tree / "app.db"
    nulls = rows(app, "select count(*) from invoices where amount_paid is null")[0][0]
    assert nulls == dataset_for(SMALL).diagnosis.affected_rows > 0


def test_the_api_store_holds_the_clean_billing_objects(build):
    store = build.tree / "mock-api" / "stripe.db"
    clean = dataset_for(SMALL.clean())
    for table in STRIPE_TABLES:
        assert rows(store, f"select count(*) from {table}")[0][0] == clean.table(table).num_rows
    assert rows(store, "select count(*) from invoices where amount_paid is null") == [(0,)]
    users = clean.table("users")
    linked = sum(c is not None for c in users["stripe_customer_id"].to_pylist())
    assert rows(store, "select count(*) from customer_users") == [(linked,)]
    tables = {name for (name,) in rows(store, "select name from sqlite_master where type='table'")}
    assert "users" not in tables and "api_usage" not in tables  # only the provider's objects


def test_the_etl_store_is_the_datasets_run_history(build):
    runs = dataset_for(SMALL).etl_log()
    stored = rows(build.tree / "etl" / "runs.db", "select run_id, rows_loaded, message from runs")
    assert sorted(stored) == sorted((r.run_id, r.rows_loaded, r.message) for r in runs)


def test_troubleshoot_workspaces_take_no_answer_file(build):
    workspace = build.checkout()
    try:
        with pytest.raises(ConfigError, match="takes no answer file"):
            run_answer(workspace, "active_user_arpu")
    finally:
        workspace.close()


def test_changing_a_custom_builders_code_rebuilds_its_database(tmp_path, monkeypatch):
    """The builder's source enters the cache key: an edited builder never serves stale data."""
    module = tmp_path / "tsg_probe_builder.py"
    write = textwrap.dedent(
        """
        import sqlite3

        def build(dataset, out):
            db = sqlite3.connect(out)
            db.execute("create table version (v integer)")
            db.execute("insert into version values (VERSION)")
            db.commit()
            db.close()
        """
    )
    module.write_text(write.replace("VERSION", "1"))
    monkeypatch.syspath_prepend(str(tmp_path))
    root = tmp_path / "catalog"
    (root / "probe").mkdir(parents=True)
    manifest = yaml.safe_load((CATALOG_ROOT / "troubleshoot-orm" / "sandbox.yaml").read_text())
    manifest["id"] = "probe"
    manifest["extends"] = "troubleshoot-orm"
    manifest = {k: manifest[k] for k in ("id", "extends")}
    manifest["databases"] = {
        "probe": {
            "engine": "sqlite",
            "build": "custom",
            "builder": "tsg_probe_builder:build",
            "path": "probe.db",
            "layer": "etl_log",
        }
    }
    (root / "probe" / "sandbox.yaml").write_text(yaml.safe_dump(manifest))
    first = Catalog([root, CATALOG_ROOT, BUILTIN_CATALOG]).get("probe").build(SMALL)
    assert rows(first.tree / "probe.db", "select v from version") == [(1,)]
    module.write_text(write.replace("VERSION", "2"))
    sys.modules.pop("tsg_probe_builder", None)
    again = Catalog([root, CATALOG_ROOT, BUILTIN_CATALOG]).get("probe").build(SMALL)
    assert rows(again.tree / "probe.db", "select v from version") == [(2,)]


def test_the_app_code_the_agent_reads_type_checks_against_the_generated_schema(build, tmp_path):
    """The sync jobs and billing report are code an engineer could run: strict tsc accepts them."""
    import os
    import shutil
    import subprocess

    from stackgym.sandboxes.node import node_binary, node_modules, tsc_script

    tree = tmp_path / "app"
    shutil.copytree(build.tree, tree, ignore=shutil.ignore_patterns("*.db"))
    os.symlink(node_modules(), tree / "node_modules", target_is_directory=True)
    checked = subprocess.run(
        [node_binary(), str(tsc_script()), "--noEmit", "--pretty", "false", "-p", "tsconfig.json"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {"src/jobs/stripe-sync.ts", "src/services/billing-report.ts"} <= set(build.files)
