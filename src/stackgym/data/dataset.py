"""A dataset on disk: eleven Parquet files, the ETL log and ``dataset.json``.

The manifest records the spec (seed, scale, anchor, drift, bug), row counts,
each file's SHA-256, the injected bug's diagnosis (if any) and the snapshot
hash that every run records. The snapshot is the hash of the files' hashes, so
two folders with the same snapshot hold the same bytes.
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
from stackgym.data.bugs import BugDiagnosis
from stackgym.data.etl import EtlRun, etl_log_jsonl
from stackgym.data.generate import Snapshot, generate_snapshot
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
    #: Files beside the tables: ``etl_log`` (JSON lines, one sync run each).
    artifacts: dict[str, TableFile]
    #: Ground truth of the injected bug; None for a clean snapshot.
    bug: BugDiagnosis | None = None
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
    """The snapshot id: SHA-256 over the file names and their hashes."""
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
        files = [*manifest.tables.values(), *manifest.artifacts.values()]
        missing_files = [info.file for info in files if not (root / info.file).is_file()]
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

    @property
    def diagnosis(self) -> BugDiagnosis | None:
        """The injected bug's ground-truth diagnosis, or None for a clean snapshot."""
        return self.manifest.bug

    def etl_log(self) -> list[EtlRun]:
        """The sync runs of the pipeline that loaded this snapshot."""
        path = self.root / self.manifest.artifacts["etl_log"].file
        return [EtlRun.model_validate_json(line) for line in path.read_bytes().splitlines()]

    def truth(self) -> Truth:
        """The expected value of every metric task on this snapshot."""
        return self.truth_details()[0]

    def truth_details(self) -> tuple[Truth, TruthDetails]:
        needed = ("users", "api_usage", "invoices", "subscriptions", "organizations")
        return compute_truth_details(self.tables(needed))

    def verify(self) -> None:
        """Re-hash every file; raise :class:`DataError` naming the first that changed."""
        for name, info in {**self.manifest.tables, **self.manifest.artifacts}.items():
            if _sha256(self.root / info.file) != info.sha256:
                raise DataError(
                    f"{self.root / info.file} does not match its hash in {MANIFEST} (table {name})",
                    "the file was modified or corrupted; regenerate the dataset",
                )


def write_snapshot(snapshot: Snapshot, spec: DatasetSpec, out: Path) -> Manifest:
    """Write ``snapshot`` as Parquet, the ETL log and the manifest into the empty folder ``out``."""
    files: dict[str, TableFile] = {}
    for name in TABLE_NAMES:
        path = out / f"{name}.parquet"
        table = snapshot.tables[name]
        pq.write_table(
            table, path, compression="zstd", row_group_size=1 << 20, write_statistics=True
        )
        files[name] = TableFile(file=path.name, rows=table.num_rows, sha256=_sha256(path))
    log_path = out / "etl_log.jsonl"
    log_path.write_text(etl_log_jsonl(snapshot.etl_log))
    artifacts = {
        "etl_log": TableFile(
            file=log_path.name, rows=len(snapshot.etl_log), sha256=_sha256(log_path)
        )
    }
    manifest = Manifest(
        spec=spec,
        tables=files,
        artifacts=artifacts,
        bug=snapshot.diagnosis,
        snapshot=snapshot_hash({**files, **{f"artifact:{k}": v for k, v in artifacts.items()}}),
        created_at=datetime.now(UTC),
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
        snapshot = generate_snapshot(spec)
        manifest = write_snapshot(snapshot, spec, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    dataset = Dataset(out, manifest)
    dataset._tables = dict(snapshot.tables)
    return dataset
