"""Shared test setup: one dataset/build cache for the whole session (all xdist workers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point STACKGYM_CACHE at a folder shared by every worker of this run.

    Generation and builds take file locks, so workers never build the same
    thing twice and never see a half-written one.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    cache = root / "stackgym-cache"
    cache.mkdir(exist_ok=True)
    os.environ["STACKGYM_CACHE"] = str(cache)
    return cache
