"""Scenario data: the schema, the loader, and the per-scenario structures episodes use.

Three kinds of YAML file live beside this module:

* ``world.yaml`` — the surface pools a seed draws from (hardware, models,
  serving backends, node names, tensor-parallel sizes);
* ``specialists.yaml`` — what a specialist says when it sees nothing wrong in
  its area, when it blames a wrong family, and when it supports a known root
  cause;
* ``scenarios/*.yaml`` — the incidents, one list per file.

Everything is validated by the pydantic models below when first loaded, then
compiled once per process: text templates become ``str.format_map`` strings
and the sets an episode needs are precomputed, so a reset only draws and
renders a handful of strings.

Templates use ``{name}`` for a variable; any other brace is literal text, so
config snippets can be written as they look (``{"arch_list": [...]}``).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stackgym.core.errors import DataError
from stackgym.envs.stack_doctor.models import (
    FIX_FOR,
    ROOT_CAUSES,
    SPECIALISTS,
    TARGETS,
    Fix,
    RootCause,
    Specialist,
    Target,
)

_VARIABLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_ID = r"^[a-z0-9][a-z0-9_-]{2,63}$"
#: Variables every template may use; set per episode from ``world.yaml``.
WORLD_VARIABLES = ("hardware", "gpu", "sm", "cc", "gpu_mem", "model", "model_arch", "backend")
#: Extra variables of the specialist library's ``support`` texts.
SUPPORT_VARIABLES = ("root_cause",)
EXTRA_WORLD_VARIABLES = ("node", "tp")

Split = Literal["train", "eval"]
Tag = Literal["probative", "neutral", "distracting"]


def template_variables(text: str) -> set[str]:
    """The ``{name}`` variables a template uses."""
    return set(_VARIABLE.findall(text))


def compile_template(text: str) -> str:
    """A ``str.format_map`` string: literal braces doubled, ``{name}`` kept.

    Trailing whitespace (YAML block scalars end with a newline) is dropped.
    """
    escaped = text.rstrip().replace("{", "{{").replace("}", "}}")
    return re.sub(r"\{\{([a-z][a-z0-9_]*)\}\}", r"{\1}", escaped)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- world.yaml ---------------------------------------------------------------


class Hardware(_Strict):
    id: str = Field(pattern=_ID)
    name: str
    gpu: str
    sm: str = Field(pattern=r"^sm_[0-9]{2,3}$")
    cc: str = Field(pattern=r"^[0-9]+\.[0-9]$")
    gpu_mem: int = Field(gt=0)


class Model(_Strict):
    id: str = Field(pattern=_ID)
    name: str
    arch: str


class Backend(_Strict):
    id: str = Field(pattern=_ID)
    name: str


class World(_Strict):
    hardware: list[Hardware] = Field(min_length=2)
    models: list[Model] = Field(min_length=2)
    backends: list[Backend] = Field(min_length=2)
    nodes: list[str] = Field(min_length=2)
    tp: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> World:
        for name in ("hardware", "models", "backends"):
            ids = [item.id for item in getattr(self, name)]
            repeated = [i for i, n in Counter(ids).items() if n > 1]
            if repeated:
                raise ValueError(f"{name}: repeated ids {repeated}")
        return self


# -- specialists.yaml -----------------------------------------------------------


class Voice(_Strict):
    """Alternative wordings of what a specialist says and answers when asked."""

    says: list[str] = Field(min_length=1)
    followup: list[str] = Field(min_length=1)


class Blame(_Strict):
    says: str
    followup: str


class SpecialistLibrary(_Strict):
    #: Blind mode: honest, with nothing wrong to report in its own area.
    clear: dict[Specialist, Voice]
    #: Blind mode: wrong, blaming the family named by the key.
    mistaken: dict[Specialist, dict[RootCause, Blame]]
    #: Visible mode: supportive implementation details and risk checks.
    support: dict[Specialist, Voice]

    @model_validator(mode="after")
    def _complete(self) -> SpecialistLibrary:
        for section in ("clear", "mistaken", "support"):
            missing = set(SPECIALISTS) - set(getattr(self, section))
            if missing:
                raise ValueError(f"{section}: no entry for {sorted(missing)}")
        for specialist, blames in self.mistaken.items():
            missing = set(ROOT_CAUSES) - set(blames)
            if missing:
                raise ValueError(f"mistaken.{specialist}: no entry for {sorted(missing)}")
        allowed = set(WORLD_VARIABLES) | set(EXTRA_WORLD_VARIABLES)
        for where, text in self._texts():
            extra = SUPPORT_VARIABLES if where.startswith("support") else ()
            unknown = template_variables(text) - allowed - set(extra)
            if unknown:
                raise ValueError(f"{where}: unknown variables {sorted(unknown)}")
        return self

    def _texts(self) -> list[tuple[str, str]]:
        texts: list[tuple[str, str]] = []
        for section in ("clear", "support"):
            for specialist, voice in getattr(self, section).items():
                texts += [(f"{section}.{specialist}.says", t) for t in voice.says]
                texts += [(f"{section}.{specialist}.followup", t) for t in voice.followup]
        for specialist, blames in self.mistaken.items():
            for family, blame in blames.items():
                texts.append((f"mistaken.{specialist}.{family}.says", blame.says))
                texts.append((f"mistaken.{specialist}.{family}.followup", blame.followup))
        return texts


# -- scenarios/*.yaml -----------------------------------------------------------


class NumberRange(_Strict):
    """A number drawn uniformly per episode; integers unless ``decimals`` is set."""

    min: float
    max: float
    decimals: int | None = Field(default=None, ge=1, le=4)

    @model_validator(mode="after")
    def _ordered(self) -> NumberRange:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        if self.decimals is None and not (self.min.is_integer() and self.max.is_integer()):
            raise ValueError("integer ranges need whole bounds (or set decimals)")
        return self


#: A variable: one of several values, one of several groups of values (every
#: key becomes a variable, drawn together), or a number range.
Variable = list[str | int | float] | list[dict[str, str | int | float]] | NumberRange


class Evidence(_Strict):
    """What one inspect target shows, and what it is worth."""

    text: str = Field(min_length=10)
    tag: Tag
    #: Short strings of ``text`` that establish the root cause; a justification
    #: must quote one of them (probative items need at least one).
    facts: list[str] = Field(default_factory=list)
    #: The wrong family a distracting item seems to point at.
    points_to: RootCause | None = None


class OwnerOpinion(_Strict):
    """A specialist whose area covers the root cause, when honest."""

    says: str = Field(min_length=10)
    followup: str = Field(min_length=10)
    facts: list[str] = Field(min_length=1)


class Alternative(_Strict):
    """A plausible fix that is not the minimal safe one, and why not."""

    fix: Fix
    why_not: str = Field(min_length=10)


class Scenario(_Strict):
    """One incident. See docs/stack_doctor.md for how to write one."""

    id: str = Field(pattern=_ID)
    title: str
    split: Split
    root_cause: RootCause
    fix: Fix
    hardware: list[str] | None = None
    models: list[str] | None = None
    backends: list[str] | None = None
    vars: dict[str, Variable] = Field(default_factory=dict)
    ticket: str = Field(min_length=20)
    initial_log: str = Field(min_length=10)
    initial_snippet: str = Field(min_length=10)
    inspect: dict[Target, Evidence]
    owners: dict[Specialist, OwnerOpinion] = Field(min_length=1, max_length=2)
    decoys: list[RootCause] = Field(min_length=1, max_length=3)
    #: Inspect targets only: a specialist can be the mistaken one in blind mode.
    minimal_evidence: list[Target] = Field(min_length=1, max_length=2)
    alternatives: list[Alternative] = Field(default_factory=list)

    @field_validator("inspect")
    @classmethod
    def _all_targets(cls, value: dict[str, Evidence]) -> dict[str, Evidence]:
        missing = set(TARGETS) - set(value)
        if missing:
            raise ValueError(f"missing inspect targets {sorted(missing)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if FIX_FOR[self.root_cause] != self.fix:
            raise ValueError(
                f"fix {self.fix!r} is not the fix of {self.root_cause!r} "
                f"(SPEC §5: {FIX_FOR[self.root_cause]!r})"
            )
        if self.root_cause in self.decoys:
            raise ValueError("decoys must be wrong families, not the root cause")
        if not any(e.tag == "probative" for e in self.inspect.values()):
            raise ValueError("at least one inspect target must be probative")
        outside = [t for t in self.minimal_evidence if self.inspect[t].tag != "probative"]
        if outside:
            raise ValueError(f"minimal_evidence {outside} are not probative targets")
        for target, evidence in self.inspect.items():
            if evidence.tag == "probative" and not evidence.facts:
                raise ValueError(f"inspect.{target} is probative but lists no facts")
            if evidence.tag != "probative" and evidence.facts:
                raise ValueError(f"inspect.{target}: only probative items carry facts")
            if evidence.points_to is not None and evidence.tag != "distracting":
                raise ValueError(f"inspect.{target}: points_to is for distracting items")
            for fact in evidence.facts:
                if fact not in evidence.text:
                    raise ValueError(f"inspect.{target}: fact {fact!r} is not in its text")
        for specialist, owner in self.owners.items():
            for fact in owner.facts:
                if fact not in owner.followup:
                    raise ValueError(f"owners.{specialist}: fact {fact!r} is not in its followup")
        for alternative in self.alternatives:
            if alternative.fix == self.fix:
                raise ValueError("alternatives must differ from the correct fix")
        return self

    def templates(self) -> list[tuple[str, str]]:
        """Every text template of the scenario, with where it lives."""
        texts = [
            ("ticket", self.ticket),
            ("initial_log", self.initial_log),
            ("initial_snippet", self.initial_snippet),
        ]
        for target, evidence in self.inspect.items():
            texts.append((f"inspect.{target}.text", evidence.text))
            texts += [(f"inspect.{target}.facts", fact) for fact in evidence.facts]
        for specialist, owner in self.owners.items():
            texts += [
                (f"owners.{specialist}.says", owner.says),
                (f"owners.{specialist}.followup", owner.followup),
            ]
            texts += [(f"owners.{specialist}.facts", fact) for fact in owner.facts]
        texts += [(f"alternatives.{a.fix}", a.why_not) for a in self.alternatives]
        return texts

    def variable_names(self) -> set[str]:
        names: set[str] = set()
        for name, spec in self.vars.items():
            if isinstance(spec, list) and spec and isinstance(spec[0], dict):
                names |= set(spec[0])
            else:
                names.add(name)
        return names


# -- compiled, per process --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledScenario:
    """A validated scenario, precompiled for fast episodes."""

    data: Scenario
    #: Surface pools after the scenario's restrictions, as template variables.
    hardware: tuple[dict[str, str], ...]
    models: tuple[dict[str, str], ...]
    backends: tuple[dict[str, str], ...]
    #: (kind, name, payload) per variable, in a fixed order: kind is "choice"
    #: (payload: values), "group" (payload: dicts of values) or "range"
    #: (payload: (min, max, decimals or None)).
    variables: tuple[tuple[str, str, Any], ...]
    #: Blind mode: the sets of 1 and 2 specialists that may be mistaken
    #: together (every set leaves at least one owner honest).
    mistaken_sets: tuple[tuple[frozenset[str], ...], tuple[frozenset[str], ...]]
    ticket: str
    initial_log: str
    initial_snippet: str
    inspect: dict[str, str]
    owner_says: dict[str, str]
    owner_followup: dict[str, str]
    #: Compiled fact templates per probative source.
    facts: dict[str, tuple[str, ...]]
    probative_targets: frozenset[str]
    #: (specialist, (says, followup) if it owns the incident else None), in order.
    roles: tuple[tuple[str, tuple[str, str] | None], ...]
    #: Plausible but not minimal fixes -> compiled "why not" template.
    alternatives: dict[str, str]

    @property
    def id(self) -> str:
        return self.data.id


@dataclass(frozen=True, slots=True)
class CompiledLibrary:
    clear: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    mistaken: dict[tuple[str, str], tuple[str, str]]
    support: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every scenario, the world and the specialist library, loaded once."""

    world: World
    library: CompiledLibrary
    scenarios: dict[str, CompiledScenario]
    splits: dict[str, tuple[str, ...]]

    def select(self, split: str) -> tuple[CompiledScenario, ...]:
        """Scenarios of ``split`` ("train", "eval" or "all"), sorted by id."""
        return tuple(self.scenarios[i] for i in self.splits[split])


