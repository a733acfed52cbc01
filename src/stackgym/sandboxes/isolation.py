"""Running untrusted answer code: a timeout, resource limits and no network.

Every TypeScript or Python answer runs in a child process that

* gets a **timeout** (the whole process group is killed with ``SIGKILL``),
* sees a **minimal environment** (no API keys, no proxies, ``HOME`` inside
  the episode folder, ``PATH`` of system folders only; Python answers run
  with ``-I -S``: the standard library, not this project's packages),
* has **no network**: it runs in fresh user and network namespaces
  (``unshare --user --map-root-user --net``), where only a loopback device
  that is down exists, so even ``127.0.0.1`` is unreachable. Where
  ``unshare`` or unprivileged user namespaces are unavailable the child runs
  with the network of the host; :func:`network_isolation` says which, and
  every answer result records it (``network_isolated``),
* has CPU-time and file-size limits (``RLIMIT_CPU``, ``RLIMIT_FSIZE``) and,
  for Python, an address-space limit (V8 reserves large virtual ranges, so
  Node gets ``--max-old-space-size`` instead).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@cache
def network_isolation() -> bool:
    """True when children can be started without network (probed once)."""
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    network_isolated: bool


def _limits(cpu_s: int, address_space_mb: int | None, file_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space_mb is not None:
        limit = address_space_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def minimal_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an answer process: PATH, a private HOME, UTF-8, UTC."""
    env = {
        # the system's directories only: not the project's virtualenv or tools
        "PATH": SAFE_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    env.update(extra or {})
    return env


def run_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    address_space_mb: int | None = None,
    file_mb: int = 64,
    isolate_network: bool = True,
    max_output: int = 200_000,
) -> ChildResult:
    """Run ``argv`` with the guards above; never raises for what the child does."""
    isolated = isolate_network and network_isolation()
    command = [*UNSHARE, *argv] if isolated else list(argv)
    cpu = max(2, int(timeout_s) + 2)
    started = time.perf_counter()
    # Output goes to files, not pipes: RLIMIT_FSIZE then caps a child that
    # prints without end, and the parent never holds more than the tail.
    with tempfile.TemporaryDirectory(prefix="stackgym-child-") as tmp:
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=lambda: _limits(cpu, address_space_mb, file_mb),
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # the whole group: a child the answer spawned dies with it
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return ChildResult(
            returncode=proc.returncode,
            stdout=_tail(out_path, max_output),
            stderr=_tail(err_path, max_output),
            timed_out=timed_out,
            seconds=time.perf_counter() - started,
            network_isolated=isolated,
        )


def _tail(path: Path, limit: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        return handle.read().decode("utf-8", "replace")
