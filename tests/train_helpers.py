"""Shared helpers of the training tests: small real trace folders, made by real agents."""

from __future__ import annotations

from pathlib import Path

from stackgym.train.collect import collect
from stackgym.train.config import TrainConfig, load_config


def small_config(out: Path, *overrides: str) -> TrainConfig:
    """A fast config (hashing embedder, small tiny model) writing under ``out``."""
    return load_config(
        None,
        [
            f"out={out}",
            "embedder.kind=hashing",
            "embedder.hashing_dim=64",
            "features.hashed_dim=64",
            "model.tiny_hidden=32",
            "model.tiny_layers=1",
            "model.tiny_heads=2",
            "model.tiny_vocab=1000",
            "model.max_length=512",
            "model.max_prompt_chars=600",
            *overrides,
        ],
    )


def collect_traces(folder: Path, config: TrainConfig, *, seeds: int = 30, repeats: int = 3) -> Path:
    """Exploratory Stack Doctor episodes (train split) written through the TraceStore."""
    collect(
        "stack_doctor",
        {"mode": "blind_diagnosis", "split": "train"},
        base="heuristic",
        episodes=seeds,
        repeats=repeats,
        epsilon=0.3,
        out=folder,
        config=config,
    )
    return folder