def _read_yaml(name: str) -> Any:
    root = resources.files("stackgym.envs.stack_doctor")
    return _parse_yaml(root.joinpath(name).read_text(encoding="utf-8"), name)


def _parse_yaml(text: str, where: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise DataError(f"{where} is not valid YAML: {exc}") from None


def _validated(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:8]
        )
        raise DataError(
            f"invalid Stack Doctor data in {where}: {problems}",
            "see docs/stack_doctor.md, 'Writing a scenario'",
        ) from None


def _pool(items: list[Any], wanted: list[str] | None, what: str, scenario: str) -> tuple[Any, ...]:
    if wanted is None:
        return tuple(items)
    by_id = {item.id: item for item in items}
    unknown = [w for w in wanted if w not in by_id]
    if unknown:
        raise DataError(
            f"scenario {scenario!r} names unknown {what} {unknown}",
            f"known {what}: {sorted(by_id)} (world.yaml)",
        )
    return tuple(by_id[w] for w in wanted)


def _compile_variables(scenario: Scenario) -> tuple[tuple[str, str, Any], ...]:
    compiled: list[tuple[str, str, Any]] = []
    for name, spec in sorted(scenario.vars.items()):
        if isinstance(spec, NumberRange):
            compiled.append(("range", name, (spec.min, spec.max, spec.decimals)))
        elif spec and isinstance(spec[0], dict):
            keys = set(spec[0])
            if any(not isinstance(g, dict) or set(g) != keys for g in spec):
                raise DataError(f"scenario {scenario.id!r}: groups of var {name!r} differ in keys")
            groups = tuple({k: str(v) for k, v in g.items()} for g in spec)
            compiled.append(("group", name, groups))
        elif spec:
            compiled.append(("choice", name, tuple(str(v) for v in spec)))
        else:
            raise DataError(f"scenario {scenario.id!r}: var {name!r} has no values")
    return tuple(compiled)


