"""The experiment spec: one typed, validated description of a controlled experiment.

An experiment runs a model panel on one environment under several
*conditions*, the levels of one declared *factor* (an env option such as
``sandbox``), over a list of tasks, ``runs`` times each. Every other setting
is shared, and the parity check (:mod:`stackgym.harness.parity`) proves it.

Specs are YAML files validated by :class:`ExperimentSpec` (unknown keys are
refused). A file may instead hold a *suite* (``experiments: [...]``), several
experiments run one after the other, each into its own folder. Presets ship
in ``stackgym/harness/presets/``.

Typed fields map onto env options of the same name where the env takes them:
``max_turns``, ``tools``, ``lint``, and ``data`` -> ``data_seed``, ``scale``,
``drift``, ``anchor``. Leave a field unset for an env that does not take it;
``options`` passes any other env option.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stackgym.core.errors import ConfigError, UnknownNameError

PRESETS_DIR = Path(__file__).with_name("presets")

#: Names that appear inside run ids, so they may not hold ``/``.
Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$", max_length=120)]

#: Spec field -> env option, for the typed fields that are env options.
TYPED_OPTIONS = {
    "max_turns": "max_turns",
    "tools": "tools",
    "lint": "lint",
    "data.seed": "data_seed",
    "data.scale": "scale",
    "data.drift": "drift",
    "data.anchor": "anchor",
}
#: Env option -> the spec field a user writes it as.
OPTION_LABELS = {option: label for label, option in TYPED_OPTIONS.items()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSnapshot(_Strict):
    """The data snapshot every condition shares (env options ``data_seed``, ``scale``…)."""

    seed: int | None = Field(default=None, ge=0)
    scale: float | None = Field(default=None, gt=0, le=1000)
    drift: Literal["none", "stripe-lag", "missing-mapping"] | None = None
    #: ISO-8601 "now" of the dataset.
    anchor: str | None = None

    def options(self) -> dict[str, Any]:
        values = {"data_seed": self.seed, "scale": self.scale, "drift": self.drift}
        values["anchor"] = self.anchor
        return {k: v for k, v in values.items() if v is not None}


class AgentOptions(_Strict):
    """How LLM agents call their model (baselines ignore these)."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    #: Provider sampling seed; run ``repeat`` r sends ``seed + r``.
    seed: int | None = Field(default=None, ge=0)
    protocol: Literal["auto", "tools", "xml"] = "auto"
    system_prompt: str | None = None
    price_table: str | None = None


class Stopping(_Strict):
    """When the harness ends a run whatever the env says."""

    #: Hard cap on env steps per run (the env's own turn budget is ``max_turns``).
    max_steps: int = Field(default=1000, ge=1, le=100_000)


class Timeouts(_Strict):
    #: Seconds for one provider call before it counts as hung (then retried).
    call_s: float = Field(default=120.0, gt=0)
    #: Seconds of agent time for a whole run; past it the run is an infra error.
    run_s: float | None = Field(default=1800.0, gt=0)


class Retries(_Strict):
    """Retries of provider calls on 429, 5xx, timeouts (exponential backoff with jitter)."""

    max_retries: int = Field(default=5, ge=0, le=50)
    backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=60.0, ge=0)


class Gate(_Strict):
    """Decision-gate thresholds (seed 000, A5), evaluated by the analysis."""

    #: Condition names: the ORM side, the fair dbt comparator, the realistic one.
    orm: str
    dbt_fair: str
    dbt_realistic: str | None = None
    #: Smallest ORM advantage that counts, in pass-rate points (5 = 5 %).
    min_advantage: float = Field(default=5.0, ge=0, le=100)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    #: The advantage must hold with each repeat left out in turn.
    require_stable: bool = True


class Overrides(_Strict):
    """Per-condition changes of shared settings. The parity check refuses any that differ."""

    tasks: list[str] | None = None
    models: list[str] | None = None
    runs: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0)
    max_turns: int | None = Field(default=None, ge=1)
    tools: list[str] | None = None
    lint: Literal["none", "lint"] | None = None
    data: DataSnapshot | None = None
    options: dict[str, Any] | None = None
    agent: AgentOptions | None = None
    stopping: Stopping | None = None


class Condition(_Strict):
    """One level of the factor."""

    name: Slug
    #: The factor's value in this condition; defaults to ``name``.
    value: Any = None
    overrides: Overrides | None = None

    @property
    def level(self) -> Any:
        return self.name if self.value is None else self.value


