"""PNG charts of a report section, drawn with matplotlib's Agg backend.

* ``pass-rate-matrix.png``: pass rate per model (rows) and condition × task
  (columns), each cell annotated ``passed/judged``;
* ``condition-pass-rates.png``: each condition's pass rate with its Wilson
  95 % interval;
* ``model-outcomes.png``: per model, one stacked bar per condition: the
  share of runs that passed, failed in each taxonomy category, or hit an
  infrastructure error;
* ``cost-vs-pass-rate.png``: pass rate against cost per run (tokens per run,
  or turns per run, when no cost is recorded), one point per model ×
  condition, with the frontier of the best pass rate for the money.

Figures are built without pyplot (no global state) under matplotlib's
default style, and saved without the "Software" metadata, so the same
summary draws byte-identical PNGs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from stackgym.analysis.aggregate import RunTable
from stackgym.analysis.summary import GroupRow, SectionSummary

DPI = 100
#: Longest tick label; model ids such as ``openrouter:x-ai/grok-code-fast-1`` are shortened.
LABEL_CHARS = 28
#: Colours of outcomes in the stacked bars (passed, infra); failures use a sequential map.
PASSED_COLOUR = "#2e7d32"
INFRA_COLOUR = "#9e9e9e"
#: Failure categories (no green: that is "passed"; no grey: that is "infra error").
FAILURE_COLOURS = ("#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                   "#17becf", "#393b79", "#ad494a")  # fmt: skip
#: One hatch per condition in the stacked bars.
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")


def _label(text: str) -> str:
    text = text.split(":", 1)[1] if ":" in text and not text.startswith("http") else text
    return text if len(text) <= LABEL_CHARS else "…" + text[-(LABEL_CHARS - 1) :]


def _spread(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Error bar lengths below and above each value (never negative)."""
    return np.clip(np.vstack([values - low, high - values]), 0.0, None)


def _figure(width: float, height: float):  # -> Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> None:  # figure: Figure
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})


def draw_section(
    summary: SectionSummary, table: RunTable, folder: Path, report_root: Path
) -> dict[str, str]:
    """Draw every chart the section has data for; chart name -> path relative to the report."""
    import matplotlib

    if not summary.by_condition or not any(r.pass_rate.judged for r in summary.by_condition):
        return {}
    drawn: dict[str, str] = {}
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # the user's matplotlibrc must not change the PNGs
        matplotlib.rcParams["svg.hashsalt"] = "stackgym"
        for name, file, draw in (
            ("pass-rate matrix", "pass-rate-matrix.png", _matrix),
            ("condition pass rates", "condition-pass-rates.png", _conditions),
            ("per-model outcomes", "model-outcomes.png", _model_outcomes),
            ("cost vs pass rate", "cost-vs-pass-rate.png", _cost_curve),
        ):
            path = folder / file
            if draw(summary, table, path):
                drawn[name] = Path(os.path.relpath(path, report_root)).as_posix()
    return drawn


def _matrix(summary: SectionSummary, table: RunTable, path: Path) -> bool:
    conditions, models, tasks = table.conditions, table.models, table.tasks
    columns = [(c, t) for c in conditions for t in tasks]
    cells = {(r.model, r.condition, r.task): r for r in summary.by_model_condition_task}
    values = np.full((len(models), len(columns)), np.nan)
    notes = [["" for _ in columns] for _ in models]
    for i, model in enumerate(models):
        for j, (condition, task) in enumerate(columns):
            row = cells.get((model, condition, task))
            if row is not None and row.pass_rate.judged:
                values[i, j] = row.pass_rate.rate
                notes[i][j] = f"{row.pass_rate.passed}/{row.pass_rate.judged}"
    width = min(2.5 + 1.1 * len(columns), 40)
    height = min(1.8 + 0.5 * len(models), 30)
    figure = _figure(width, height)
    axes = figure.add_subplot()
    image = axes.imshow(
        np.ma.masked_invalid(values), cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto"
    )
    axes.set_facecolor("#eeeeee")
    one_task = len(tasks) == 1
    axes.set_xticks(
        range(len(columns)),
        [_label(c) if one_task else f"{_label(c)}\n{t}" for c, t in columns],
        rotation=30 if len(columns) > 4 else 0,
        ha="right" if len(columns) > 4 else "center",
        fontsize=8,
    )
    axes.set_yticks(range(len(models)), [_label(m) for m in models], fontsize=8)
    if len(columns) <= 60 and len(models) <= 40:
        for i in range(len(models)):
            for j in range(len(columns)):
                if notes[i][j]:
                    # White on the dark ends of the colour map, black in the light middle.
                    dark = not 0.2 <= values[i, j] <= 0.8
                    colour = "white" if dark else "black"
                    axes.text(j, i, notes[i][j], ha="center", va="center", fontsize=7, color=colour)
    for boundary in range(1, len(conditions)):
        axes.axvline(boundary * len(tasks) - 0.5, color="black", linewidth=1.2)
    figure.colorbar(image, ax=axes, label="pass rate", fraction=0.04)
    axes.set_title(f"{summary.name}: pass rate by model, condition and task", fontsize=10)
    figure.tight_layout()
    _save(figure, path)
    return True


