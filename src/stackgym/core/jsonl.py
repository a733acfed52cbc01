"""The one append-safe, versioned JSONL log used for traces and results.

Each line is one pydantic record carrying ``schema_version``. Writes append a
whole line in one ``write`` on a file opened with ``O_APPEND``, so a crash
leaves at most one torn final line. Before the first append to a file whose
last line is torn, a newline is written so the torn bytes stay on a line of
their own. Readers skip and report lines they cannot parse
(:attr:`JsonlLog.problems`) and refuse records of another schema version with
an error naming the file, line and version.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, ValidationError

from stackgym.core.errors import DataError, TraceSchemaError

log = logging.getLogger(__name__)

Record = TypeVar("Record", bound=BaseModel)
View = TypeVar("View", bound=BaseModel)


@dataclass(frozen=True)
class CorruptLine:
    """A line a reader skipped, and why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class JsonlLog(Generic[Record]):
    """Append and read records of one pydantic model in one JSONL file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: type[Record],
        *,
        kind: str,
        schema_version: int,
        durable: bool = False,
    ) -> None:
        self.path = Path(path)
        self.model = model
        self.kind = kind
        self.schema_version = schema_version
        self.durable = durable
        self.problems: list[CorruptLine] = []
        self._fd: int | None = None
        self._lock = threading.Lock()

    # -- writing ----------------------------------------------------------------

    def _open_for_append(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        if size:
            with open(self.path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    os.write(fd, b"\n")
        return fd

    def append(self, record: Record) -> None:
        """Append one record and flush it to the operating system."""
        self.append_many([record])

    def append_many(self, records: Iterable[Record]) -> None:
        """Append records as one write (all land, or a torn last line is left)."""
        payload = b"".join(r.model_dump_json().encode() + b"\n" for r in records)
        if not payload:
            return
        with self._lock:
            if self._fd is None:
                self._fd = self._open_for_append()
            view = memoryview(payload)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.durable:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> JsonlLog[Record]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------

    def __iter__(self) -> Iterator[Record]:
        return self.read()

    @overload
    def read(self, view: None = None) -> Iterator[Record]: ...

    @overload
    def read(self, view: type[View]) -> Iterator[View]: ...

    def read(self, view: type[BaseModel] | None = None) -> Iterator[Any]:
        """Yield every valid record; corrupt lines go to :attr:`problems`.

        ``view`` reads each line as a lighter model holding a subset of the
        record's fields (validated the same; other fields are skipped unparsed
        into Python objects), for readers of many records that need few fields.
        """
        self.problems = []
        if not self.path.exists():
            return
        if self.path.is_dir():
            raise DataError(f"{self.path} is a folder, expected a {self.kind} file")
        validate = (view or self.model).model_validate_json
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    if line.strip():
                        self._skip(number, "torn final line (the writer stopped mid-record)")
                    continue
                if line.isspace():
                    continue
                try:
                    yield validate(line)
                except ValidationError as exc:
                    self._check_version(number, line)
                    first = exc.errors(include_url=False)[0]
                    where = ".".join(str(p) for p in first["loc"])
                    self._skip(number, f"not a valid {self.kind} record ({where}: {first['msg']})")

    def _check_version(self, number: int, line: bytes) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        version = data.get("schema_version")
        if version is not None and version != self.schema_version:
            raise TraceSchemaError(
                f"{self.path}:{number}: {self.kind} record has schema version {version!r}; "
                f"this stackgym reads version {self.schema_version}",
                "read it with the stackgym release that wrote it, or convert the file",
            )

    def _skip(self, number: int, reason: str) -> None:
        problem = CorruptLine(self.path, number, reason)
        self.problems.append(problem)
        log.warning("skipped %s", problem)
