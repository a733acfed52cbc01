"""The price table: what an LLM call costs when the provider does not say.

The packaged table lives in ``prices.yaml`` beside this module. A user table
(``STACKGYM_PRICES`` or an explicit path) has the same layout and is merged
over it. Providers that report the cost (OpenRouter's ``usage.cost``) always
win over the table.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackgym.core.errors import ConfigError

PACKAGED_PRICES = Path(__file__).with_name("prices.yaml")
#: Environment variable naming a user price table merged over the packaged one.
PRICES_ENV = "STACKGYM_PRICES"


class ModelPrice(BaseModel):
    """Dollars per million tokens for one model."""

    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)
    source: str = ""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


class PriceTable(BaseModel):
    """Model id (or wildcard pattern) -> price."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    models: dict[str, ModelPrice] = Field(default_factory=dict)

    def price(self, model: str) -> ModelPrice | None:
        """The price of ``model``: an exact key, else the longest matching wildcard."""
        if model in self.models:
            return self.models[model]
        patterns = [
            k for k in self.models if any(c in k for c in "*?[") and fnmatch.fnmatchcase(model, k)
        ]
        return self.models[max(patterns, key=len)] if patterns else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars for a call, or None when the model has no price."""
        price = self.price(model)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)


def _read(path: Path) -> PriceTable:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"price table {path} does not exist", f"create it or unset {PRICES_ENV}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"price table {path} is not valid YAML: {exc}") from None
    try:
        return PriceTable.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(
            f"invalid price table {path}: {problems}",
            "see the packaged prices.yaml for the layout (models: {id: {prompt, completion}})",
        ) from None


@functools.lru_cache(maxsize=16)
def _load(paths: tuple[Path, ...]) -> PriceTable:
    merged: dict[str, ModelPrice] = {}
    for path in paths:
        merged.update(_read(path).models)
    return PriceTable(models=merged)


def load_prices(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The packaged table with ``path`` (or ``$STACKGYM_PRICES``) merged over it."""
    extra = path if path is not None else os.environ.get(PRICES_ENV) or None
    paths = [PACKAGED_PRICES]
    if extra is not None:
        paths.append(Path(extra).expanduser().resolve())
    return _load(tuple(paths))
