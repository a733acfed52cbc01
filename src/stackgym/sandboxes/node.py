"""Where Node.js and the npm packages of the TypeScript sandboxes are.

``make setup`` installs the packages of the repository's ``package.json``
(``drizzle-orm``, ``better-sqlite3``, ``tsx``, ``typescript``…) with
``npm ci`` from the committed lockfile into a cache keyed on the lockfile,
and links ``node_modules`` at the repository root. Answers run with Node.js
20+ through ``tsx``; the lint policy type-checks them with ``tsc``.
``STACKGYM_NODE_MODULES`` points elsewhere if needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from stackgym.core.errors import ConfigError

PACKAGE_NAME = "stackgym-sandboxes"
REQUIRED = ("drizzle-orm", "better-sqlite3", "tsx", "typescript", "@types/node")
MIN_NODE_MAJOR = 20
HINT = "run `make setup` in the stackgym checkout (it runs `npm ci`; needs Node.js 20+ and npm)"


class NodeSetupError(ConfigError):
    """Node.js or the sandboxes' npm packages are missing."""


def _find_modules() -> Path:
    configured = os.environ.get("STACKGYM_NODE_MODULES")
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise NodeSetupError(f"STACKGYM_NODE_MODULES={configured} is not a folder", HINT)
        return path.resolve()
    for folder in Path(__file__).resolve().parents:
        manifest = folder / "package.json"
        if manifest.is_file():
            try:
                name = json.loads(manifest.read_text()).get("name")
            except ValueError:
                continue
            if name == PACKAGE_NAME:
                modules = folder / "node_modules"
                if modules.is_dir():
                    return modules.resolve()
                raise NodeSetupError(f"npm packages are not installed in {folder}", HINT)
    raise NodeSetupError("cannot find the stackgym npm packages (package.json)", HINT)


@cache
def node_modules() -> Path:
    """The ``node_modules`` folder the TypeScript answers import from."""
    modules = _find_modules()
    missing = [p for p in REQUIRED if not (modules / p / "package.json").is_file()]
    if missing:
        raise NodeSetupError(f"{modules} lacks {', '.join(missing)}", HINT)
    if not any((modules / "better-sqlite3" / "build" / "Release").glob("*.node")):
        raise NodeSetupError("better-sqlite3 was installed but not compiled", HINT)
    return modules


@cache
def node_binary() -> str:
    """The ``node`` executable (20 or newer)."""
    node = shutil.which("node")
    if node is None:
        raise NodeSetupError("Node.js is not installed (no `node` on PATH)", HINT)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    text = version.stdout.strip().lstrip("v")
    try:
        major = int(text.split(".")[0])
    except ValueError:
        raise NodeSetupError(f"cannot read the Node.js version ({text!r})", HINT) from None
    if major < MIN_NODE_MAJOR:
        raise NodeSetupError(f"Node.js {text} is too old; {MIN_NODE_MAJOR}+ is needed", HINT)
    return node


def tsx_loader() -> str:
    """The ``--import`` URL that makes Node.js load TypeScript (tsx)."""
    return (node_modules() / "tsx" / "dist" / "loader.mjs").as_uri()


def tsc_script() -> Path:
    """The TypeScript compiler's entry script."""
    return node_modules() / "typescript" / "bin" / "tsc"


def require_node() -> None:
    """Raise :class:`NodeSetupError` unless TypeScript answers can run here."""
    node_binary()
    node_modules()