class ExperimentSpec(_Strict):
    """A controlled experiment: one env, one factor, a model panel, strict parity."""

    name: Slug
    description: str = ""
    env: str
    #: The env option that varies between conditions (e.g. ``sandbox``).
    factor: str
    conditions: list[Condition] = Field(min_length=1)
    #: The env option that selects the task; unused when ``tasks`` is empty.
    task_option: str = "task"
    tasks: list[str] = Field(default_factory=list)
    #: Agent names: ``oracle``, ``openai:gpt-4o-mini``, ``openrouter:x-ai/grok-code-fast-1``…
    models: list[str] = Field(min_length=1)
    #: Runs per model per condition (per task).
    runs: int = Field(default=1, ge=1, le=10_000)
    #: Episode seed of repeat 0; repeat r plays seed + r in every condition (paired).
    seed: int = Field(default=0, ge=0)
    max_turns: int | None = Field(default=None, ge=1)
    #: Tool budget: the tools enabled in the env (env option ``tools``).
    tools: list[str] | None = None
    lint: Literal["none", "lint"] | None = None
    data: DataSnapshot | None = None
    #: Any other env option, shared by every condition.
    options: dict[str, Any] = Field(default_factory=dict)
    agent: AgentOptions = AgentOptions()
    stopping: Stopping = Stopping()
    concurrency: int = Field(default=4, ge=1, le=4096)
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    #: Where env work runs: ``auto`` measures (a thread per worker for slow envs).
    env_thread: Literal["auto", "always", "never"] = "auto"
    #: Play against the env served at this URL (``stackgym serve``) instead of in-process.
    env_url: str | None = Field(default=None, pattern=r"^(https?|wss?)://")
    gate: Gate | None = None

    @field_validator("conditions", mode="before")
    @classmethod
    def _short_conditions(cls, value: Any) -> Any:
        """``[app-drizzle, warehouse-dbt-fair]`` is shorthand for ``[{name: ...}, ...]``."""
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        names = [c.name for c in self.conditions]
        _unique(names, "condition names")
        _unique(
            [json.dumps(c.level, sort_keys=True, default=str) for c in self.conditions],
            "condition values",
        )
        _unique(self.models, "models")
        _unique(self.tasks, "tasks")
        if self.factor == self.task_option and self.tasks:
            raise ValueError(f"factor {self.factor!r} is also the task option; pick another factor")
        shared = self.shared_options()
        if self.factor in shared:
            raise ValueError(
                f"factor {self.factor!r} is also set as a shared setting "
                f"({OPTION_LABELS.get(self.factor, 'options.' + self.factor)}); "
                "its value belongs to each condition"
            )
        if self.tasks and self.task_option in shared:
            raise ValueError(
                f"task option {self.task_option!r} is set in options; list tasks instead"
            )
        for condition in self.conditions:
            if condition.overrides is None:
                continue
            touched = _override_options(condition.overrides)
            if self.factor in touched:
                raise ValueError(
                    f"condition {condition.name!r} overrides the factor {self.factor!r}; "
                    "set its `value` instead"
                )
        return self

    def shared_options(self) -> dict[str, Any]:
        """Env options every condition gets (before per-condition overrides)."""
        return _options(self.max_turns, self.tools, self.lint, self.data, self.options)

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise UnknownNameError("condition", name, [c.name for c in self.conditions])


def _options(
    max_turns: int | None,
    tools: list[str] | None,
    lint: str | None,
    data: DataSnapshot | None,
    options: dict[str, Any] | None,
) -> dict[str, Any]:
    typed: dict[str, Any] = {"max_turns": max_turns, "tools": tools, "lint": lint}
    merged = {k: v for k, v in typed.items() if v is not None}
    if data is not None:
        merged.update(data.options())
    for key, value in (options or {}).items():
        if key in merged:
            label = OPTION_LABELS.get(key, key)
            raise ValueError(f"env option {key!r} is set twice: in options and as {label}")
        merged[key] = value
    return merged


def _override_options(overrides: Overrides) -> dict[str, Any]:
    return _options(
        overrides.max_turns, overrides.tools, overrides.lint, overrides.data, overrides.options
    )


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} must be unique; {value!r} appears twice")
        seen.add(value)


class Suite(_Strict):
    """Several experiments run one after another, each into ``OUT/<name>/``."""

    name: Slug
    description: str = ""
    experiments: list[ExperimentSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        _unique([e.name for e in self.experiments], "experiment names")
        return self


class LoadedSpec(BaseModel):
    """What a spec file or preset holds, and where it came from."""

    model_config = ConfigDict(frozen=True)

    source: str
    suite: Suite | None = None
    experiment: ExperimentSpec | None = None

    @property
    def name(self) -> str:
        return self.suite.name if self.suite else self.experiment.name  # type: ignore[union-attr]

    @property
    def description(self) -> str:
        held = self.suite or self.experiment
        return held.description if held else ""

    @property
    def experiments(self) -> list[ExperimentSpec]:
        if self.suite is not None:
            return list(self.suite.experiments)
        return [self.experiment] if self.experiment is not None else []


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _validation_problem(exc: ValidationError, what: str) -> ConfigError:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling; see docs/harness.md)"
        problems.append(f"{where or 'spec'}: {message}")
    return ConfigError(f"invalid {what}: " + "; ".join(problems))


def parse_spec(data: Any, source: str = "<spec>") -> LoadedSpec:
    """Validate parsed YAML as an experiment or a suite (no registry lookups)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an experiment spec must be a YAML mapping")
    try:
        if "experiments" in data:
            return LoadedSpec(source=source, suite=Suite.model_validate(data))
        return LoadedSpec(source=source, experiment=ExperimentSpec.model_validate(data))
    except ValidationError as exc:
        raise _validation_problem(exc, f"experiment spec {source}") from None


def read_spec(spec: str | Path) -> LoadedSpec:
    """Read a spec file, or a preset by name, and validate it (no registry lookups)."""
    path = Path(spec)
    if not path.is_file():
        preset = PRESETS_DIR / f"{spec}.yaml"
        if not preset.is_file():
            if path.suffix in (".yaml", ".yml") or "/" in str(spec):
                raise ConfigError(f"spec file {spec} does not exist")
            raise UnknownNameError("preset", str(spec), preset_names())
        path, source = preset, f"preset:{spec}"
    else:
        source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    return parse_spec(data, source)


def load_spec(spec: str | Path) -> LoadedSpec:
    """Read and validate a spec or preset, then check every name against the registry.

    Unknown envs, factor values (sandboxes…), tasks and agents are errors
    naming the value and the valid choices.
    """
    from stackgym.harness.names import check_names

    loaded = read_spec(spec)
    for experiment in loaded.experiments:
        check_names(experiment)
    return loaded