def _conditions(summary: SectionSummary, table: RunTable, path: Path) -> bool:
    rows = [r for r in summary.by_condition if r.pass_rate.judged]
    rates = np.array([r.pass_rate.rate for r in rows], dtype=float)
    low = np.array([r.pass_rate.low for r in rows], dtype=float)
    high = np.array([r.pass_rate.high for r in rows], dtype=float)
    figure = _figure(min(2.5 + 1.2 * len(rows), 30), 4.2)
    axes = figure.add_subplot()
    positions = np.arange(len(rows))
    axes.bar(positions, rates, color="#4c72b0", width=0.6)
    axes.errorbar(
        positions, rates, yerr=_spread(rates, low, high), fmt="none", ecolor="black", capsize=5
    )
    for x, row in zip(positions, rows, strict=True):
        axes.text(
            x,
            float(row.pass_rate.high or 0) + 0.02,
            f"{row.pass_rate.passed}/{row.pass_rate.judged}",
            ha="center",
            fontsize=8,
        )
    axes.set_xticks(
        positions,
        [_label(r.condition or "-") for r in rows],
        rotation=20 if len(rows) > 3 else 0,
        ha="right" if len(rows) > 3 else "center",
        fontsize=8,
    )
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("pass rate (Wilson 95% CI)")
    axes.set_title(f"{summary.name}: pass rate by condition", fontsize=10)
    figure.tight_layout()
    _save(figure, path)
    return True


def _model_outcomes(summary: SectionSummary, table: RunTable, path: Path) -> bool:
    from matplotlib.patches import Patch

    models, conditions = table.models, table.conditions
    size = (len(models), len(conditions))
    flat = np.ravel_multi_index([table.model, table.condition], size)
    runs = np.bincount(flat, minlength=int(np.prod(size))).reshape(size).astype(float)
    share = np.divide(1.0, runs, out=np.zeros_like(runs), where=runs > 0)

    def shares(mask: np.ndarray) -> np.ndarray:
        return np.bincount(flat[mask], minlength=int(np.prod(size))).reshape(size) * share

    labels = {c.id: c.label for c in summary.taxonomy.categories}
    segments: list[tuple[str, str, np.ndarray]] = [("passed", PASSED_COLOUR, shares(table.passed))]
    # Colours follow the rules file's category order, so a category keeps its colour.
    failures = [c for c in table.categories if c != "infra_error"]
    for number, category in enumerate(failures):
        mask = table.category == table.categories.index(category)
        if mask.any():
            colour = FAILURE_COLOURS[number % len(FAILURE_COLOURS)]
            segments.append((labels.get(category, category), colour, shares(mask)))
    if "infra_error" in table.categories:
        infra = table.category == table.categories.index("infra_error")
        if infra.any():
            segments.append((labels.get("infra_error", "infra error"), INFRA_COLOUR, shares(infra)))
    unjudged = table.completed & ~table.judged
    if unjudged.any():
        segments.append(("not judged", "#ffffff", shares(unjudged)))
    width = 0.8 / max(len(conditions), 1)
    figure = _figure(min(3.5 + 0.8 * len(models) * len(conditions), 40), 4.8)
    axes = figure.add_subplot()
    base = np.arange(len(models))
    for j in range(len(conditions)):
        positions = base - 0.4 + width * (j + 0.5)
        bottom = np.zeros(len(models))
        for label, colour, values in segments:
            axes.bar(
                positions,
                values[:, j],
                width=width * 0.92,
                bottom=bottom,
                color=colour,
                edgecolor="black",
                linewidth=0.4,
                hatch=HATCHES[j % len(HATCHES)],
                label=label if j == 0 else None,
            )
            bottom += values[:, j]
    handles, _ = axes.get_legend_handles_labels()
    if len(conditions) > 1:
        handles += [
            Patch(facecolor="white", edgecolor="black", hatch=HATCHES[j % len(HATCHES)],
                  label=_label(condition))
            for j, condition in enumerate(conditions)
        ]  # fmt: skip
    axes.set_xticks(base, [_label(m) for m in models], fontsize=8)
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("share of runs")
    axes.set_title(
        f"{summary.name}: outcomes per model"
        + (" (one bar per condition)" if len(conditions) > 1 else ""),
        fontsize=10,
    )
    axes.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    _save(figure, path)
    return True


