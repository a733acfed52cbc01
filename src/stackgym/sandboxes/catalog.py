"""The sandbox catalog: folders of sandboxes, loaded and validated by id.

A catalog root holds one folder per sandbox (``<id>/sandbox.yaml`` plus
optional ``files/``, ``oracle/`` and ``naive/``) and shared material in
folders whose names start with ``_``. The built-in catalog ships inside the
package; :class:`Catalog` accepts more roots, searched in order, so another
environment can keep its own sandboxes and still extend or overlay these.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from stackgym.core.errors import ConfigError, UnknownNameError
from stackgym.sandboxes.manifest import NaiveAnswer, SandboxManifest, merge_manifests

if TYPE_CHECKING:
    from stackgym.data import DatasetSpec
    from stackgym.sandboxes.build import SandboxBuild

MANIFEST_FILE = "sandbox.yaml"
BUILTIN_CATALOG = Path(__file__).resolve().parent / "catalog"
#: Bumped when the builder's output changes for the same inputs.
BUILD_VERSION = 1
#: Source files whose behaviour shapes a build; their bytes enter the build hash.
_BUILDER_SOURCES = ("codegen.py", "warehouse.py", "appdb.py", "build.py")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping, not {type(data).__name__}")
    return data


def _files_under(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


class Sandbox:
    """One catalog entry: its resolved manifest and the folders it is made of."""

    def __init__(self, manifest: SandboxManifest, folders: list[Path], catalog: Catalog) -> None:
        self.manifest = manifest
        #: The sandbox's own folder first, then its ancestors' (``extends``).
        self.folders = folders
        self.catalog = catalog

    def __repr__(self) -> str:
        return f"Sandbox({self.id!r})"

    @property
    def id(self) -> str:
        return self.manifest.id

    def overlay_sources(self) -> list[tuple[Path, str]]:
        """``(folder, destination)`` pairs to copy into the tree, in order."""
        sources = [(self.catalog.locate(o.source), o.to) for o in self.manifest.overlays]
        own = [(folder / "files", ".") for folder in reversed(self.folders)]
        # each level's overlays come before its own files/, ancestors first
        ordered: list[tuple[Path, str]] = []
        ordered.extend(sources)
        ordered.extend(pair for pair in own if pair[0].is_dir())
        return ordered

    def find(self, relative: str) -> Path:
        """A grading file (oracle, naive) from this sandbox or the nearest ancestor."""
        for folder in self.folders:
            candidate = folder / relative
            if candidate.is_file():
                return candidate
        raise ConfigError(
            f"sandbox {self.id!r} has no file {relative!r}",
            f"add it under {self.folders[0]} or an ancestor's folder",
        )

    def oracle_file(self, task: str) -> Path:
        """The oracle answer of ``task`` (a data file in the catalog)."""
        if self.manifest.oracle is None:
            raise ConfigError(
                f"sandbox {self.id!r} has no oracle answers (it takes no answer file)"
            )
        return self.find(self.manifest.oracle.format(task=task))

    def naive_answers(self, task: str | None = None) -> list[tuple[NaiveAnswer, Path]]:
        """The wrong answers kept for ``task`` (all tasks when None), with their files."""
        return [
            (naive, self.find(naive.file))
            for naive in self.manifest.naive
            if task is None or naive.task == task
        ]

    @cached_property
    def content_hash(self) -> str:
        """Hash of everything the build depends on (manifest, files, generator code)."""
        return _content_hash(self)

    def build(self, spec: DatasetSpec) -> SandboxBuild:
        """The build of this sandbox for ``spec`` (from the cache, or built now)."""
        from stackgym.sandboxes.build import build_sandbox

        return build_sandbox(self, spec)


def _content_hash(sandbox: Sandbox) -> str:
    digest = hashlib.sha256(f"stackgym.sandbox/{BUILD_VERSION}\n".encode())
    digest.update(json.dumps(sandbox.manifest.model_dump(mode="json"), sort_keys=True).encode())
    inputs = [(folder, dest) for folder, dest in sandbox.overlay_sources()]
    inputs.append((sandbox.catalog.shared_folder(), "_shared"))
    for folder, dest in inputs:
        for path in _files_under(folder):
            digest.update(f"\n{dest}/{path.relative_to(folder).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    here = Path(__file__).resolve().parent
    for name in _BUILDER_SOURCES:
        digest.update((here / name).read_bytes())
    for database in sandbox.manifest.databases.values():
        if database.builder is not None:
            # a custom builder's code shapes its database as much as the manifest does
            digest.update(f"\nbuilder {database.builder}\n".encode())
            digest.update(_module_source(database.builder.partition(":")[0]))
    from stackgym.data import table_schemas

    digest.update(json.dumps({k: v.model_dump() for k, v in table_schemas().items()}).encode())
    return digest.hexdigest()


def _module_source(module: str) -> bytes:
    """The source bytes of ``module`` (found, not imported); empty when it has no file."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    if origin is None or not Path(origin).is_file():
        return b""
    return Path(origin).read_bytes()


