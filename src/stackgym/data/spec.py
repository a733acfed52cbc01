"""What determines a data snapshot: seed, scale, anchor time, drift and injected bug."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackgym.core.errors import ConfigError

#: The default anchor: the "now" of every generated dataset unless told otherwise.
DEFAULT_ANCHOR = datetime(2026, 1, 1)

Drift = Literal["none", "stripe-lag", "missing-mapping"]
DRIFT_MODES: tuple[str, ...] = ("none", "stripe-lag", "missing-mapping")

Bug = Literal["none", "idempotency", "missing_mapping", "schema_drift", "stale_status"]
BUG_TYPES: tuple[str, ...] = ("idempotency", "missing_mapping", "schema_drift", "stale_status")

#: Bumped whenever the generator's output changes for the same spec.
GENERATOR_VERSION = 1


def parse_anchor(value: str | datetime) -> datetime:
    """An ISO-8601 time as naive UTC (the dataset's timestamps have no zone)."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"cannot parse anchor {value!r} as an ISO-8601 time",
                "use e.g. --anchor 2026-01-01 or --anchor 2026-01-01T12:00:00Z",
            ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class DatasetSpec(BaseModel):
    """Everything a snapshot depends on; the same spec always gives the same data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: Annotated[int, Field(ge=0)] = 0
    scale: Annotated[float, Field(gt=0, le=1_000)] = 1.0
    anchor: datetime = DEFAULT_ANCHOR
    drift: Drift = "none"
    #: A pipeline bug injected into the app data (see ``stackgym.data.bugs``).
    bug: Bug = "none"

    @field_validator("anchor", mode="before")
    @classmethod
    def _anchor(cls, value: str | datetime) -> datetime:
        return parse_anchor(value)

    def key(self) -> str:
        """A short, filesystem-safe name for caches."""
        scale = f"{self.scale:g}".replace(".", "p")
        anchor = self.anchor.strftime("%Y%m%dT%H%M%S")
        bug = "" if self.bug == "none" else f"-bug-{self.bug}"
        return f"s{self.seed}-x{scale}-{anchor}-{self.drift}{bug}-g{GENERATOR_VERSION}"

    def clean(self) -> DatasetSpec:
        """The same snapshot without the injected bug: the source of truth."""
        return self.model_copy(update={"bug": "none"})
