"""Failure taxonomy: ordered rules, kept as data, that label every failed run.

The rules live in ``taxonomy.yaml`` beside this module (or a file of the same
shape passed as ``--taxonomy``). Each rule names a category and tests a run's
status, truncation, error text and per-episode metrics; the first rule whose
tests all hold wins, and a failure no rule recognises is ``other``. Runs that
passed, and runs no env judged, get no category.

The error text matched is :attr:`RunRecord.error`: the infra error, or the
error the env reported for the answer (DuckDB, SQLite, Node or Python text,
verbatim).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stackgym.core.errors import ConfigError
from stackgym.core.results import RunOutcome, RunRecord

RULES_FILE = Path(__file__).with_name("taxonomy.yaml")
#: The category of a failure no rule matches; every rules file must declare it.
FALLBACK = "other"

Scalar = bool | int | float | str | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricTest(_Strict):
    """Tests of one metric; all that are set must hold. A missing metric fails them."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    eq: Scalar = None
    ne: Scalar = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    #: True: the metric must be reported (any value); False: it must be absent.
    present: bool | None = None

    def holds(self, metrics: Mapping[str, Any], name: str) -> bool:
        if name not in metrics or metrics[name] is None:
            return self.present is False
        if self.present is False:
            return False
        value = metrics[name]
        set_fields = self.model_fields_set
        if "eq" in set_fields and value != self.eq:
            return False
        if "ne" in set_fields and value == self.ne:
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        bounds = (self.lt, self.le, self.gt, self.ge)
        if any(b is not None for b in bounds):
            if not isinstance(value, int | float):
                return False
            if self.lt is not None and not value < self.lt:
                return False
            if self.le is not None and not value <= self.le:
                return False
            if self.gt is not None and not value > self.gt:
                return False
            if self.ge is not None and not value >= self.ge:
                return False
        return True


class When(_Strict):
    """Conditions on a run's fields; all that are set must hold."""

    status: Literal["completed", "infra_error"] | None = None
    truncated: bool | None = None
    error: Literal["present", "absent"] | None = None
    metrics: dict[str, MetricTest] = Field(default_factory=dict)

    @field_validator("metrics", mode="before")
    @classmethod
    def _plain_values(cls, value: Any) -> Any:
        """``context_files_read: 0`` is shorthand for ``context_files_read: {eq: 0}``."""
        if isinstance(value, dict):
            return {k: v if isinstance(v, dict) else {"eq": v} for k, v in value.items()}
        return value

    def is_empty(self) -> bool:
        return (
            self.status is None
            and self.truncated is None
            and self.error is None
            and not self.metrics
        )


class Rule(_Strict):
    """One rule: when its tests hold for a failed run, the run gets ``category``."""

    name: str = Field(min_length=1)
    category: str
    #: Env ids the rule applies to; None: every env.
    env: list[str] | None = None
    when: When = When()
    #: Regular expressions searched in the error text (case-insensitive); any may match.
    match: list[str] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        return patterns

    @model_validator(mode="after")
    def _tests_something(self) -> Rule:
        if self.when.is_empty() and not self.match:
            raise ValueError(f"rule {self.name!r} tests nothing; give it `when` or `match`")
        return self


class Category(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    description: str = ""


class TaxonomyRules(_Strict):
    """A rules file: the categories, then the ordered rules."""

    schema_version: Literal[1] = 1
    categories: list[Category] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> TaxonomyRules:
        ids = [c.id for c in self.categories]
        for what, values in (("category ids", ids), ("rule names", [r.name for r in self.rules])):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"{what} must be unique; repeated: {', '.join(duplicates)}")
        if FALLBACK not in ids:
            raise ValueError(f"the categories must include {FALLBACK!r} (failures no rule matches)")
        for rule in self.rules:
            if rule.category not in ids:
                raise ValueError(
                    f"rule {rule.name!r} names category {rule.category!r}, "
                    f"which is not declared (declared: {', '.join(ids)})"
                )
        return self


@dataclass(frozen=True)
class Label:
    """A failed run's category and the rule that gave it (None: the fallback)."""

    category: str
    rule: str | None


