"""Reading run folders into report sections, through :class:`ExperimentFolder`.

What a ``RUN_DIR`` may be:

* an **experiment folder** (``experiment.json``): experiment folders named on
  the command line are analysed *together*, as one section, and only if their
  settings match (everything the parity check compares, the env, the factor
  and the data snapshot; their conditions may differ). Otherwise they are
  refused with the differing settings named.
* a **suite folder** (``suite.json``), or any folder holding experiment
  folders below it: one section per experiment. Two suites given together
  join their same-named experiments (same rule: settings must match).
* a **results folder** (only ``results.jsonl``, as ``stackgym run --out``
  writes): reported on its own; without ``experiment.json`` nothing says
  what was planned.

Partial folders are fine: a report says what was planned and what is
missing. Corrupt lines of ``results.jsonl`` are named (file and line) and
skipped; records whose run id the experiment did not plan are named and left
out.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackgym.core.errors import ConfigError, DataError
from stackgym.core.jsonl import CorruptLine
from stackgym.core.results import RESULTS_FILE, RunOutcome
from stackgym.harness.folder import (
    EXPERIMENT_FILE,
    SUITE_FILE,
    ExperimentFolder,
    ExperimentRecord,
    read_suite,
)
from stackgym.harness.plan import design, run_id_for

#: At most this many run ids are listed where a report names missing or unplanned runs.
LISTED_IDS = 20


@dataclass
class LoadedExperiment:
    """One folder's runs, read once, with what its record says was planned."""

    folder: str
    name: str
    record: ExperimentRecord | None
    runs: list[RunOutcome]
    problems: list[CorruptLine] = field(default_factory=list)
    #: Earlier lines of retried runs (the last line of a run id is its result).
    superseded: int = 0
    #: Planned runs as (condition, task, model, repeat); None without experiment.json.
    planned: list[tuple[str, str | None, str, int]] | None = None
    #: Planned runs with no record, as (condition, task, model, repeat).
    missing: list[tuple[str, str | None, str, int]] = field(default_factory=list)
    #: Run ids recorded here that the experiment did not plan (left out).
    unplanned: list[str] = field(default_factory=list)
    suite: str | None = None

    @property
    def env_id(self) -> str | None:
        if self.record is not None:
            return self.record.spec.env
        return self.runs[0].env_id if self.runs else None

    def missing_ids(self) -> list[str]:
        return [run_id_for(self.name, c, t, m, r) for c, t, m, r in self.missing]


@dataclass
class Section:
    """Experiments analysed together: one experiment, or several with matching settings."""

    name: str
    experiments: list[LoadedExperiment]

    @property
    def records(self) -> list[ExperimentRecord]:
        return [e.record for e in self.experiments if e.record is not None]