def compile_scenario(scenario: Scenario, world: World) -> CompiledScenario:
    """Check the scenario against the world and precompile its templates."""
    defined = scenario.variable_names()
    clash = defined & (set(WORLD_VARIABLES) | set(EXTRA_WORLD_VARIABLES))
    if clash:
        raise DataError(f"scenario {scenario.id!r}: vars {sorted(clash)} shadow world variables")
    allowed = defined | set(WORLD_VARIABLES) | set(EXTRA_WORLD_VARIABLES)
    for where, text in scenario.templates():
        unknown = template_variables(text) - allowed
        if unknown:
            raise DataError(
                f"scenario {scenario.id!r}, {where}: unknown variables {sorted(unknown)}",
                "define them under vars: or use a world variable "
                f"({', '.join(WORLD_VARIABLES + EXTRA_WORLD_VARIABLES)})",
            )
    owners = set(scenario.owners)
    mistaken_sets = tuple(
        tuple(
            frozenset(group)
            for group in itertools.combinations(SPECIALISTS, size)
            if owners - set(group)
        )
        for size in (1, 2)
    )
    ticket = compile_template(scenario.ticket)
    initial_log = compile_template(scenario.initial_log)
    initial_snippet = compile_template(scenario.initial_snippet)
    owner_says = {s: compile_template(o.says) for s, o in scenario.owners.items()}
    owner_followup = {s: compile_template(o.followup) for s, o in scenario.owners.items()}
    facts = {t: tuple(map(compile_template, e.facts)) for t, e in scenario.inspect.items()}
    facts = {t: f for t, f in facts.items() if f}
    for specialist, owner in scenario.owners.items():
        facts[specialist] = tuple(map(compile_template, owner.facts))
    return CompiledScenario(
        data=scenario,
        hardware=tuple(
            {"hardware": h.name, "gpu": h.gpu, "sm": h.sm, "cc": h.cc, "gpu_mem": str(h.gpu_mem)}
            for h in _pool(world.hardware, scenario.hardware, "hardware", scenario.id)
        ),
        models=tuple(
            {"model": m.name, "model_arch": m.arch}
            for m in _pool(world.models, scenario.models, "models", scenario.id)
        ),
        backends=tuple(
            {"backend": b.name}
            for b in _pool(world.backends, scenario.backends, "backends", scenario.id)
        ),
        variables=_compile_variables(scenario),
        mistaken_sets=mistaken_sets,
        ticket=ticket,
        initial_log=initial_log,
        initial_snippet=initial_snippet,
        inspect={t: compile_template(e.text) for t, e in scenario.inspect.items()},
        owner_says=owner_says,
        owner_followup=owner_followup,
        facts=facts,
        probative_targets=frozenset(t for t, e in scenario.inspect.items() if e.tag == "probative"),
        roles=tuple(
            (s, (owner_says[s], owner_followup[s]) if s in owners else None) for s in SPECIALISTS
        ),
        alternatives={a.fix: compile_template(a.why_not) for a in scenario.alternatives},
    )


