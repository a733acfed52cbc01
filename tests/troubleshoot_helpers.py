"""Shared helpers of the troubleshooting tests (not a test module)."""

from __future__ import annotations

import functools
import os

from stackgym.data import BUG_TYPES, DatasetSpec
from stackgym.envs.troubleshoot.models import get_sandbox, sandbox_ids
from stackgym.sandboxes.build import SandboxBuild

SANDBOXES = sandbox_ids()
BUGS = BUG_TYPES


@functools.cache
def prebuilt(sandbox: str, bug: str) -> SandboxBuild:
    """The build of ``sandbox`` for ``bug`` on the default snapshot (data seed 0, scale 1)."""
    return get_sandbox(sandbox).build(DatasetSpec(bug=bug))


def prebuild_all() -> None:
    """Every (sandbox, bug) build of the default snapshot, a different bug first on each worker.

    Workers then run dbt for different snapshots at the same time instead of
    one waiting on the other's locks.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    shift = int(worker[2:]) if worker[2:].isdigit() else 0
    order = list(BUGS[shift % len(BUGS) :] + BUGS[: shift % len(BUGS)])
    for bug in order:
        for sandbox in SANDBOXES:
            prebuilt(sandbox, bug)