def _cost_axis(rows: list[GroupRow]) -> tuple[str, list[float | None]]:
    if any(r.cost_per_run is not None for r in rows):
        return "cost per run (USD)", [r.cost_per_run for r in rows]
    if any(r.tokens_per_run for r in rows):
        return "tokens per run (no cost recorded)", [r.tokens_per_run for r in rows]
    return "turns per run (no cost or tokens recorded)", [r.turns_per_run for r in rows]


def _cost_curve(summary: SectionSummary, table: RunTable, path: Path) -> bool:
    from matplotlib import colormaps

    rows = [r for r in summary.by_model_condition if r.pass_rate.judged]
    label, xs = _cost_axis(rows)
    points = [(x, r) for x, r in zip(xs, rows, strict=True) if x is not None]
    if not points:
        return False
    palette = colormaps["tab10"]
    figure = _figure(7.5, 4.8)
    axes = figure.add_subplot()
    for number, condition in enumerate(table.conditions):
        mine = [(x, r) for x, r in points if r.condition == condition]
        if not mine:
            continue
        x = np.array([p[0] for p in mine], dtype=float)
        y = np.array([p[1].pass_rate.rate for p in mine], dtype=float)
        low = np.array([p[1].pass_rate.low for p in mine], dtype=float)
        high = np.array([p[1].pass_rate.high for p in mine], dtype=float)
        axes.errorbar(
            x, y, yerr=_spread(y, low, high), fmt="o", color=palette(number % 10),
            capsize=3, label=_label(condition), alpha=0.85,
        )  # fmt: skip
        if len(mine) <= 30:
            for xi, (_, row) in zip(x, mine, strict=True):
                axes.annotate(
                    _label(row.model or "")[:16], (xi, row.pass_rate.rate), fontsize=6,
                    xytext=(4, 4), textcoords="offset points",
                )  # fmt: skip
    # The frontier: the best pass rate reachable at or below each cost.
    ordered = sorted(points, key=lambda p: (p[0], -(p[1].pass_rate.rate or 0.0)))
    frontier_x, frontier_y, best = [], [], -1.0
    for x, row in ordered:
        rate = row.pass_rate.rate or 0.0
        if rate > best:
            frontier_x.append(x)
            frontier_y.append(rate)
            best = rate
    axes.step(frontier_x, frontier_y, where="post", color="black", linestyle="--", linewidth=1,
              label="best pass rate for the cost")  # fmt: skip
    axes.set_xlabel(label)
    axes.set_ylabel("pass rate (Wilson 95% CI)")
    axes.set_ylim(-0.02, 1.05)
    axes.set_title(f"{summary.name}: pass rate against cost (model × condition)", fontsize=10)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    _save(figure, path)
    return True
