"""Controlled experiments: specs, the parity check, presets and the resumable async runner.

>>> from stackgym.harness import load_spec, run_spec
>>> outcomes = run_spec(load_spec("quick"), "runs/demo")

See ``docs/harness.md``. Importing this package stays light; the runner
imports the openai client only when an LLM agent makes its first call.
"""

from stackgym.harness.experiment import (
    ExperimentOutcome,
    RunInterrupted,
    arun_experiment,
    arun_spec,
    run_experiment,
    run_spec,
)
from stackgym.harness.folder import ExperimentFolder, ExperimentRecord
from stackgym.harness.parity import ParityReport, check_parity
from stackgym.harness.plan import PlannedRun, plan_runs, run_id_for
from stackgym.harness.runner import Runner
from stackgym.harness.spec import ExperimentSpec, LoadedSpec, Suite, load_spec, preset_names

__all__ = [
    "ExperimentFolder",
    "ExperimentOutcome",
    "ExperimentRecord",
    "ExperimentSpec",
    "LoadedSpec",
    "ParityReport",
    "PlannedRun",
    "RunInterrupted",
    "Runner",
    "Suite",
    "arun_experiment",
    "arun_spec",
    "check_parity",
    "load_spec",
    "plan_runs",
    "preset_names",
    "run_experiment",
    "run_id_for",
    "run_spec",
]
