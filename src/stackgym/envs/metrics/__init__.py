"""The metrics environment: ORM app vs warehouse + dbt, on ARPU / churn / LTV.

Registers ``metrics`` and its baselines (``oracle``, ``heuristic``,
``random``). Only import-path strings and the catalog's sandbox ids are
needed here, so listing environments stays cheap.
"""

from stackgym.core.agents import register_agent
from stackgym.core.registry import register
from stackgym.envs.metrics.models import DRIFTS, LINT_POLICIES, TASKS
from stackgym.sandboxes.catalog import sandbox_ids

register(
    "metrics",
    "stackgym.envs.metrics.env:MetricsEnv",
    description=(
        "Compute a business metric (ARPU, churn, LTV) inside one architecture: a unified "
        "app with an ORM, or a replicated warehouse with dbt layers."
    ),
    choices={
        "sandbox": tuple(sandbox_ids()),
        "task": TASKS,
        "drift": DRIFTS,
        "lint": LINT_POLICIES,
    },
    metrics="stackgym.envs.metrics.rubric:summarise",
)

register_agent(
    "metrics",
    "oracle",
    "stackgym.envs.metrics.baselines:oracle",
    "reads the context files, writes the catalog's oracle answer",
)
register_agent(
    "metrics",
    "heuristic",
    "stackgym.envs.metrics.baselines:heuristic",
    "reads the context files, writes a plausible but naive answer",
)
register_agent(
    "metrics",
    "random",
    "stackgym.envs.metrics.baselines:random_agent",
    "random tool calls within the turn budget",
)