@dataclass
class LoadedInput:
    """Everything a report reads: its sections, and folders a suite lists but lacks."""

    sources: list[str]
    sections: list[Section]
    #: Notes about the input as a whole (e.g. a suite's experiment never started).
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def bulk_load() -> Iterator[None]:
    """Read many records with the cyclic garbage collector paused, then freeze them.

    Building ~10^5 pydantic records that all stay alive makes Python's cyclic
    GC rescan the growing heap again and again (reading 100k run records took
    3.4 s of CPU with it on, 1.9 s paused). Run records hold no reference cycles, so
    nothing is lost by pausing it; ``gc.freeze()`` afterwards keeps later
    collections from walking them. :func:`release` undoes the freeze.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def release() -> None:
    """Return frozen objects to the collector (after a report no longer needs its runs)."""
    gc.unfreeze()


def _kind(path: Path) -> str:
    if (path / EXPERIMENT_FILE).is_file():
        return "experiment"
    if (path / SUITE_FILE).is_file():
        return "suite"
    if (path / RESULTS_FILE).is_file():
        return "results"
    if path.is_dir() and ExperimentFolder.discover(path):
        return "parent"
    return "none"


def read_experiment(path: str | os.PathLike[str], *, suite: str | None = None) -> LoadedExperiment:
    """Read one experiment folder (or a bare results folder)."""
    folder = ExperimentFolder(path)
    shown = str(path)
    record = folder.read() if folder.exists() else None
    results = folder.read_results(view=RunOutcome)
    if record is None:
        name = results.final[0].experiment if results.final else Path(path).name
        return LoadedExperiment(
            shown, name, None, results.final, results.problems, results.superseded, suite=suite
        )
    planned = list(design(record.spec))
    wanted = {run_id_for(record.name, *cell): cell for cell in planned}
    runs: list[RunOutcome] = []
    unplanned: list[str] = []
    for run in results.final:
        if wanted.pop(run.run_id, None) is not None:
            runs.append(run)
        else:
            unplanned.append(run.run_id)
    missing = list(wanted.values())  # what is left was planned and never recorded
    return LoadedExperiment(
        shown,
        record.name,
        record,
        runs,
        results.problems,
        results.superseded,
        planned,
        missing,
        unplanned,
        suite,
    )


def settings_of(record: ExperimentRecord) -> dict[str, Any]:
    """The settings that must match for two experiments to be analysed together."""
    spec = record.spec
    settings: dict[str, Any] = {
        "env": spec.env,
        "factor": spec.factor,
        "task_option": spec.task_option,
        "data_snapshot": record.data_snapshot,
    }
    settings.update(record.parity.shared)
    for name, level in record.parity.conditions.items():
        settings[f"condition {name} ({spec.factor})"] = level
    return settings


def setting_differences(experiments: list[LoadedExperiment]) -> list[str]:
    """Settings whose values differ between experiments (a condition only where both have it)."""
    settings = [settings_of(e.record) for e in experiments if e.record is not None]
    keys = sorted({k for s in settings for k in s})
    differences = []
    for key in keys:
        conditional = key.startswith("condition ")
        values = [
            (e.folder, s.get(key, None))
            for e, s in zip(experiments, settings, strict=True)
            if not conditional or key in s
        ]
        encoded = {json.dumps(v, sort_keys=True, default=str) for _, v in values}
        if len(encoded) > 1:
            shown = ", ".join(f"{folder}: {json.dumps(v, default=str)}" for folder, v in values)
            differences.append(f"{key} ({shown})")
    return differences


def _check_combinable(experiments: list[LoadedExperiment]) -> None:
    bare = [e.folder for e in experiments if e.record is None]
    if bare and len(experiments) > 1:
        raise ConfigError(
            f"cannot report {', '.join(bare)} together with other folders: "
            f"without {EXPERIMENT_FILE} nothing says which settings its runs used",
            "report a folder of `stackgym run --out` on its own",
        )
    if len(experiments) < 2:
        return
    differences = setting_differences(experiments)
    if differences:
        folders = ", ".join(f"{e.folder} ({e.name})" for e in experiments)
        raise ConfigError(
            f"refusing to mix experiments with different settings in one report ({folders}): "
            + "; ".join(differences),
            "report them separately (one `stackgym report` per folder), or re-run one of "
            "them with the other's settings",
        )


def load(paths: list[str | os.PathLike[str]]) -> LoadedInput:
    """Read every folder into sections (see the module docstring for the rules)."""
    if not paths:
        raise ConfigError("no run folder given", "e.g. `stackgym report runs/post1-validation`")
    direct: list[LoadedExperiment] = []
    grouped: dict[str, list[LoadedExperiment]] = {}
    bare: list[LoadedExperiment] = []
    notes: list[str] = []
    with bulk_load():
        for raw in paths:
            path = Path(raw)
            if not path.exists():
                raise DataError(f"run folder {raw} does not exist")
            kind = _kind(path)
            if kind == "experiment":
                direct.append(read_experiment(raw))
            elif kind == "results":
                bare.append(read_experiment(raw))
            elif kind == "suite":
                suite = read_suite(path)
                for name, relative in suite.experiments.items():
                    member = path / relative
                    if not (member / EXPERIMENT_FILE).is_file():
                        notes.append(
                            f"suite {suite.name} ({raw}) lists experiment {name!r}, "
                            f"but {member} holds no {EXPERIMENT_FILE} (it never started)"
                        )
                        continue
                    loaded = read_experiment(str(member), suite=suite.name)
                    grouped.setdefault(loaded.name, []).append(loaded)
            elif kind == "parent":
                for folder in ExperimentFolder.discover(path):
                    loaded = read_experiment(str(folder.root))
                    grouped.setdefault(loaded.name, []).append(loaded)
            else:
                raise DataError(
                    f"{raw} holds no {EXPERIMENT_FILE}, {SUITE_FILE} or {RESULTS_FILE}",
                    "give an experiment folder (`stackgym experiment run … --out DIR`), "
                    "a suite folder, or a results folder (`stackgym run … --out DIR`)",
                )
    sections: list[Section] = []
    if direct:
        names = list(dict.fromkeys(e.name for e in direct))
        _check_combinable(direct)
        sections.append(Section(" + ".join(names), direct))
    for name, members in grouped.items():
        _check_combinable(members)
        sections.append(Section(name, members))
    for loaded in bare:
        sections.append(Section(loaded.name, [loaded]))
    return LoadedInput([str(p) for p in paths], sections, notes)
