"""The event loop experiments run on: uvloop where installed, else asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` on uvloop when it is installed.

    The runner's throughput is bound by the CPU each provider call costs the
    event loop; uvloop's loop (libuv, in C) takes a fifth to a quarter off it
    (see benchmarks/README.md). Behaviour is otherwise the same.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
