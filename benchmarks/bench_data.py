"""Dataset generation and ground-truth speed, and peak memory at scale 100.

Targets (issue 2): generate scale 10 (1 M api_usage rows) in <= 10 s; ground
truth at scale 10 in <= 2 s; generate scale 100 without exceeding 4 GiB RSS.

    .venv/bin/python benchmarks/bench_data.py [--skip-100]
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stackgym.data import Dataset, DatasetSpec, generate_dataset


def best_of(runs: int, function) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scale10"
        seconds = best_of(3, lambda: generate_dataset(DatasetSpec(seed=0, scale=10), out))
        print(f"data generate, scale 10 (1 M api_usage rows): {seconds:.2f} s (target <= 10 s)")
        truth = best_of(5, lambda: Dataset.open(out).truth())
        print(f"ground truth from disk, scale 10: {truth:.3f} s (target <= 2 s)")
        if "--skip-100" in sys.argv:
            return
        code = (
            "from stackgym.data import DatasetSpec, generate_dataset;"
            f"generate_dataset(DatasetSpec(seed=0, scale=100), {str(Path(tmp) / 'scale100')!r})"
        )
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        elapsed = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(
            f"data generate, scale 100 (10,000,000 api_usage rows): {elapsed:.1f} s, "
            f"peak RSS {peak_kib / 1024**2:.2f} GiB (target <= 4 GiB)"
        )


if __name__ == "__main__":
    main()