class Catalog:
    """Sandboxes by id, from one or more catalog roots searched in order."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]] | None = None) -> None:
        self.roots = [Path(r).resolve() for r in (roots or [BUILTIN_CATALOG])]
        self._loaded: dict[str, Sandbox] = {}

    def ids(self) -> list[str]:
        """Every sandbox id, sorted."""
        found: set[str] = set()
        for root in self.roots:
            if root.is_dir():
                found.update(
                    p.parent.name
                    for p in root.glob(f"*/{MANIFEST_FILE}")
                    if p.parent.name[0] != "_"
                )
        return sorted(found)

    def locate(self, relative: str) -> Path:
        """A catalog-relative folder or file, from the first root that has it."""
        for root in self.roots:
            candidate = (root / relative).resolve()
            if candidate.exists() and root in (candidate, *candidate.parents):
                return candidate
        raise ConfigError(
            f"no catalog root holds {relative!r}",
            f"catalog roots: {', '.join(str(r) for r in self.roots)}",
        )

    def shared_folder(self) -> Path:
        """``_shared/`` of the built-in catalog (generator data: renames, docs, app schema)."""
        return BUILTIN_CATALOG / "_shared"

    def _folder(self, sandbox_id: str) -> Path:
        for root in self.roots:
            if (root / sandbox_id / MANIFEST_FILE).is_file():
                return root / sandbox_id
        raise UnknownNameError("sandbox", sandbox_id, self.ids())

    def _raw(self, sandbox_id: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], list[Path]]:
        if sandbox_id in seen:
            chain = " -> ".join((*seen, sandbox_id))
            raise ConfigError(f"sandbox manifests extend each other in a cycle: {chain}")
        folder = self._folder(sandbox_id)
        data = _read_yaml(folder / MANIFEST_FILE)
        if data.get("id") != sandbox_id:
            raise ConfigError(
                f"{folder / MANIFEST_FILE} says id {data.get('id')!r}; it must match its folder "
                f"name {sandbox_id!r}"
            )
        parent = data.get("extends")
        if parent is None:
            return data, [folder]
        parent_data, parent_folders = self._raw(str(parent), (*seen, sandbox_id))
        merged = merge_manifests(parent_data, data)
        return merged, [folder, *parent_folders]

    def get(self, sandbox_id: str) -> Sandbox:
        """The sandbox ``sandbox_id``; its manifest is validated on first load."""
        if sandbox_id not in self._loaded:
            data, folders = self._raw(sandbox_id, ())
            try:
                manifest = SandboxManifest.model_validate(data)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                    for e in exc.errors(include_url=False)[:6]
                )
                raise ConfigError(
                    f"sandbox manifest {folders[0] / MANIFEST_FILE} is invalid: {problems}",
                    "see docs/metrics.md (section 'Adding a sandbox') for the manifest fields",
                ) from None
            self._loaded[sandbox_id] = Sandbox(manifest, folders, self)
        return self._loaded[sandbox_id]

    def __iter__(self) -> Iterator[Sandbox]:
        return (self.get(i) for i in self.ids())


@cache
def default_catalog() -> Catalog:
    """The built-in catalog (the sandboxes of the metrics environment)."""
    return Catalog()


def get_sandbox(sandbox_id: str) -> Sandbox:
    """A sandbox of the built-in catalog by id."""
    return default_catalog().get(sandbox_id)


def sandbox_ids() -> list[str]:
    """The ids of the built-in sandboxes."""
    return default_catalog().ids()
