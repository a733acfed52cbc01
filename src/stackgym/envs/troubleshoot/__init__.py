"""The troubleshooting gym: find the pipeline bug behind a wrong metric (SPEC §4, seed 000 B).

Registers ``troubleshoot`` and its baselines (``oracle``, ``heuristic``,
``random``) with import-path strings and the catalog's sandbox ids only, so
listing environments stays cheap.
"""

from stackgym.core.agents import register_agent
from stackgym.core.registry import register
from stackgym.envs.troubleshoot.models import BUGS, sandbox_ids

register(
    "troubleshoot",
    "stackgym.envs.troubleshoot.env:TroubleshootEnv",
    description=(
        "Find the injected pipeline bug behind a wrong metric: query the app database (and "
        "the warehouse), compare with the billing provider's API, read the ETL log, submit "
        "a diagnosis (table, window, mechanism, source)."
    ),
    choices={"sandbox": sandbox_ids(), "bug": BUGS},
    metrics="stackgym.envs.troubleshoot.metrics:summarise",
)

register_agent(
    "troubleshoot",
    "oracle",
    "stackgym.envs.troubleshoot.baselines:OracleAgent",
    "reads the injected bug's diagnosis, gathers the minimal evidence, submits it",
)
register_agent(
    "troubleshoot",
    "heuristic",
    "stackgym.envs.troubleshoot.baselines:HeuristicAgent",
    "compares the source of truth with each database layer, reads the ETL log, submits",
)
register_agent(
    "troubleshoot",
    "random",
    "stackgym.envs.troubleshoot.baselines:RandomAgent",
    "random tool calls (and a random diagnosis) within the turn budget",
)
