"""A dataset on disk: eleven Parquet files plus ``dataset.json``.

The manifest records the spec (seed, scale, anchor, drift), row counts, each
file's SHA-256 and the snapshot hash that every run records. The snapshot is
the hash of the files' hashes, so two folders with the same snapshot hold the
same bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError

from stackgym.core.errors import DataError
from stackgym.data.generate import generate_tables
from stackgym.data.schema import TABLE_NAMES, table_schemas
from stackgym.data.spec import GENERATOR_VERSION, DatasetSpec
from stackgym.data.truth import Truth, TruthDetails, compute_truth_details
from stackgym.version import __version__

MANIFEST = "dataset.json"
FORMAT = "stackgym.dataset"


class TableFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    rows: int
    sha256: str


class Manifest(BaseModel):
    """``dataset.json``: what the folder holds and how it was made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["stackgym.dataset"] = FORMAT
    format_version: Literal[1] = 1
    generator_version: int = GENERATOR_VERSION
    spec: DatasetSpec
    tables: dict[str, TableFile]
    snapshot: str
    created_by: str = f"stackgym {__version__}"
    created_at: datetime


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_hash(files: dict[str, TableFile]) -> str:
    """The snapshot id: SHA-256 over the table names and their files' hashes."""
    digest = hashlib.sha256(f"{FORMAT}/1\n".encode())
    for name in sorted(files):
        digest.update(f"{name}:{files[name].sha256}\n".encode())
    return digest.hexdigest()


class Dataset:
    """A generated dataset folder; tables load lazily and are cached."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        self._tables: dict[str, pa.Table] = {}

    @property
    def spec(self) -> DatasetSpec:
        return self.manifest.spec

    @property
    def snapshot(self) -> str:
        return self.manifest.snapshot

    def path(self, table: str) -> Path:
        return self.root / self.manifest.tables[table].file

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Dataset:
        """Open a dataset folder, naming whatever is missing or malformed."""
        root = Path(root)
        hint = "create one with `stackgym data generate --out DIR`"
        if not root.is_dir():
            raise DataError(f"{root} is not a folder", hint)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise DataError(f"{root} is not a stackgym dataset: {MANIFEST} is missing", hint)
        try:
            manifest = Manifest.model_validate_json(manifest_path.read_bytes())
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataError(
                f"{manifest_path} is malformed ({where}: {first['msg']})",
                "regenerate the dataset with `stackgym data generate`",
            ) from None
        missing_tables = [t for t in TABLE_NAMES if t not in manifest.tables]
        if missing_tables:
            raise DataError(
                f"{manifest_path} lists no table {', '.join(missing_tables)}",
                "regenerate the dataset with `stackgym data generate`",
            )
        missing_files = [
            info.file for info in manifest.tables.values() if not (root / info.file).is_file()
        ]
        if missing_files:
            raise DataError(
                f"dataset {root} is missing {', '.join(sorted(missing_files))}",
                "regenerate the dataset with `stackgym data generate`",
            )
        return cls(root, manifest)

    def table(self, name: str) -> pa.Table:
        """One table, read from Parquet once."""
        if name not in self._tables:
            if name not in self.manifest.tables:
                known = ", ".join(TABLE_NAMES)
                raise DataError(f"dataset has no table {name!r}", f"tables: {known}")
            path = self.path(name)
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowInvalid) as exc:
                raise DataError(
                    f"cannot read {path}: {exc}",
                    "regenerate the dataset with `stackgym data generate`",
                ) from None
            expected = table_schemas()[name].arrow_schema()
            missing = [c for c in expected.names if c not in table.column_names]
            if missing:
                raise DataError(f"{path} lacks column(s) {', '.join(missing)}")
            self._tables[name] = table.select(expected.names).cast(expected)
        return self._tables[name]

    def tables(self, names: tuple[str, ...] | None = None) -> dict[str, pa.Table]:
        return {name: self.table(name) for name in (names or TABLE_NAMES)}

    def truth(self) -> Truth:
        """The expected value of every metric task on this snapshot."""
        return self.truth_details()[0]

    def truth_details(self) -> tuple[Truth, TruthDetails]:
        needed = ("users", "api_usage", "invoices", "subscriptions", "organizations")
        return compute_truth_details(self.tables(needed))

    def verify(self) -> None:
        """Re-hash every file; raise :class:`DataError` naming the first that changed."""
        for name, info in self.manifest.tables.items():
            if _sha256(self.root / info.file) != info.sha256:
                raise DataError(
                    f"{self.root / info.file} does not match its hash in {MANIFEST} (table {name})",
                    "the file was modified or corrupted; regenerate the dataset",
                )


def write_tables(tables: dict[str, pa.Table], spec: DatasetSpec, out: Path) -> Manifest:
    """Write ``tables`` as Parquet plus manifest into the empty folder ``out``."""
    files: dict[str, TableFile] = {}
    for name in TABLE_NAMES:
        path = out / f"{name}.parquet"
        pq.write_table(
            tables[name], path, compression="zstd", row_group_size=1 << 20, write_statistics=True
        )
        files[name] = TableFile(file=path.name, rows=tables[name].num_rows, sha256=_sha256(path))
    manifest = Manifest(
        spec=spec, tables=files, snapshot=snapshot_hash(files), created_at=datetime.now(UTC)
    )
    (out / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def generate_dataset(spec: DatasetSpec, out: str | os.PathLike[str]) -> Dataset:
    """Generate ``spec`` into folder ``out``.

    The folder is written whole or not at all: tables go to a temporary
    sibling that replaces ``out`` at the end. An existing folder is replaced
    only if it is itself a stackgym dataset (or empty), so nothing else a user
    keeps there can be lost.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise DataError(f"{out} exists and is not a folder", "choose another --out")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise DataError(
                f"{out} is not empty and is not a stackgym dataset; refusing to overwrite it",
                "choose an empty or new folder for --out",
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tables = generate_tables(spec)
        manifest = write_tables(tables, spec, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    dataset = Dataset(out, manifest)
    dataset._tables = dict(tables)
    return dataset
