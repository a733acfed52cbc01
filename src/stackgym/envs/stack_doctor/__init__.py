"""Stack Doctor: diagnose and fix a sick inference stack (SPEC §5, seed 001).

Registered with import-path strings only, so listing environments stays cheap.
"""

from stackgym.core.agents import register_agent
from stackgym.core.registry import register

register(
    "stack_doctor",
    "stackgym.envs.stack_doctor.env:StackDoctorEnv",
    description=(
        "Incident triage of an inference stack: inspect evidence, weigh four specialists "
        "(some wrong in blind mode), apply one fix, submit. Modes: blind_diagnosis "
        "(find the root cause) and root_cause_visible (validate it, fix it, justify it)."
    ),
    choices={"mode": ("blind_diagnosis", "root_cause_visible"), "split": ("train", "eval")},
    metrics="stackgym.envs.stack_doctor.metrics:summarise",
)

register_agent(
    "stack_doctor",
    "oracle",
    "stackgym.envs.stack_doctor.baselines:OracleAgent",
    "reads the hidden answer: minimal evidence, correct fix, grounded justification",
)
register_agent(
    "stack_doctor",
    "heuristic",
    "stackgym.envs.stack_doctor.baselines:HeuristicAgent",
    "inspects, matches symptoms to families, weighs specialists against the evidence",
)
register_agent(
    "stack_doctor",
    "random",
    "stackgym.envs.stack_doctor.baselines:RandomAgent",
    "a uniformly random valid action each step",
)
