"""Building sandboxes for a data snapshot, once, into the shared cache.

A build is the sandbox's file tree (catalog overlays plus generated files)
with its databases in place, checked against the manifest: every file must
carry a layer and every context file must exist. Builds are cached under
``<cache>/sandboxes/<id>-<content hash>-<snapshot>/`` and published
atomically under a file lock. Databases are shared artifacts: the app
SQLite file per snapshot, the dbt warehouse per (snapshot, recipe); a build
hard-links them (nothing ever writes to the cache) and every episode works
on its own copy (:meth:`SandboxBuild.checkout`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from stackgym.core.registry import load_object
from stackgym.data import Dataset, DatasetSpec, cache_root, dataset_for
from stackgym.sandboxes import codegen
from stackgym.sandboxes.appdb import app_db_for
from stackgym.sandboxes.catalog import Sandbox
from stackgym.sandboxes.locking import built_once, file_locks, is_complete, lock_path, publish
from stackgym.sandboxes.manifest import DatabaseSpec, SandboxManifest
from stackgym.sandboxes.warehouse import BuildError, warehouses_for
from stackgym.version import __version__

if TYPE_CHECKING:
    from stackgym.sandboxes.workspace import Workspace

BUILD_FILE = "build.json"
TREE = "tree"


class BuildInfo(BaseModel):
    """``build.json``: what a build holds and how it was made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: str
    content_hash: str
    snapshot: str
    spec: DatasetSpec
    #: Every file of the tree (POSIX path relative to the root) -> its layer.
    files: dict[str, str]
    #: Database name -> path in the tree.
    databases: dict[str, str]
    seconds: float
    created_at: datetime
    created_by: str = f"stackgym {__version__}"


class SandboxBuild:
    """A built sandbox in the cache; :meth:`checkout` gives an episode its own copy."""

    def __init__(self, sandbox: Sandbox, folder: Path, info: BuildInfo) -> None:
        self.sandbox = sandbox
        self.folder = folder
        self.info = info

    def __repr__(self) -> str:
        return f"SandboxBuild({self.sandbox.id!r}, snapshot={self.info.snapshot[:12]})"

    @property
    def manifest(self) -> SandboxManifest:
        return self.sandbox.manifest

    @property
    def tree(self) -> Path:
        """The built file tree (read-only by convention: never write here)."""
        return self.folder / TREE

    @property
    def files(self) -> dict[str, str]:
        return self.info.files

    def checkout(self, workdir: str | os.PathLike[str] | None = None) -> Workspace:
        """An isolated, writable copy of the tree for one episode."""
        from stackgym.sandboxes.workspace import Workspace

        return Workspace.create(self, workdir)


def _folder(sandbox: Sandbox, snapshot: str) -> Path:
    return cache_root() / "sandboxes" / f"{sandbox.id}-{sandbox.content_hash[:12]}-{snapshot[:12]}"


def _copy_overlay(source: Path, dest: Path) -> None:
    if not source.is_dir():
        raise BuildError(f"overlay {source} is not a folder")
    shutil.copytree(
        source,
        dest,
        dirs_exist_ok=True,
        copy_function=shutil.copyfile,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store"),
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")


def assemble(sandbox: Sandbox, tree: Path) -> None:
    """Copy the overlays and write the generated files of ``sandbox`` into ``tree``."""
    tree.mkdir(parents=True, exist_ok=True)
    for source, to in sandbox.overlay_sources():
        _copy_overlay(source, tree / to)
    generate = sandbox.manifest.generate
    if generate.dbt_project is not None:
        options = generate.dbt_project
        project = tree / options.dir
        models = codegen.dbt_staging_models(options.cast_timestamps)
        for name, sql in models.items():
            _write(project / "models" / "staging" / name, sql)
        _write(project / "models" / "sources.yml", codegen.dbt_sources(options.documented))
        _write(
            project / "models" / "schema.yml",
            codegen.dbt_schema_yml(options.documented, options.cast_timestamps),
        )
    code = {
        "drizzle_schema": lambda o: codegen.drizzle_schema(),
        "ts_types": lambda o: codegen.ts_types(),
        "ts_loaders": lambda o: codegen.ts_loaders(o.types_module),
        "python_models": lambda o: codegen.python_models(),
        "python_loaders": lambda o: codegen.python_loaders(o.types_module),
    }
    for name, render in code.items():
        options = getattr(generate, name)
        if options is not None:
            _write(tree / options.to, render(options))


def _custom_database(sandbox: Sandbox, spec: DatabaseSpec, dataset: Dataset, cache: Path) -> Path:
    """A ``build: custom`` database, built once per (snapshot, sandbox content, builder)."""
    assert spec.builder is not None
    key = hashlib.sha256(f"{spec.builder}\n{sandbox.content_hash}".encode()).hexdigest()[:16]
    folder = cache / "custom" / f"{dataset.snapshot[:16]}-{key}"
    name = PurePosixPath(spec.path).name
    try:
        function = load_object(spec.builder)
    except (ImportError, ValueError) as exc:
        raise BuildError(
            f"sandbox {sandbox.id!r}: cannot load builder {spec.builder!r}: {exc}"
        ) from None
    return built_once(folder, name, lambda staging: function(dataset, staging / name))


def _link(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:  # another filesystem: copy
        shutil.copyfile(source, dest)


def _files(tree: Path) -> list[str]:
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


def _finish(sandbox: Sandbox, tree: Path, databases: dict[str, Path]) -> dict[str, str]:
    """Place the databases, then check the tree against the manifest."""
    manifest = sandbox.manifest
    for name, spec in manifest.databases.items():
        _link(databases[name], tree / spec.path)
    files = _files(tree)
    untagged = [f for f in files if manifest.layer_of(f) is None]
    if untagged:
        raise BuildError(
            f"sandbox {sandbox.id!r}: no surface rule tags {', '.join(untagged[:8])}",
            "add a rule to `surface` in its sandbox.yaml (every file needs a layer)",
        )
    missing = [f for f in manifest.context_files if f not in files]
    if missing:
        raise BuildError(
            f"sandbox {sandbox.id!r}: context file(s) {', '.join(missing)} are not in the tree",
            f"the tree holds: {', '.join(files[:30])}",
        )
    return {f: str(manifest.layer_of(f)) for f in files}


def _place(
    sandbox: Sandbox,
    tree: Path,
    databases: dict[str, Path],
    staging: Path,
    spec: DatasetSpec,
    snapshot: str,
    started: float,
) -> None:
    """Finish ``tree`` and move it, with its ``build.json``, into ``staging``."""
    files = _finish(sandbox, tree, databases)
    shutil.move(tree, staging / TREE)
    info = BuildInfo(
        sandbox=sandbox.id,
        content_hash=sandbox.content_hash,
        snapshot=snapshot,
        spec=spec,
        files=files,
        databases={name: db.path for name, db in sandbox.manifest.databases.items()},
        seconds=round(time.perf_counter() - started, 3),
        created_at=datetime.now(UTC),
    )
    (staging / BUILD_FILE).write_text(info.model_dump_json(indent=2))


_BUILDS: dict[tuple[str, str, str], SandboxBuild] = {}


def _open(sandbox: Sandbox, folder: Path) -> SandboxBuild:
    info = BuildInfo.model_validate_json((folder / BUILD_FILE).read_bytes())
    return SandboxBuild(sandbox, folder, info)


def build_sandboxes(sandboxes: Iterable[Sandbox], spec: DatasetSpec) -> list[SandboxBuild]:
    """Builds of ``sandboxes`` for ``spec``; what is missing is built now, dbt once for all."""
    sandboxes = list(sandboxes)
    dataset = dataset_for(spec)
    cache = cache_root()
    found: dict[str, SandboxBuild] = {}
    pending: list[Sandbox] = []
    for sandbox in sandboxes:
        key = (sandbox.id, sandbox.content_hash, dataset.snapshot)
        folder = _folder(sandbox, dataset.snapshot)
        if key in _BUILDS and _BUILDS[key].folder == folder and is_complete(folder):
            found[sandbox.id] = _BUILDS[key]
        elif is_complete(folder):
            found[sandbox.id] = _BUILDS[key] = _open(sandbox, folder)
        elif sandbox.id not in {s.id for s in pending}:
            pending.append(sandbox)
    if pending:
        with tempfile.TemporaryDirectory(prefix="stackgym-build-", dir=cache) as tmp:
            started = time.perf_counter()
            trees = {s.id: Path(tmp) / s.id for s in pending}
            for sandbox in pending:
                assemble(sandbox, trees[sandbox.id])
            projects = [
                trees[s.id] / db.project
                for s in pending
                for db in s.manifest.databases.values()
                if db.build == "dbt"
            ]
            warehouses = warehouses_for(projects, dataset, cache) if projects else {}
            needs_app = any(
                db.build == "app_sqlite" for s in pending for db in s.manifest.databases.values()
            )
            app_db = app_db_for(dataset, cache) if needs_app else None
            for sandbox in pending:
                tree = trees[sandbox.id]
                databases: dict[str, Path] = {}
                for name, db in sandbox.manifest.databases.items():
                    if db.build == "dbt":
                        databases[name] = warehouses[tree / db.project]
                    elif db.build == "app_sqlite":
                        assert app_db is not None
                        databases[name] = app_db
                    else:
                        databases[name] = _custom_database(sandbox, db, dataset, cache)
                folder = _folder(sandbox, dataset.snapshot)
                with file_locks([lock_path(folder)]):
                    if not is_complete(folder):
                        publish(
                            folder,
                            lambda staging, s=sandbox, t=tree, d=databases: _place(
                                s, t, d, staging, dataset.spec, dataset.snapshot, started
                            ),
                        )
                key = (sandbox.id, sandbox.content_hash, dataset.snapshot)
                found[sandbox.id] = _BUILDS[key] = _open(sandbox, folder)
    return [found[s.id] for s in sandboxes]


def build_sandbox(sandbox: Sandbox, spec: DatasetSpec) -> SandboxBuild:
    """The build of one sandbox for ``spec``."""
    return build_sandboxes([sandbox], spec)[0]
