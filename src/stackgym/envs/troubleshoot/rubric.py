"""The deterministic diagnosis rubric of the troubleshooting gym (SPEC §4).

Four criteria, each met or not:

* ``table`` - the ``table`` field names exactly one table of the dataset
  (under any of its names: ``invoices``, ``invoice``, ``raw.stripe_invoices``,
  ``stg_stripe_invoices`` are one table), and it is the table whose rows are
  wrong. Naming two tables is not naming the table.
* ``mechanism`` - the diagnosis (text and source) claims the bug's mechanism
  - duplication / double counting for ``idempotency``, a lost user-to-customer
  mapping for ``missing_mapping``, a renamed field / schema drift for
  ``schema_drift``, cancellations not propagated for ``stale_status`` - and
  claims no other bug type's mechanism. Negated mentions ("no duplicates",
  "ruled out a schema change") are not claims.
* ``window`` - the submitted window and the true one overlap enough: the
  Jaccard index of their day sets (inclusive) is at least 0.5.
* ``source`` - the diagnosis names where the bug comes from (the faulty sync
  job, the ETL / pipeline, or a cause specific to the bug: a partial re-run,
  a missing idempotency key...) and the ``source`` field names no other job,
  no warehouse-side step (replication, dbt) and no other bug type's cause.

A diagnosis **passes** with at least 3 of 4 criteria, ``table`` and
``mechanism`` among them. Stuffing does not pay: several tables fail
``table``, several mechanisms fail ``mechanism``, a window spanning months
fails ``window``, several jobs or causes in ``source`` fail ``source``.
The vocabulary (synonyms, negation cues, thresholds) is data: ``rubric.yaml``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stackgym.core.errors import ConfigError
from stackgym.data import TABLE_NAMES, BugDiagnosis
from stackgym.envs.troubleshoot.models import BUGS, Bug, parse_time

RULES_FILE = Path(__file__).with_name("rubric.yaml")
CRITERIA = ("table", "mechanism", "window", "source")
REQUIRED = ("table", "mechanism")
PASS_THRESHOLD = 3

_Strict = ConfigDict(extra="forbid", frozen=True)


def _compile(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from None
    return patterns


class Sources(BaseModel):
    model_config = _Strict

    generic: list[str]
    jobs: dict[str, list[str]]
    specific: dict[Bug, list[str]]
    warehouse_side: list[str]

    @field_validator("generic", "warehouse_side")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return _compile(value)

    @field_validator("jobs", "specific")
    @classmethod
    def _pattern_lists(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for patterns in value.values():
            _compile(patterns)
        return value


class RubricRules(BaseModel):
    """``rubric.yaml``: the vocabulary of the rubric."""

    model_config = _Strict

    negation_window: int = Field(ge=1, le=20)
    negation_cues: list[str] = Field(min_length=1)
    window_min_jaccard: float = Field(gt=0, le=1)
    open_window_words: list[str]
    mechanisms: dict[Bug, list[str]]
    sources: Sources

    @field_validator("mechanisms")
    @classmethod
    def _every_bug(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        missing = set(BUGS) - set(value)
        if missing:
            raise ValueError(f"no mechanism patterns for {', '.join(sorted(missing))}")
        for patterns in value.values():
            _compile(patterns)
        return value

    @cached_property
    def regex(self) -> dict[str, re.Pattern[str]]:
        """Every pattern compiled once (case-insensitive)."""
        everything = [
            *(p for ps in self.mechanisms.values() for p in ps),
            *self.sources.generic,
            *(p for ps in self.sources.jobs.values() for p in ps),
            *(p for ps in self.sources.specific.values() for p in ps),
            *self.sources.warehouse_side,
        ]
        return {p: re.compile(p, re.IGNORECASE) for p in everything}


@cache
def rubric_rules() -> RubricRules:
    """The rules of ``rubric.yaml``, loaded and validated once."""
    try:
        return RubricRules.model_validate(yaml.safe_load(RULES_FILE.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{RULES_FILE} is invalid: {exc}") from None


class Truth(BaseModel):
    """What a diagnosis is graded against (from the injected bug's :class:`BugDiagnosis`)."""

    model_config = _Strict

    bug: Bug
    table: str
    window_start: datetime
    window_end: datetime
    etl_job: str
    #: The data's "now": an open-ended window ends on this day.
    as_of: datetime

    @classmethod
    def from_diagnosis(cls, diagnosis: BugDiagnosis, as_of: datetime) -> Truth:
        return cls(
            bug=diagnosis.bug,
            table=diagnosis.table,
            window_start=diagnosis.window_start,
            window_end=diagnosis.window_end,
            etl_job=diagnosis.etl_job,
            as_of=as_of,
        )


class Diagnosis(BaseModel):
    """A submitted diagnosis: free text, the table, the window and the source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    diagnosis: str
    table: str
    window_start: str
    window_end: str = ""
    source: str


@dataclass(frozen=True)
class Criterion:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Grade:
    """The rubric applied to one diagnosis."""

    table: Criterion
    mechanism: Criterion
    window: Criterion
    source: Criterion
    #: The window's Jaccard index with the true window (None when it did not parse).
    window_jaccard: float | None

    @property
    def criteria(self) -> dict[str, Criterion]:
        return {name: getattr(self, name) for name in CRITERIA}

    @property
    def met(self) -> int:
        return sum(c.ok for c in self.criteria.values())

    @property
    def passed(self) -> bool:
        return self.met >= PASS_THRESHOLD and all(self.criteria[c].ok for c in REQUIRED)

    @property
    def score(self) -> float:
        return self.met / len(CRITERIA)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "criteria_met": self.met,
            **{f"{name}_ok": c.ok for name, c in self.criteria.items()},
            "reasons": {name: c.reason for name, c in self.criteria.items()},
            "window_jaccard": self.window_jaccard,
        }


# -- text ---------------------------------------------------------------------

_PLAIN = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_CLAUSE_END = re.compile(
    r"[,;:!?\n]|\.(?=\s|$)|\b(?:but|however|whereas|although|though|while)\b", re.IGNORECASE
)
_WORD = re.compile(r"[a-z']+")


def normalise(text: str) -> str:
    return text.translate(_PLAIN).lower()


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE_END.split(normalise(text)) if c.strip()]


def _negated(before: str, rules: RubricRules) -> bool:
    words = _WORD.findall(before)[-rules.negation_window :]
    joined = f" {' '.join(words)} "
    for cue in rules.negation_cues:
        if cue == "n't":
            if any(w.endswith("n't") for w in words):
                return True
        elif f" {cue} " in joined:
            return True
    return False


def claims(text: str, patterns: list[str], rules: RubricRules | None = None) -> list[str]:
    """The mentions of ``patterns`` in ``text`` that are claims (not negated)."""
    rules = rules or rubric_rules()
    found = []
    for clause in _clauses(text):
        for pattern in patterns:
            for match in rules.regex[pattern].finditer(clause):
                if not _negated(clause[: match.start()], rules):
                    found.append(match.group(0).strip())
    return found


_TOKEN = re.compile(r"[a-z][a-z0-9_]*")
_SINGULAR = {name.removesuffix("s"): name for name in TABLE_NAMES}


def table_name(token: str) -> str | None:
    """The dataset table a name means (``raw.stripe_invoices`` -> ``invoices``), or None."""
    name = token.lower()
    name = name.removeprefix("stg_")
    for prefix in ("app_", "stripe_"):
        if name.startswith(prefix) and name != prefix.rstrip("_"):
            candidate = name.removeprefix(prefix)
            if candidate in TABLE_NAMES or candidate in _SINGULAR:
                name = candidate
    if name in TABLE_NAMES:
        return name
    return _SINGULAR.get(name)


def tables_named(text: str) -> set[str]:
    """Every dataset table named in ``text`` (words, and two-word names like ``api usage``)."""
    # "stripe customer id" names a column, not the customers table
    text = re.sub(r"\b([a-z_]+) (ids?)\b", r"\1_\2", normalise(text))
    tokens = _TOKEN.findall(text)
    names = {table_name(t) for t in tokens}
    names |= {table_name(f"{a}_{b}") for a, b in itertools.pairwise(tokens)}
    return {n for n in names if n}


# -- window ---------------------------------------------------------------------


def window_days(
    diagnosis: Diagnosis, as_of: datetime, rules: RubricRules | None = None
) -> tuple[date, date]:
    """The submitted window as (first day, last day); ``ValueError`` saying what is wrong."""
    rules = rules or rubric_rules()
    if not diagnosis.window_start.strip():
        raise ValueError("window_start is empty; give the first day of the window, YYYY-MM-DD")
    start = parse_time(diagnosis.window_start).date()
    end_text = diagnosis.window_end.strip().lower()
    end = as_of.date() if end_text in rules.open_window_words else parse_time(end_text).date()
    if end < start:
        raise ValueError(f"window_end {end} is before window_start {start}")
    return start, end


def jaccard(a: tuple[date, date], b: tuple[date, date]) -> float:
    """|a ∩ b| / |a ∪ b| of two inclusive day ranges."""
    overlap = (min(a[1], b[1]) - max(a[0], b[0])).days + 1
    if overlap <= 0:
        return 0.0
    union = (a[1] - a[0]).days + 1 + (b[1] - b[0]).days + 1 - overlap
    return overlap / union


# -- criteria -------------------------------------------------------------------


def _table(diagnosis: Diagnosis, truth: Truth) -> Criterion:
    named = tables_named(diagnosis.table)
    if not named:
        return Criterion(False, f"{diagnosis.table!r} names no table of the dataset")
    if len(named) > 1:
        return Criterion(False, f"names {len(named)} tables ({', '.join(sorted(named))}); name one")
    (table,) = named
    if table != truth.table:
        return Criterion(False, f"names {table}; the wrong rows are in {truth.table}")
    return Criterion(True, f"names {table}")


def _mechanism(diagnosis: Diagnosis, truth: Truth, rules: RubricRules) -> Criterion:
    text = f"{diagnosis.diagnosis}\n{diagnosis.source}"
    own = claims(text, rules.mechanisms[truth.bug], rules)
    others = {
        bug: found
        for bug, patterns in rules.mechanisms.items()
        if bug != truth.bug and (found := claims(text, patterns, rules))
    }
    if others:
        named = "; ".join(f"{bug} ({found[0]!r})" for bug, found in sorted(others.items()))
        return Criterion(False, f"claims competing mechanisms: {named}")
    if not own:
        return Criterion(False, f"does not name the {truth.bug} mechanism")
    return Criterion(True, f"names it ({own[0]!r})")


def _window(
    diagnosis: Diagnosis, truth: Truth, rules: RubricRules
) -> tuple[Criterion, float | None]:
    try:
        submitted = window_days(diagnosis, truth.as_of, rules)
    except ValueError as exc:
        return Criterion(False, str(exc)), None
    true = (truth.window_start.date(), truth.window_end.date())
    score = jaccard(submitted, true)
    verdict = score >= rules.window_min_jaccard
    reason = (
        f"{submitted[0]}..{submitted[1]} vs {true[0]}..{true[1]}: "
        f"Jaccard {score:.2f} ({'>=' if verdict else '<'} {rules.window_min_jaccard})"
    )
    return Criterion(verdict, reason), score


def _source(diagnosis: Diagnosis, truth: Truth, rules: RubricRules) -> Criterion:
    sources = rules.sources
    own_specific = sources.specific.get(truth.bug, [])
    positive = [*sources.generic, *sources.jobs.get(truth.etl_job, []), *own_specific]
    named = claims(f"{diagnosis.source}\n{diagnosis.diagnosis}", positive, rules)
    competing: list[str] = []
    for job, patterns in sources.jobs.items():
        if job != truth.etl_job and claims(diagnosis.source, patterns, rules):
            competing.append(job)
    if claims(diagnosis.source, sources.warehouse_side, rules):
        competing.append("the warehouse side (replication / dbt)")
    for bug, patterns in sources.specific.items():
        foreign = [p for p in patterns if p not in own_specific]
        if bug != truth.bug and claims(diagnosis.source, foreign, rules):
            competing.append(f"a {bug} cause")
    if competing:
        return Criterion(False, f"the source also blames {', '.join(competing)}")
    if not named:
        return Criterion(False, "names no pipeline source (job, ETL, re-run...)")
    return Criterion(True, f"names {named[0]!r}")


def grade(diagnosis: Diagnosis, truth: Truth, rules: RubricRules | None = None) -> Grade:
    """Apply the rubric (see the module docstring)."""
    rules = rules or rubric_rules()
    window, score = _window(diagnosis, truth, rules)
    return Grade(
        table=_table(diagnosis, truth),
        mechanism=_mechanism(diagnosis, truth, rules),
        window=window,
        source=_source(diagnosis, truth, rules),
        window_jaccard=None if score is None else round(score, 4),
    )


# -- the labelled set -----------------------------------------------------------

LABELLED_FILE = Path(__file__).with_name("diagnoses.yaml")


class LabelledDiagnosis(BaseModel):
    """One diagnosis with the verdict the rubric must give it."""

    model_config = _Strict

    id: str
    truth: str
    kind: Literal["correct", "partial", "wrong", "adversarial"]
    passes: bool
    #: Expected verdicts of single criteria, where the entry is about them.
    criteria: dict[Literal["table", "mechanism", "window", "source"], bool] = Field(
        default_factory=dict
    )
    submission: Diagnosis


class LabelledSet(BaseModel):
    """``diagnoses.yaml``: truths and the labelled diagnoses graded against them."""

    model_config = _Strict

    truths: dict[str, Truth]
    diagnoses: list[LabelledDiagnosis] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> LabelledSet:
        ids = [d.id for d in self.diagnoses]
        if len(set(ids)) != len(ids):
            raise ValueError("diagnosis ids must be unique")
        unknown = sorted({d.truth for d in self.diagnoses} - set(self.truths))
        if unknown:
            raise ValueError(f"diagnoses name unknown truths: {', '.join(unknown)}")
        wrong = [d.id for d in self.diagnoses if d.kind == "adversarial" and d.passes]
        if wrong:
            raise ValueError(f"adversarial diagnoses must be labelled to fail: {', '.join(wrong)}")
        return self


@cache
def labelled_set() -> LabelledSet:
    """The labelled diagnoses, loaded and validated once."""
    try:
        return LabelledSet.model_validate(yaml.safe_load(LABELLED_FILE.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{LABELLED_FILE} is invalid: {exc}") from None
