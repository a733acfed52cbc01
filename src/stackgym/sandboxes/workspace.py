"""An episode's isolated, writable copy of a built sandbox, and its file tools.

:class:`Workspace` is what an agent works in: ``read_file``, ``write_file``
and ``list_files`` resolve every path with
:func:`stackgym.core.confine.resolve_inside` (no ``..`` out, no absolute
paths, no symlinks out), refuse what they cannot do with a
:class:`ToolError` the agent reads, and report each access with the layer of
the file it touched. Databases open through :class:`SqlSandbox`, read-only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stackgym.core.confine import PathNotAllowed, relative_to_root, resolve_inside
from stackgym.core.errors import StackgymError
from stackgym.sandboxes.sql import SqlSandbox

if TYPE_CHECKING:
    from stackgym.sandboxes.build import SandboxBuild
    from stackgym.sandboxes.manifest import SandboxManifest

#: Longest text ``read_file`` returns; longer files are cut with a notice.
MAX_READ_CHARS = 60_000
#: Largest file ``write_file`` accepts.
MAX_WRITE_CHARS = 200_000
#: Most entries ``list_files`` shows.
MAX_LIST_ENTRIES = 400


class ToolError(StackgymError):
    """A file or SQL tool call the agent must fix; the episode goes on."""


@dataclass(frozen=True)
class Access:
    """One file or database access by a tool, for the per-step record."""

    op: Literal["read", "list", "write", "query"]
    path: str
    layer: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"op": self.op, "path": self.path, "layer": self.layer}


class Workspace:
    """A private copy of a sandbox build (see the module docstring)."""

    def __init__(self, build: SandboxBuild, folder: Path, owned: bool) -> None:
        self.build = build
        self.folder = folder
        self.root = folder / "root"
        self._sql: dict[str, SqlSandbox] = {}
        self._finalizer = weakref.finalize(self, _remove, folder if owned else None, self._sql)

    @classmethod
    def create(
        cls, build: SandboxBuild, workdir: str | os.PathLike[str] | None = None
    ) -> Workspace:
        """Copy ``build``'s tree into a new folder (under ``workdir`` or the temp dir).

        Text files are copied now; each database is copied on first use
        (:meth:`database_path`), so a reset costs milliseconds even where a
        sandbox ships two databases. Either way the copy is the episode's own.
        """
        folder = Path(tempfile.mkdtemp(prefix=f"stackgym-{build.sandbox.id}-", dir=workdir))
        databases = {db.path for db in build.manifest.databases.values()}

        def skip_databases(directory: str, names: list[str]) -> set[str]:
            base = Path(directory).relative_to(build.tree)
            return {n for n in names if (base / n).as_posix() in databases}

        shutil.copytree(
            build.tree, folder / "root", copy_function=shutil.copyfile, ignore=skip_databases
        )
        answer = build.manifest.answer
        if answer is not None and answer.runtime == "typescript":
            # Node resolves packages by walking up from the answer file; the
            # link sits above the root, where no file tool can reach it.
            from stackgym.sandboxes.node import node_modules

            os.symlink(node_modules(), folder / "node_modules", target_is_directory=True)
        return cls(build, folder, owned=True)

    @property
    def manifest(self) -> SandboxManifest:
        return self.build.manifest

    # -- paths and layers ---------------------------------------------------

    def resolve(self, path: str) -> Path:
        """An agent's path inside the root, or :class:`ToolError` saying why not."""
        try:
            return resolve_inside(self.root, path)
        except PathNotAllowed as exc:
            raise ToolError(exc.message, exc.hint) from None

    def relative(self, path: Path) -> str:
        return relative_to_root(self.root, path)

    def layer_of(self, relative: str) -> str | None:
        return self.manifest.layer_of(relative)

    def is_database(self, relative: str) -> str | None:
        """The name of the database stored at ``relative``, if any."""
        for name, database in self.manifest.databases.items():
            if database.path == relative:
                return name
        return None

    def sanitize(self, text: str) -> str:
        """``text`` with this workspace's absolute paths made relative (for agents and traces)."""
        for prefix in (
            str(self.root) + "/",
            str(self.root.resolve()) + "/",
            str(self.folder) + "/",
        ):
            text = text.replace(prefix, "")
        return text

    # -- file tools -----------------------------------------------------------

    def read_file(self, path: str) -> tuple[str, Access]:
        """The text of a file (cut at :data:`MAX_READ_CHARS`)."""
        target = self.resolve(path)
        relative = self.relative(target)
        database = self.is_database(relative)
        if database is not None:
            spec = self.manifest.databases[database]
            raise ToolError(
                f"{relative} is a {spec.engine} database file, not text",
                "query it with run_sql where that tool is enabled; read the schema files instead",
            )
        if target.is_dir():
            raise ToolError(f"{relative} is a folder", "list it with list_files")
        if not target.is_file():
            raise ToolError(f"no file {relative!r}", "use list_files to see the files")
        data = target.read_bytes()
        if b"\x00" in data[:8192]:
            raise ToolError(f"{relative} is a binary file, not text")
        text = data.decode("utf-8", "replace")
        if len(text) > MAX_READ_CHARS:
            text = (
                text[:MAX_READ_CHARS]
                + f"\n… [cut: the file has {len(text):,} characters; showing {MAX_READ_CHARS:,}]"
            )
        return text, Access("read", relative, self.layer_of(relative))

    def write_file(self, path: str, content: str) -> Access:
        """Create or replace a text file (parents are created)."""
        target = self.resolve(path)
        relative = self.relative(target)
        if relative == ".":
            raise ToolError("write_file needs a file path, not the sandbox root")
        if self.is_database(relative) is not None:
            raise ToolError(f"{relative} is a database file; it cannot be overwritten")
        if target.is_dir():
            raise ToolError(f"{relative} is a folder", "choose a file name")
        if len(content) > MAX_WRITE_CHARS:
            raise ToolError(
                f"the content is {len(content):,} characters; the limit is {MAX_WRITE_CHARS:,}"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        except (OSError, UnicodeEncodeError) as exc:
            raise ToolError(f"cannot write {relative}: {exc.__class__.__name__}") from None
        return Access("write", relative, self.layer_of(relative))

    def list_files(self, path: str = ".") -> tuple[list[str], Access]:
        """Every file under ``path`` (recursive), databases annotated."""
        target = self.resolve(path)
        relative = self.relative(target)
        if target.is_file():
            return [relative], Access("list", relative, self.layer_of(relative))
        if not target.is_dir():
            raise ToolError(f"no folder {relative!r}", "use list_files('.') to see the tree")
        names = {
            self.relative(item)
            for item in target.rglob("*")
            if item.is_file() and not item.is_symlink()
        }
        prefix = "" if relative == "." else relative + "/"
        # databases not copied yet (see create) are listed all the same
        names |= {d.path for d in self.manifest.databases.values() if d.path.startswith(prefix)}
        entries = []
        for name in sorted(names):
            database = self.is_database(name)
            if database is not None:
                spec = self.manifest.databases[database]
                extra = f", schemas: {', '.join(spec.schemas)}" if spec.schemas else ""
                name += f"  ({spec.engine} database{extra})"
            entries.append(name)
        if len(entries) > MAX_LIST_ENTRIES:
            cut = len(entries) - MAX_LIST_ENTRIES
            entries = [*entries[:MAX_LIST_ENTRIES], f"… and {cut} more"]
        return entries, Access("list", relative, None)

    # -- databases ------------------------------------------------------------

    def database_path(self, name: str) -> Path:
        """This episode's copy of database ``name`` (copied from the build on first use)."""
        if name not in self.manifest.databases:
            known = ", ".join(self.manifest.databases) or "none"
            raise ToolError(f"this sandbox has no database {name!r}", f"databases: {known}")
        relative = self.manifest.databases[name].path
        path = self.root / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.build.tree / relative, path)
        return path

    def materialize(self) -> None:
        """Copy every database now (before running code that may open them itself)."""
        for name in self.manifest.databases:
            self.database_path(name)

    def sql(self, name: str, *, timeout_s: float = 10.0, max_rows: int = 1_000) -> SqlSandbox:
        """A read-only :class:`SqlSandbox` on database ``name`` (opened once)."""
        if name not in self._sql:
            spec = self.manifest.databases.get(name)
            path = self.database_path(name)
            if not path.is_file():
                raise ToolError(f"the database file {spec.path if spec else name} is missing")
            assert spec is not None
            search = list(spec.schemas)
            self._sql[name] = SqlSandbox(
                path,
                spec.engine,
                read_only=True,
                timeout_s=timeout_s,
                max_rows=max_rows,
                search_path=[*search, "main"] if spec.engine == "duckdb" else (),
            )
        return self._sql[name]

    def close(self, *, wait: bool = True) -> None:
        """Close database handles and delete the copy.

        With ``wait=False`` the folder is deleted by a background thread (a
        reset need not wait for the previous episode's files to go; on some
        filesystems removing folders costs milliseconds each). Pending
        deletions finish before the interpreter exits.
        """
        if wait or not self._finalizer.alive:
            self._finalizer()
            return
        detached = self._finalizer.detach()
        if detached is None:
            return
        _obj, _function, (folder, handles), _kwargs = detached
        _remove(None, handles)
        if folder is not None:
            reaper = threading.Thread(target=shutil.rmtree, args=(folder, True), daemon=True)
            reaper.start()
            _REAPERS.append(reaper)
            _REAPERS[:] = [t for t in _REAPERS if t.is_alive()]


_REAPERS: list[threading.Thread] = []


@atexit.register
def _finish_reaping() -> None:
    for reaper in list(_REAPERS):
        reaper.join(timeout=30)


def _remove(folder: Path | None, handles: dict[str, SqlSandbox]) -> None:
    for handle in handles.values():
        # closing is best effort; the folder goes anyway
        with contextlib.suppress(Exception):
            handle.close()
    handles.clear()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