def compile_library(library: SpecialistLibrary) -> CompiledLibrary:
    def voice(v: Voice) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(map(compile_template, v.says)), tuple(map(compile_template, v.followup))

    return CompiledLibrary(
        clear={s: voice(v) for s, v in library.clear.items()},
        mistaken={
            (s, family): (compile_template(b.says), compile_template(b.followup))
            for s, blames in library.mistaken.items()
            for family, b in blames.items()
        },
        support={s: voice(v) for s, v in library.support.items()},
    )


def parse_scenarios(text: str, where: str) -> list[Scenario]:
    """Validate one scenario file's text (a YAML list of scenarios)."""
    data = _parse_yaml(text, where)
    if not isinstance(data, list):
        raise DataError(f"{where} must hold a YAML list of scenarios, got {type(data).__name__}")
    return [
        _validated(Scenario, item, f"{where}, scenario #{number}")
        for number, item in enumerate(data, start=1)
    ]


def build_catalog(world: World, library: SpecialistLibrary, scenarios: list[Scenario]) -> Catalog:
    """Compile validated data into a :class:`Catalog` (ids must be unique)."""
    repeated = [i for i, n in Counter(s.id for s in scenarios).items() if n > 1]
    if repeated:
        raise DataError(f"scenario ids are repeated: {sorted(repeated)}")
    compiled = {s.id: compile_scenario(s, world) for s in sorted(scenarios, key=lambda s: s.id)}
    splits = {
        "train": tuple(i for i, s in compiled.items() if s.data.split == "train"),
        "eval": tuple(i for i, s in compiled.items() if s.data.split == "eval"),
        "all": tuple(compiled),
    }
    return Catalog(world=world, library=compile_library(library), scenarios=compiled, splits=splits)


@functools.cache
def load_catalog() -> Catalog:
    """The packaged world, specialist library and scenarios (loaded once per process)."""
    world = _validated(World, _read_yaml("world.yaml"), "world.yaml")
    library = _validated(SpecialistLibrary, _read_yaml("specialists.yaml"), "specialists.yaml")
    folder = resources.files("stackgym.envs.stack_doctor").joinpath("scenarios")
    scenarios: list[Scenario] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".yaml", ".yml")):
            where = f"scenarios/{entry.name}"
            scenarios += parse_scenarios(entry.read_text(encoding="utf-8"), where)
    if not scenarios:
        raise DataError("no Stack Doctor scenarios found in scenarios/")
    return build_catalog(world, library, scenarios)
