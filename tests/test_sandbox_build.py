"""Sandbox builds: real dbt into DuckDB, cached, shared where they can be, checked, isolated."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3

import duckdb
import pytest
import yaml

from sandbox_helpers import DEFAULT, checkout
from stackgym.core.errors import ConfigError, UnknownNameError
from stackgym.data import TABLE_NAMES, dataset_for, table_schemas
from stackgym.sandboxes import LAYERS, BuildError, Catalog, get_sandbox, sandbox_ids
from stackgym.sandboxes.catalog import BUILTIN_CATALOG

REQUIRED = {
    "app-typed",
    "app-drizzle",
    "warehouse-dbt",
    "warehouse-dbt-documented",
    "warehouse-dbt-cast",
    "warehouse-dbt-fair",
    "warehouse-dbt-realistic",
}


def _columns(database, table: str) -> dict[str, str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        schema, name = table.split(".")
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def _tree_digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_catalog_has_every_required_sandbox():
    assert set(sandbox_ids()) >= REQUIRED


def test_every_build_tags_every_file_with_a_known_layer():
    for sandbox_id in sandbox_ids():
        build = get_sandbox(sandbox_id).build(DEFAULT)
        on_disk = sorted(
            p.relative_to(build.tree).as_posix() for p in build.tree.rglob("*") if p.is_file()
        )
        assert sorted(build.files) == on_disk
        assert set(build.files.values()) <= set(LAYERS), sandbox_id
        for context in build.manifest.context_files:
            assert context in build.files, (sandbox_id, context)


def test_raw_timestamps_are_text_and_only_cast_sandboxes_type_them_in_staging():
    plain = get_sandbox("warehouse-dbt").build(DEFAULT).tree / "warehouse.duckdb"
    cast = get_sandbox("warehouse-dbt-cast").build(DEFAULT).tree / "warehouse.duckdb"
    for database in (plain, cast):
        raw = _columns(database, "raw.app_api_usage")
        assert raw["created_at"] == "VARCHAR"
    assert _columns(plain, "staging.stg_app_api_usage")["usage_created_at"] == "VARCHAR"
    assert _columns(cast, "staging.stg_app_api_usage")["usage_created_at"] == "TIMESTAMP"
    # the renames of the staging layer
    users = _columns(plain, "staging.stg_app_users")
    assert {"user_id", "org_id", "user_created_at"} <= set(users) and "id" not in users
    marts = {"marts.dim_orgs", "marts.fct_org_revenue", "marts.fct_mrr"}
    assert all(_columns(plain, mart) for mart in marts)


def test_dbt_variants_share_one_database_per_recipe():
    def inode(sandbox_id):
        return os.stat(get_sandbox(sandbox_id).build(DEFAULT).tree / "warehouse.duckdb").st_ino

    assert inode("warehouse-dbt") == inode("warehouse-dbt-documented")
    assert inode("warehouse-dbt-cast") == inode("warehouse-dbt-fair")
    assert inode("warehouse-dbt-fair") == inode("warehouse-dbt-realistic")
    assert inode("warehouse-dbt") != inode("warehouse-dbt-cast")


def test_documented_sandboxes_describe_every_column_and_minimal_ones_only_name_them():
    def schema_yml(sandbox_id):
        tree = get_sandbox(sandbox_id).build(DEFAULT).tree
        return yaml.safe_load((tree / "models" / "schema.yml").read_text())["models"]

    minimal = schema_yml("warehouse-dbt")
    documented = schema_yml("warehouse-dbt-documented")
    fair = schema_yml("warehouse-dbt-fair")
    assert [m["name"] for m in minimal] == [m["name"] for m in documented]
    assert all("description" not in c for m in minimal for c in m["columns"])
    assert all(c.get("description") for m in documented for c in m["columns"])
    usage = {m["name"]: m for m in documented}["stg_app_api_usage"]
    fair_usage = {m["name"]: m for m in fair}["stg_app_api_usage"]
    stamp = {c["name"]: c for c in usage["columns"]}["usage_created_at"]
    fair_stamp = {c["name"]: c for c in fair_usage["columns"]}["usage_created_at"]
    assert stamp["data_type"] == "varchar" and fair_stamp["data_type"] == "timestamp"


def test_generated_app_code_covers_every_column_of_the_dataset():
    tree = get_sandbox("app-drizzle").build(DEFAULT).tree
    schema_ts = (tree / "src/db/schema.ts").read_text()
    for table, info in table_schemas().items():
        assert f'sqliteTable("{table}"' in schema_ts
        for column in info.columns:
            assert f'"{column}"' in schema_ts, (table, column)
    db = sqlite3.connect(f"file:{tree / 'app.db'}?mode=ro", uri=True)
    try:
        for table in TABLE_NAMES:
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            assert columns == list(table_schemas()[table].columns)
    finally:
        db.close()


def test_builds_are_cached_and_reused():
    first = get_sandbox("app-python").build(DEFAULT)
    stamp = (first.folder / "build.json").stat().st_mtime_ns
    again = get_sandbox("app-python").build(DEFAULT)
    assert again.folder == first.folder
    assert (again.folder / "build.json").stat().st_mtime_ns == stamp
    assert again.info.snapshot == first.info.snapshot


def test_checkouts_are_isolated_from_the_cache_and_from_each_other():
    build = get_sandbox("warehouse-dbt").build(DEFAULT)
    before = _tree_digest(build.tree)
    one, two = checkout("warehouse-dbt"), checkout("warehouse-dbt")
    try:
        (one.root / "models" / "schema.yml").write_text("changed")
        assert not (one.root / "warehouse.duckdb").exists()  # databases are copied on first use
        con = duckdb.connect(str(one.database_path("warehouse")))
        con.execute("CREATE TABLE raw.scratch AS SELECT 1 AS x")
        con.close()
        assert (two.root / "models" / "schema.yml").read_text() != "changed"
        assert "x" not in _columns(two.database_path("warehouse"), "raw.scratch")
        assert (
            os.stat(two.database_path("warehouse")).st_ino
            != os.stat(build.tree / "warehouse.duckdb").st_ino
        )
        assert _tree_digest(build.tree) == before
    finally:
        one.close()
        two.close()
    assert not one.folder.exists() and not two.folder.exists()


@pytest.fixture
def private_catalog(tmp_path):
    root = tmp_path / "catalog"
    shutil.copytree(BUILTIN_CATALOG / "app-python", root / "app-python")
    return root


def test_a_file_without_a_layer_fails_the_build_naming_it(private_catalog):
    (private_catalog / "app-python" / "files" / "notes.txt").write_text("stray")
    sandbox = Catalog([private_catalog, BUILTIN_CATALOG]).get("app-python")
    with pytest.raises(BuildError) as caught:
        sandbox.build(DEFAULT)
    assert "notes.txt" in caught.value.message
    assert "surface" in caught.value.hint


def test_invalid_manifests_are_refused_with_the_field_named(private_catalog):
    manifest = private_catalog / "app-python" / "sandbox.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["surface"][0]["layer"] = "frontend"
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        Catalog([private_catalog]).get("app-python")
    assert "surface.0.layer" in caught.value.message


def test_extends_cycles_and_unknown_ids_are_refused(private_catalog):
    manifest = private_catalog / "app-python" / "sandbox.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["extends"] = "app-python"
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="cycle"):
        Catalog([private_catalog]).get("app-python")
    with pytest.raises(UnknownNameError) as caught:
        Catalog([private_catalog]).get("warehouse-nope")
    assert "app-python" in caught.value.hint


def test_every_sandbox_has_an_oracle_and_a_heuristic_naive_answer_per_task():
    for sandbox_id in sandbox_ids():
        sandbox = get_sandbox(sandbox_id)
        for task in ("active_user_arpu", "org_churn_rate", "avg_org_ltv"):
            assert sandbox.oracle_file(task).is_file()
            naive = sandbox.naive_answers(task)
            assert any(entry.heuristic for entry, _ in naive), (sandbox_id, task)


def test_custom_database_builders_plug_into_a_sandbox(private_catalog):
    manifest = private_catalog / "app-python" / "sandbox.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["databases"]["billing"] = {
        "engine": "sqlite",
        "build": "custom",
        "builder": "sandbox_helpers:write_mock_api",
        "path": "mock-api/billing.db",
        "layer": "mock_api",
    }
    manifest.write_text(yaml.safe_dump(data))
    sandbox = Catalog([private_catalog, BUILTIN_CATALOG]).get("app-python")
    build = sandbox.build(DEFAULT)
    assert build.files["mock-api/billing.db"] == "mock_api"
    workspace = build.checkout()
    try:
        rows = workspace.sql("billing").query("select count(*) from invoices").rows
        assert rows == [(dataset_for(DEFAULT).table("invoices").num_rows,)]
    finally:
        workspace.close()