class Taxonomy:
    """Classifies failed runs with an ordered rule list."""

    def __init__(self, rules: TaxonomyRules, source: str = "<rules>") -> None:
        self.rules = rules
        self.source = source
        self.categories = {c.id: c for c in rules.categories}
        self._patterns = [
            re.compile("|".join(f"(?:{p})" for p in rule.match), re.IGNORECASE)
            if rule.match
            else None
            for rule in rules.rules
        ]
        # Error text -> indices of the rules whose patterns match it. Many runs
        # share an error, so each distinct text is searched once.
        self._hits: dict[str, frozenset[int]] = {}
        # The rules as plain tuples: classifying 10^5 runs stays well under a second.
        self._compiled = [
            (
                index,
                rule.name,
                rule.category,
                frozenset(rule.env) if rule.env is not None else None,
                rule.when.status,
                rule.when.truncated,
                None if rule.when.error is None else rule.when.error == "present",
                bool(rule.match),
                list(rule.when.metrics.items()),
            )
            for index, rule in enumerate(rules.rules)
        ]
        # A label depends only on these fields, so it is memoised on them: runs
        # of an experiment repeat a few outcomes many times.
        self._metric_names = sorted({name for r in rules.rules for name in r.when.metrics})
        self._labels: dict[tuple[Any, ...], Label | None] = {}

    @property
    def order(self) -> list[str]:
        """Category ids in the order the rules file declares them."""
        return [c.id for c in self.rules.categories]

    def label(self, category: str) -> str:
        return self.categories[category].label

    def _text_hits(self, error: str) -> frozenset[int]:
        hits = self._hits.get(error)
        if hits is None:
            hits = frozenset(
                index
                for index, pattern in enumerate(self._patterns)
                if pattern is not None and pattern.search(error)
            )
            self._hits[error] = hits
        return hits

    def classify(
        self,
        *,
        env_id: str,
        status: str,
        passed: bool | None,
        truncated: bool,
        error: str | None,
        metrics: Mapping[str, Any],
    ) -> Label | None:
        """The label of one run, or None when it passed or was not judged."""
        if status != "infra_error" and passed is not False:
            return None
        key = (env_id, status, truncated, error, *[metrics.get(n) for n in self._metric_names])
        try:
            return self._labels[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable metric value: classify without the memo
            return self._classify(env_id, status, truncated, error, metrics)
        label = self._labels[key] = self._classify(env_id, status, truncated, error, metrics)
        return label

    def _classify(
        self,
        env_id: str,
        status: str,
        truncated: bool,
        error: str | None,
        metrics: Mapping[str, Any],
    ) -> Label:
        hits = self._text_hits(error) if error else frozenset()
        has_error = bool(error)
        for (
            index,
            name,
            category,
            envs,
            want_status,
            want_truncated,
            want_error,
            matches,
            tests,
        ) in self._compiled:
            if envs is not None and env_id not in envs:
                continue
            if want_status is not None and want_status != status:
                continue
            if want_truncated is not None and want_truncated != truncated:
                continue
            if want_error is not None and want_error != has_error:
                continue
            if matches and index not in hits:
                continue
            if tests and not all(test.holds(metrics, metric) for metric, test in tests):
                continue
            return Label(category, name)
        return Label(FALLBACK, None)

    def classify_run(self, run: RunRecord | RunOutcome) -> Label | None:
        """:meth:`classify` for a run record."""
        return self.classify(
            env_id=run.env_id,
            status=run.status,
            passed=run.passed,
            truncated=run.truncated,
            error=run.error,
            metrics=run.metrics,
        )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and validate a rules file (default: the shipped ``taxonomy.yaml``)."""
    path = Path(path) if path is not None else RULES_FILE
    if not path.is_file():
        raise ConfigError(f"taxonomy rules file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        rules = TaxonomyRules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{where or 'file'}: {message}")
        raise ConfigError(
            f"invalid taxonomy rules in {path}: " + "; ".join(problems),
            "see the comment at the top of stackgym/analysis/taxonomy.yaml for the rule format",
        ) from None
    return Taxonomy(rules, str(path))
