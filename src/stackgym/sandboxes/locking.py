"""Build-once helpers: file locks and atomic publication of cached artifacts.

Parallel workers (pytest-xdist, the harness) may ask for the same build at
once. Each artifact is built under a file lock into a temporary sibling
folder, marked complete and renamed into place, so readers see a whole
artifact or none, and nothing is built twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

COMPLETE = ".complete"


@contextlib.contextmanager
def file_locks(paths: Iterable[Path]) -> Iterator[None]:
    """Hold exclusive locks on ``paths`` (taken in sorted order, so never deadlocks)."""
    with contextlib.ExitStack() as stack:
        for path in sorted(set(paths)):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(open(path, "a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def lock_path(folder: Path) -> Path:
    return folder.with_name(folder.name + ".lock")


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).is_file()


def publish(folder: Path, build: Callable[[Path], None]) -> None:
    """Run ``build(staging)`` and move the result to ``folder`` (caller holds the lock)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build(staging)
        (staging / COMPLETE).write_text("ok\n")
        if folder.exists():  # a partial leftover of a killed build
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def built_once(folder: Path, artifact: str, build: Callable[[Path], None]) -> Path:
    """``folder/artifact``, built by ``build(staging)`` the first time anyone asks."""
    if not is_complete(folder):
        with file_locks([lock_path(folder)]):
            if not is_complete(folder):
                publish(folder, build)
    return folder / artifact
