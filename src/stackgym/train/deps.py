"""The optional ``stackgym[train]`` dependencies, imported with a message a user can act on.

Everything outside :mod:`stackgym.train` works without torch, transformers or
TRL; the pieces that need them call :func:`require` first, so a missing
package gives one clear error instead of an ``ImportError`` deep in a stack.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from stackgym.core.errors import StackgymError

INSTALL_HINT = "pip install 'stackgym[train]'  (or `make setup`, which installs every extra)"


class MissingDependency(StackgymError):
    """An optional training dependency is not installed."""


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming what to install."""
    # Never reach for a model hub: every model and tokenizer here is local.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed ({exc})",
            INSTALL_HINT,
        ) from None


def torch() -> ModuleType:
    """The ``torch`` module (Tier 1, DPO, SFT, GRPO)."""
    module = require("torch", purpose="training")
    # Two-core machines: more threads than cores only adds contention.
    if module.get_num_threads() > (os.cpu_count() or 1):
        module.set_num_threads(os.cpu_count() or 1)
    return module
