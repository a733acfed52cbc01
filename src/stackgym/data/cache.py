"""A shared on-disk cache of generated datasets, keyed by their spec.

Environments ask for a spec, not a folder: the first request generates it
(under a file lock, so parallel workers never generate the same snapshot
twice), later ones open it. ``STACKGYM_CACHE`` moves the cache.
"""

from __future__ import annotations

import fcntl
import os
from functools import lru_cache
from pathlib import Path

from stackgym.core.errors import DataError
from stackgym.data.dataset import MANIFEST, Dataset, generate_dataset
from stackgym.data.spec import DatasetSpec


def cache_root() -> Path:
    """Where stackgym keeps generated datasets and sandbox builds."""
    configured = os.environ.get("STACKGYM_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "stackgym"
    root.mkdir(parents=True, exist_ok=True)
    return root


@lru_cache(maxsize=16)
def _cached(spec: DatasetSpec, root: Path) -> Dataset:
    folder = root / "datasets" / spec.key()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / MANIFEST).is_file():
            try:
                dataset = Dataset.open(folder)
                if dataset.spec == spec:
                    return dataset
            except DataError:
                pass  # a damaged cache entry is regenerated below
        return generate_dataset(spec, folder)


def dataset_for(spec: DatasetSpec) -> Dataset:
    """The dataset for ``spec``, generated into the cache on first use."""
    return _cached(spec, cache_root())
