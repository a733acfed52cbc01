"""What a tier run did, written beside its checkpoint as ``result.json`` (the audit reads it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESULT_FILE = "result.json"


class TierResult(BaseModel):
    """One run of one tier: completed or skipped, why, on how much data, with which losses."""

    model_config = ConfigDict(extra="forbid")

    tier: str
    status: Literal["completed", "skipped", "failed"]
    reason: str = ""
    #: What the threshold counts (pairs, traces, samples) and the counts.
    unit: str = ""
    count: int = 0
    threshold: int = 0
    losses: list[float] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    trace_dir: str = ""
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    def tally(self) -> str:
        """The count against the threshold: ``15/80 pairs``."""
        return f"{self.count}/{self.threshold} {self.unit}"

    def line(self) -> str:
        """One line for humans: ``DPO skipped: 15/80 pairs``."""
        if self.status == "skipped":
            return f"{self.tier} skipped: {self.reason}"
        if self.status == "failed":
            return f"{self.tier} failed: {self.reason}"
        loss = ""
        if self.losses:
            loss = f", loss {self.losses[0]:.4f} -> {self.losses[-1]:.4f}"
        return f"{self.tier} completed on {self.count} {self.unit}{loss}"

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / RESULT_FILE
        path.write_text(self.model_dump_json(indent=2), "utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> TierResult | None:
        path = folder / RESULT_FILE
        if not path.is_file():
            return None
        return cls.model_validate(json.loads(path.read_text("utf-8")))
