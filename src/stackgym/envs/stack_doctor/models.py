"""Stack Doctor's vocabulary, actions and observation.

The ten root-cause families and their one correct fix are SPEC §5's table.
Two ``submit`` actions exist, one per mode; an env instance enables the one of
its mode, so its tool schema says exactly what that mode accepts.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from stackgym.core import Action, Observation

# Both lists are alphabetical, so their order does not reveal which fix goes
# with which family (an agent sees both lists).
RootCause = Literal[
    "arch_guard",
    "backend_selector",
    "backend_whitelist",
    "distributed_comm",
    "driver_compat",
    "memory_oom",
    "model_config",
    "quantization_error",
    "runtime_loader",
    "weight_layout",
]
Fix = Literal[
    "add_whitelist_entry",
    "fix_comm_config",
    "fix_quantization",
    "fix_runtime_path",
    "fix_weight_mapping",
    "relax_arch_check",
    "switch_backend",
    "tune_memory_config",
    "update_driver_config",
    "update_model_config",
]
Target = Literal["logs", "config", "snippet", "metrics"]
Specialist = Literal["runtime", "dispatch", "kernel", "loader"]
#: Anything an agent can cite as evidence: an inspected target or a specialist it asked.
Source = Literal["logs", "config", "snippet", "metrics", "runtime", "dispatch", "kernel", "loader"]
Mode = Literal["blind_diagnosis", "root_cause_visible"]

ROOT_CAUSES: tuple[str, ...] = get_args(RootCause)
FIXES: tuple[str, ...] = get_args(Fix)
TARGETS: tuple[str, ...] = get_args(Target)
SPECIALISTS: tuple[str, ...] = get_args(Specialist)
SOURCES: tuple[str, ...] = get_args(Source)
MODES: tuple[str, ...] = get_args(Mode)

#: SPEC §5: each root-cause family has exactly one correct fix.
FIX_FOR: dict[str, str] = {
    "arch_guard": "relax_arch_check",
    "backend_whitelist": "add_whitelist_entry",
    "runtime_loader": "fix_runtime_path",
    "backend_selector": "switch_backend",
    "model_config": "update_model_config",
    "weight_layout": "fix_weight_mapping",
    "memory_oom": "tune_memory_config",
    "quantization_error": "fix_quantization",
    "distributed_comm": "fix_comm_config",
    "driver_compat": "update_driver_config",
}

#: Steps per episode (every action counts, refused ones included).
STEP_BUDGET = 6
#: Upper bound on a justification's length in the schema (the rubric's
#: "concise" bound is much lower; this only keeps hostile input small).
MAX_JUSTIFICATION_CHARS = 2_000

#: The sentence the seed prescribes for the reset of ``root_cause_visible``.
VISIBLE_BRIEFING = (
    "Root cause has been pre-identified. Validate it, choose the minimal safe fix, and submit."
)


class Inspect(Action):
    """Read one evidence source of the sick stack: its logs, its serving config, the
    relevant code snippet, or its metrics. Costs 0.25."""

    type: Literal["inspect"] = "inspect"
    target: Target = Field(description="logs | config | snippet | metrics")


class AskSpecialist(Action):
    """Ask one specialist a follow-up question about their opinion. Costs 0.25."""

    type: Literal["ask_specialist"] = "ask_specialist"
    specialist: Specialist = Field(description="runtime | dispatch | kernel | loader")


class ApplyFix(Action):
    """Apply one fix to the live stack. Allowed once per episode; a wrong fix is
    penalised, so apply only what the evidence supports."""

    type: Literal["apply_fix"] = "apply_fix"
    fix: Fix


class SubmitDiagnosis(Action):
    """End the episode with your diagnosis: the root cause, the fix, and a short
    justification."""

    type: Literal["submit"] = "submit"
    root_cause: RootCause
    fix: Fix
    justification: str = Field(
        default="", max_length=MAX_JUSTIFICATION_CHARS, description="why, in one or two sentences"
    )


class SubmitRemediation(Action):
    """End the episode with your remediation: the fix, the evidence you inspected that
    supports it, and a short operational justification."""

    type: Literal["submit"] = "submit"
    fix: Fix
    evidence: list[Source] = Field(
        max_length=len(SOURCES),
        description="sources you inspected or asked that support the fix, e.g. ['logs']",
    )
    justification: str = Field(
        max_length=MAX_JUSTIFICATION_CHARS,
        description="20-280 characters quoting the facts you saw",
    )
    root_cause: str | None = Field(
        default=None, max_length=64, description="accepted and ignored in this mode"
    )


class SpecialistOpinion(BaseModel):
    """What one specialist says at the start of the episode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The root-cause family they blame; None when they see nothing wrong in their area.
    suspects: str | None
    confidence: float
    says: str


class StackDoctorObservation(Observation):
    """The incident as the agent sees it; ``text`` renders it for an LLM."""

    mode: str = "blind_diagnosis"
    #: Set only in ``root_cause_visible`` mode.
    known_root_cause: str | None = None
    ticket: str = ""
    hardware: str = ""
    model: str = ""
    backend: str = ""
    initial_log: str = ""
    initial_snippet: str = ""
    specialists: dict[str, SpecialistOpinion] = Field(default_factory=dict)
    #: Everything inspected or asked so far: source -> what it showed.
    findings: dict[str, str] = Field(default_factory=dict)
    #: What the last action returned (an inspect result, a follow-up, a fix outcome).
    last_result: str = ""
    steps_left: int = STEP_BUDGET
    fix_applied: str | None = None


M = TypeVar("M", bound=BaseModel)


def build_trusted(
    model_type: type[M], values: dict[str, Any], fields_set: set[str] | None = None
) -> M:
    """``model_type.model_construct(**values)`` without its per-field Python loop.

    For values the env produced itself, already of the declared types, with
    every field present. It sets exactly the instance state pydantic 2's
    ``model_construct`` sets, at a fifth of the cost: the env builds an
    observation per step, and this is the difference between ~3 and ~12 µs.
    The tests check the result equals a validated instance and survives a JSON
    round trip. Only for models without private attributes or post-init hooks.
    ``fields_set`` may be one set shared by many instances of a *frozen* model
    (pydantic only mutates it when a field is assigned, which frozen models refuse).
    """
    instance = model_type.__new__(model_type)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(
        instance, "__pydantic_fields_set__", set(values) if fields_set is None else fields_set
    )
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance
