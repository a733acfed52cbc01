"""Building a report: run folders in, ``report.md`` + ``summary.json`` + charts out.

>>> from stackgym.analysis import build_report, write_report
>>> summary = write_report(["runs/post1-validation"], "runs/post1-validation/report")

:func:`build_report` only computes (:class:`ReportSummary`); :func:`write_report`
also writes the files. Reports are deterministic: the same folders give
byte-identical ``report.md`` and ``summary.json`` (and PNGs).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from stackgym.analysis.aggregate import RunTable, env_metrics, group_rows
from stackgym.analysis.compare import comparisons
from stackgym.analysis.failures import failure_summary
from stackgym.analysis.gate import Comparators, GateContext, evaluate_gate, load_comparators
from stackgym.analysis.load import LISTED_IDS, LoadedExperiment, Section, load, release
from stackgym.analysis.summary import (
    ExperimentInfo,
    MissingCell,
    ReportSummary,
    SectionSummary,
)
from stackgym.analysis.surfaces import surface_summary
from stackgym.analysis.taxonomy import Taxonomy, load_taxonomy
from stackgym.harness.spec import Gate

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
CHARTS_DIR = "charts"
#: A comparison's p-values use this level when no gate sets one.
DEFAULT_ALPHA = 0.05


@dataclass
class AnalysedSection:
    """A section's summary and the run table it came from (charts draw from both)."""

    summary: SectionSummary
    table: RunTable


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "section"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    taken.add(slug)
    return slug


def _experiment_info(loaded: LoadedExperiment) -> ExperimentInfo:
    record = loaded.record
    cells: dict[tuple[str, str | None, str], int] = {}
    for condition, task, model, _ in loaded.missing:
        cells[(condition, task, model)] = cells.get((condition, task, model), 0) + 1
    return ExperimentInfo(
        name=loaded.name,
        folder=loaded.folder,
        suite=loaded.suite,
        source=record.source if record else None,
        status=record.status if record else None,
        spec_hash=record.spec_hash if record else None,
        stackgym_version=record.stackgym_version if record else None,
        started_at=record.started_at.isoformat() if record else None,
        finished_at=record.finished_at.isoformat() if record and record.finished_at else None,
        planned=len(loaded.planned) if loaded.planned is not None else None,
        recorded=len(loaded.runs),
        infra_errors=sum(r.status == "infra_error" for r in loaded.runs),
        missing=len(loaded.missing),
        missing_ids=loaded.missing_ids()[:LISTED_IDS],
        missing_by_cell=[
            MissingCell(condition=c, task=t, model=m, missing=n) for (c, t, m), n in cells.items()
        ],
        unplanned=len(loaded.unplanned),
        unplanned_ids=loaded.unplanned[:LISTED_IDS],
        superseded=loaded.superseded,
        problems=[str(p) for p in loaded.problems],
    )


def _notes(infos: list[ExperimentInfo], table: RunTable) -> list[str]:
    notes: list[str] = []
    for info in infos:
        where = f"{info.name} ({info.folder})"
        if info.planned is None:
            notes.append(
                f"{where} has no experiment.json: nothing says what was planned, so missing "
                "runs cannot be named and no gate is evaluated"
            )
        if info.status not in (None, "finished"):
            notes.append(f"{where} is {info.status}: the experiment did not finish")
        if info.planned is not None and info.missing:
            notes.append(
                f"{where}: {info.recorded} of {info.planned} planned runs recorded; "
                f"{info.missing} missing (listed under Runs)"
            )
        if info.recorded == 0:
            notes.append(f"{where} has no run recorded yet")
        if info.unplanned:
            notes.append(
                f"{where}: {info.unplanned} recorded run(s) are not in the experiment's plan and "
                "were left out"
            )
        if info.problems:
            notes.append(
                f"{where}: {len(info.problems)} line(s) of results.jsonl could not be read and "
                "were skipped (listed under Runs)"
            )
    if len(table) and not table.judged.any():
        notes.append("no run was judged pass/fail: there are no pass rates to report")
    return notes


def _gates(section: Section) -> list[Gate]:
    seen: dict[str, Gate] = {}
    for record in section.records:
        if record.spec.gate is not None:
            seen.setdefault(record.spec.gate.model_dump_json(), record.spec.gate)
    return list(seen.values())


def analyse_section(
    section: Section, slug: str, taxonomy: Taxonomy, comparators: Comparators
) -> AnalysedSection:
    """Every table of one section (charts are drawn separately)."""
    table = RunTable.build(section, taxonomy)
    records = section.records
    first = records[0] if records else None
    env_id = first.spec.env if first else section.experiments[0].env_id
    factor = first.spec.factor if first else None
    levels: dict[str, object] = {}
    for record in records:
        for name, level in record.parity.conditions.items():
            levels.setdefault(name, level)
    levels = {c: levels.get(c, c) for c in table.conditions}
    snapshots = sorted({r.data_snapshot for r in table.runs if r.data_snapshot is not None})
    declared = sorted({r.data_snapshot for r in records if r.data_snapshot is not None})
    gates = _gates(section)
    alpha = gates[0].alpha if gates else DEFAULT_ALPHA
    reference = table.conditions[0] if table.conditions else ""
    if gates and gates[0].orm in table.conditions:
        reference = gates[0].orm
    compared = comparisons(table, reference, alpha)
    realistic = gates[0].dbt_realistic if gates else None
    surfaces = surface_summary(table, realistic)
    infos = [_experiment_info(e) for e in section.experiments]
    notes = _notes(infos, table)
    if len(snapshots) > 1:
        notes.append(f"runs read {len(snapshots)} different data snapshots: {', '.join(snapshots)}")
    parity_ok = all(r.parity.ok for r in records) if records else None
    context = GateContext(
        env_id=env_id,
        factor=factor,
        levels=levels,
        parity_ok=parity_ok,
        surfaces=surfaces,
        comparisons=compared,
        comparators=comparators,
    )
    summary = SectionSummary(
        name=section.name,
        slug=slug,
        env_id=env_id,
        factor=factor,
        conditions=levels,
        models=table.models,
        tasks=table.tasks,
        settings=dict(first.parity.shared) if first else {},
        parity_ok=parity_ok,
        data_snapshot=(declared[0] if len(declared) == 1 else None)
        or (snapshots[0] if len(snapshots) == 1 else None),
        data_snapshots=snapshots,
        experiments=infos,
        notes=notes,
        overall=group_rows(table)[0],
        by_condition=group_rows(table, ("condition",)),
        by_model=group_rows(table, ("model",)),
        by_task=group_rows(table, ("task",)),
        by_model_condition=group_rows(table, ("model", "condition")),
        by_condition_task=group_rows(table, ("condition", "task")),
        by_model_condition_task=group_rows(table, ("model", "condition", "task")),
        comparisons=compared,
        taxonomy=failure_summary(table, taxonomy),
        surfaces=surfaces,
        env_metrics=env_metrics(table, env_id),
        gates=[evaluate_gate(gate, table, context) for gate in gates],
    )
    return AnalysedSection(summary, table)


def build_report(
    paths: list[str | os.PathLike[str]],
    *,
    taxonomy: Taxonomy | None = None,
    comparators: Comparators | None = None,
) -> tuple[ReportSummary, list[AnalysedSection]]:
    """Read the folders and compute every section (no files written)."""
    try:
        return _analyse(paths, taxonomy, comparators)
    finally:
        release()


def _analyse(
    paths: list[str | os.PathLike[str]],
    taxonomy: Taxonomy | None,
    comparators: Comparators | None,
) -> tuple[ReportSummary, list[AnalysedSection]]:
    """:func:`build_report`, leaving the records frozen (see ``load.bulk_load``)."""
    taxonomy = taxonomy or load_taxonomy()
    comparators = comparators or load_comparators()
    loaded = load(list(paths))
    taken: set[str] = set()
    analysed = [
        analyse_section(section, _slug(section.name, taken), taxonomy, comparators)
        for section in loaded.sections
    ]
    summary = ReportSummary(
        sources=loaded.sources, notes=loaded.notes, sections=[a.summary for a in analysed]
    )
    return summary, analysed


def write_report(
    paths: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    taxonomy: Taxonomy | None = None,
    comparators: Comparators | None = None,
    charts: bool = True,
) -> ReportSummary:
    """Write ``report.md``, ``summary.json`` and (unless ``charts`` is False) PNG charts."""
    from stackgym.analysis.markdown import render

    out = Path(out)
    try:
        summary, analysed = _analyse(paths, taxonomy, comparators)
        out.mkdir(parents=True, exist_ok=True)
        if charts:
            from stackgym.analysis.charts import draw_section

            for section in analysed:
                section.summary.charts = draw_section(
                    section.summary, section.table, out / CHARTS_DIR / section.summary.slug, out
                )
        del analysed
    finally:
        release()
    _write_atomic(out / SUMMARY_FILE, summary.model_dump_json(indent=2) + "\n")
    _write_atomic(out / REPORT_FILE, render(summary))
    return summary


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_summary(path: str | os.PathLike[str]) -> ReportSummary:
    """Read a report's ``summary.json`` back (a folder or the file)."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    return ReportSummary.model_validate(json.loads(path.read_text()))
