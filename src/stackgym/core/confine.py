"""The one path-confinement helper: agent-supplied paths stay inside a root.

Agents are untrusted. Every file tool resolves the agent's path with
:func:`resolve_inside`, which refuses absolute paths, ``..`` that climbs out,
symlinks that point outside, and NUL bytes, each with a message the agent can
act on.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from stackgym.core.errors import StackgymError

MAX_PATH_CHARS = 1_024


class PathNotAllowed(StackgymError):
    """An agent-supplied path that would leave the sandbox root."""


def resolve_inside(root: str | os.PathLike[str], user_path: str) -> Path:
    """Resolve ``user_path`` relative to ``root`` or raise :class:`PathNotAllowed`."""
    hint = "use a path relative to the sandbox root, e.g. 'models/schema.yml'"
    if not isinstance(user_path, str) or not user_path.strip():
        raise PathNotAllowed("path is empty", hint)
    if len(user_path) > MAX_PATH_CHARS:
        raise PathNotAllowed(f"path is longer than {MAX_PATH_CHARS} characters", hint)
    if "\x00" in user_path:
        raise PathNotAllowed("path contains a NUL byte", hint)
    pure = PurePosixPath(user_path.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
        raise PathNotAllowed(f"absolute path {user_path!r} is not allowed", hint)
    base = Path(root).resolve()
    candidate = (base / pure).resolve(strict=False)
    if candidate != base and base not in candidate.parents:
        raise PathNotAllowed(f"path {user_path!r} leads outside the sandbox root", hint)
    return candidate


def relative_to_root(root: str | os.PathLike[str], path: Path) -> str:
    """``path`` as the agent would name it (POSIX, relative to ``root``)."""
    return path.resolve().relative_to(Path(root).resolve()).as_posix() or "."
