"""``report.md``: the summary rendered for people. Every number comes from the summary."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from stackgym.analysis.compare import describe_leave_one_out
from stackgym.analysis.summary import (
    Comparison,
    GroupRow,
    Rate,
    ReportSummary,
    SectionSummary,
    TaxonomyRow,
)

DASH = "–"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.1f}%"


def interval(rate: Rate) -> str:
    if rate.low is None or rate.high is None:
        return DASH
    return f"{100 * rate.low:.1f}–{100 * rate.high:.1f}%"


def fraction(rate: Rate) -> str:
    return f"{rate.passed}/{rate.judged}"


def with_rate(rate: Rate) -> str:
    return f"{fraction(rate)} ({pct(rate.rate)})"


def signed(value: float | None) -> str:
    return DASH if value is None else f"{value:+.1f}"


def p_value(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}"


def number(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def money(value: float | None) -> str:
    if value is None:
        return DASH
    return f"${value:.4f}" if abs(value) < 1 else f"${value:,.2f}"


def figure(value: float | None) -> str:
    """A metric value: 3 significant digits, integers as integers."""
    if value is None:
        return DASH
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}"
    return f"{value:.3g}"


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> list[str]:
    """A markdown table; ``align`` has one letter per column (l or r; default: l then r)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


RATE_HEADER = ("passed", "rate", "95% CI", "runs", "infra errors")
COST_HEADER = ("tokens/run", "cost/run", "cost/pass", "turns/run", "turns to pass")


def _rate_cells(row: GroupRow) -> list[str]:
    planned = f"{row.runs}/{row.planned}" if row.planned is not None else str(row.runs)
    return [
        fraction(row.pass_rate),
        pct(row.pass_rate.rate),
        interval(row.pass_rate),
        planned,
        str(row.infra_errors),
    ]


def _cost_cells(row: GroupRow) -> list[str]:
    cost_note = ""
    if row.cost_known_runs and row.cost_known_runs < row.completed:
        cost_note = f" ({row.cost_known_runs} known)"
    return [
        number(row.tokens_per_run, 0),
        money(row.cost_per_run) + cost_note,
        money(row.cost_per_pass),
        number(row.turns_per_run),
        number(row.turns_to_pass),
    ]


def _group_table(rows: list[GroupRow], keys: Sequence[str]) -> list[str]:
    header = [*keys, *RATE_HEADER, *COST_HEADER]
    body = [[getattr(r, k) or DASH for k in keys] + _rate_cells(r) + _cost_cells(r) for r in rows]
    return table(header, body, "l" * len(keys) + "r" * (len(header) - len(keys)))


def _settings(section: SectionSummary) -> list[str]:
    rows: list[tuple[str, str]] = [("env", section.env_id or DASH)]
    if section.factor:
        rows.append(("factor", section.factor))
    rows.append(
        (
            "conditions",
            ", ".join(
                name if level == name else f"{name} ({section.factor}={level})"
                for name, level in section.conditions.items()
            ),
        )
    )
    rows.append(("models", ", ".join(section.models)))
    rows.append(("tasks", ", ".join(section.tasks)))
    for key, value in section.settings.items():
        if key in ("models", "tasks") or value is None:
            continue  # unset settings (None) are in summary.json
        rows.append((key, value if isinstance(value, str) else json.dumps(value)))
    rows.append(("data snapshot", f"`{section.data_snapshot}`" if section.data_snapshot else DASH))
    if len(section.data_snapshots) > 1:
        rows.append(("data snapshots seen", ", ".join(f"`{s}`" for s in section.data_snapshots)))
    parity = {True: "ok", False: "broken", None: DASH}[section.parity_ok]
    rows.append(("parity", parity))
    return ["### Settings", "", *table(("setting", "value"), rows, "ll")]


def _runs(section: SectionSummary) -> list[str]:
    lines = ["### Runs", ""]
    header = (
        "experiment", "folder", "status", "planned", "recorded", "missing", "infra errors",
        "retried lines", "skipped lines", "stackgym",
    )  # fmt: skip
    rows = []
    for info in section.experiments:
        rows.append(
            [
                info.name,
                f"`{info.folder}`",
                info.status or "no experiment.json",
                DASH if info.planned is None else info.planned,
                info.recorded,
                DASH if info.planned is None else info.missing,
                info.infra_errors,
                info.superseded,
                len(info.problems),
                info.stackgym_version or DASH,
            ]
        )
    lines += table(header, rows, "lll" + "r" * (len(header) - 4) + "l")
    total_infra = section.overall.infra_errors
    if total_infra:
        lines += [
            f"{total_infra} run(s) ended in an infrastructure error (provider or harness "
            "failure): they are counted here and left out of every rate, mean and test.",
            "",
        ]
    for info in section.experiments:
        if info.missing:
            lines += [f"Missing runs of {info.name} (planned, not recorded):", ""]
            lines += table(
                ("condition", "task", "model", "missing"),
                [(m.condition, m.task or DASH, m.model, m.missing) for m in info.missing_by_cell],
                "lllr",
            )
            shown = ", ".join(f"`{i}`" for i in info.missing_ids)
            more = info.missing - len(info.missing_ids)
            lines += [f"Run ids: {shown}" + (f" and {more} more" if more > 0 else ""), ""]
        if info.unplanned:
            shown = ", ".join(f"`{i}`" for i in info.unplanned_ids)
            lines += [
                f"Left out of {info.name} (recorded, but not in its plan): {shown}"
                + (
                    f" and {info.unplanned - len(info.unplanned_ids)} more"
                    if info.unplanned > len(info.unplanned_ids)
                    else ""
                ),
                "",
            ]
        if info.problems:
            lines += [f"Skipped lines of {info.name}:", ""]
            lines += [f"- `{problem}`" for problem in info.problems] + [""]
    return lines


def _pass_rates(section: SectionSummary) -> list[str]:
    o = section.overall
    lines = [
        "### Pass rates",
        "",
        f"**Overall: {with_rate(o.pass_rate)}**, 95% CI {interval(o.pass_rate)}; "
        f"{o.runs} runs recorded, {o.infra_errors} infrastructure error(s). Rates are passes "
        "over judged runs with Wilson 95% intervals; costs and turns are per completed run.",
        "",
    ]
    blocks = [
        ("By condition", section.by_condition, ("condition",)),
        ("By model", section.by_model, ("model",)),
        ("By task", section.by_task, ("task",)),
        ("By model × condition", section.by_model_condition, ("model", "condition")),
        ("By task × condition", section.by_condition_task, ("task", "condition")),
    ]
    for title, rows, keys in blocks:
        if not rows:
            continue
        if keys == ("task",) and [r.task for r in rows] == ["-"]:
            continue
        if keys == ("task", "condition") and all(r.task == "-" for r in rows):
            continue
        lines += [f"#### {title}", "", *_group_table(rows, keys)]
    return lines


def _comparison(comparison: Comparison) -> list[str]:
    a, b = comparison.a, comparison.b
    lines = [f"#### {a} vs {b}", ""]
    header = (
        "model", a, b, "difference (points)", "95% CI", "Fisher p", "pairs", f"{a} only",
        f"{b} only", "McNemar p", "runs for 80% power",
    )  # fmt: skip
    rows = []
    for row in [*comparison.by_model, comparison.pooled]:
        paired = row.paired
        rows.append(
            [
                row.model if row.model is not None else "**all models**",
                with_rate(row.a),
                with_rate(row.b),
                signed(row.difference),
                (
                    f"{signed(row.difference_low)} to {signed(row.difference_high)}"
                    if row.difference_low is not None
                    else DASH
                ),
                p_value(row.fisher_p),
                paired.pairs if paired else DASH,
                paired.a_only if paired else DASH,
                paired.b_only if paired else DASH,
                p_value(paired.p_value) if paired else DASH,
                f"{row.runs_for_power:,}" if row.runs_for_power is not None else DASH,
            ]
        )
    lines += table(header, rows)
    s = comparison.stratified
    text = f"Pooled over models, stratified by model: {s.method}, p = {p_value(s.p)}"
    if s.cmh_p is not None and s.exact_p is not None:
        text += f"; CMH χ² = {s.cmh_statistic:.3f}, p = {p_value(s.cmh_p)}"
    if s.mh_odds_ratio is not None:
        text += f"; Mantel–Haenszel odds ratio {s.mh_odds_ratio:.3g}"
        if s.mh_low is not None and s.mh_high is not None:
            text += f" (95% CI {s.mh_low:.3g}–{s.mh_high:.3g})"
    if comparison.p_holm is not None:
        text += f"; Holm-adjusted over this section's comparisons p = {p_value(comparison.p_holm)}"
    text += "."
    if s.uninformative:
        text += (
            " Left out as uninformative (every run of both conditions passed, or every run "
            f"failed): {', '.join(s.uninformative)}."
        )
    if s.exact_note:
        text += f" {s.exact_note[0].upper()}{s.exact_note[1:]}."
    lines += [text, ""]
    lines += [f"Power: {comparison.power.text}.", ""]
    if comparison.leave_one_repeat_out:
        shown = describe_leave_one_out(comparison.leave_one_repeat_out)
        verdict = {
            True: "the sign of the difference held each time",
            False: "the sign of the difference did not hold",
            None: "fewer than two repeats: stability cannot be checked",
        }[comparison.sign_stable]
        lines += [f"Leave one repeat out: {shown}; {verdict}.", ""]
    lines += [f"Pairing: {comparison.pairing}.", ""]
    return lines


def _comparisons(section: SectionSummary) -> list[str]:
    if not section.comparisons:
        reason = (
            "a single condition"
            if len(section.conditions) < 2
            else "no condition pair with judged runs on both sides"
        )
        return ["### Comparisons", "", f"No comparison: {reason}.", ""]
    lines = [
        "### Comparisons",
        "",
        f"Each condition against {section.comparisons[0].a}; differences are in pass-rate "
        "points (A − B) with Newcombe 95% intervals.",
        "",
    ]
    for comparison in section.comparisons:
        lines += _comparison(comparison)
    return lines


def _taxonomy_rows(
    rows: list[TaxonomyRow], keys: Sequence[str], categories: list[str]
) -> list[list[Any]]:
    return [
        [getattr(r, k) or DASH for k in keys]
        + [r.failures]
        + [r.counts.get(c, 0) or DASH for c in categories]
        for r in rows
    ]


def _taxonomy(section: SectionSummary) -> list[str]:
    tax = section.taxonomy
    lines = ["### Failure taxonomy", ""]
    if not tax.total.failures:
        return [*lines, "No failed run.", ""]
    used = [c for c in tax.categories if tax.total.counts.get(c.id)]
    labels = [c.label for c in used]
    ids = [c.id for c in used]
    total = tax.total.failures
    lines += [
        f"{total} failed run(s) (infrastructure errors included, as their own category), "
        f"labelled by the rules in `{tax.source.rsplit('/', 1)[-1]}`: "
        + ", ".join(
            f"{c.label} {tax.total.counts[c.id]} ({100 * tax.total.counts[c.id] / total:.0f}%)"
            for c in used
        )
        + ".",
        "",
    ]
    lines += table(
        ("condition", "failures", *labels), _taxonomy_rows(tax.by_condition, ("condition",), ids)
    )
    lines += ["By model × condition:", ""]
    lines += table(
        ("model", "condition", "failures", *labels),
        _taxonomy_rows(tax.by_model_condition, ("model", "condition"), ids),
        "ll" + "r" * (len(labels) + 1),
    )
    if tax.examples:
        names = {c.id: c.label for c in tax.categories}
        lines += ["Most frequent errors per category:", ""]
        lines += table(
            ("category", "runs", "rule", "error"),
            [(names[e.category], e.count, e.rule or DASH, f"`{e.error}`") for e in tax.examples],
            "lrll",
        )
    return lines


def _surfaces(section: SectionSummary) -> list[str]:
    surfaces = section.surfaces
    if surfaces is None:
        return []
    lines = ["### Tool use and surfaces", ""]
    if surfaces.reads:
        lines += ["Reads per run by layer (mean; share of runs reading the layer at all):", ""]
        lines += table(
            ("condition", "runs", *surfaces.layers),
            [
                [r.condition, r.runs]
                + [
                    f"{r.mean_reads[layer]:.2f} ({100 * r.share_reading[layer]:.0f}%)"
                    for layer in surfaces.layers
                ]
                for r in surfaces.reads
            ],
        )
    if surfaces.surfaces:
        lines += [
            "Surfaces touched: the share of runs that read the app/ORM side, the warehouse/dbt "
            "side, and both (the cross-layer traversal rate)"
            + (f"; the realistic comparator is {surfaces.realistic}" if surfaces.realistic else "")
            + ":",
            "",
        ]
        lines += table(
            (
                "condition",
                "model",
                "runs",
                "app/ORM surface",
                "warehouse/dbt surface",
                "both (cross-layer)",
            ),
            [
                (
                    s.condition + (" (realistic)" if s.condition == surfaces.realistic else ""),
                    s.model or "**all models**",
                    s.runs,
                    f"{pct(s.app.rate)} [{interval(s.app)}]",
                    f"{pct(s.warehouse.rate)} [{interval(s.warehouse)}]",
                    f"{pct(s.both.rate)} [{interval(s.both)}]",
                )
                for s in surfaces.surfaces
            ],
            "llrrrr",
        )
    return lines


def _env_metrics(section: SectionSummary) -> list[str]:
    metrics = section.env_metrics
    if metrics is None or not metrics.metrics:
        return []
    conditions = list(metrics.by_condition)
    lines = [
        f"### Environment metrics ({metrics.env_id})",
        "",
        f"Per condition, over completed runs, as the env's summariser `{metrics.summariser}` "
        "defines them." + (f" Note: {metrics.note}." if metrics.note else ""),
        "",
    ]
    lines += table(
        ("metric", *conditions),
        [
            [m] + [figure(metrics.by_condition[c].get(m)) for c in conditions]
            for m in metrics.metrics
        ],
    )
    return lines


def _gates(section: SectionSummary) -> list[str]:
    lines = ["### Decision gate", ""]
    if not section.gates:
        return [*lines, "The experiment spec sets no gate.", ""]
    for gate in section.gates:
        verdict = "PASS" if gate.passed else "FAIL"
        lines += [
            f"**{verdict}**: {gate.orm} vs the fair comparator {gate.dbt_fair}"
            + (f" and the realistic one {gate.dbt_realistic}" if gate.dbt_realistic else "")
            + f"; minimum advantage {gate.min_advantage:g} points, α = {gate.alpha:g}, "
            + ("stability required" if gate.require_stable else "stability not required")
            + ".",
            "",
        ]
        lines += table(
            ("criterion", "result", "reason"),
            [(c.title, "PASS" if c.passed else "FAIL", c.reason) for c in gate.criteria],
            "lll",
        )
    return lines


def _charts(section: SectionSummary) -> list[str]:
    if not section.charts:
        return []
    lines = ["### Charts", ""]
    for name, path in section.charts.items():
        lines += [f"![{name}]({path})", ""]
    return lines


def render_section(section: SectionSummary) -> list[str]:
    lines = [f"## {section.name}", ""]
    if section.notes:
        lines += [f"> **Note:** {note}." for note in section.notes] + [""]
    lines += _settings(section)
    lines += _runs(section)
    lines += _pass_rates(section)
    lines += _comparisons(section)
    lines += _taxonomy(section)
    lines += _surfaces(section)
    lines += _env_metrics(section)
    lines += _gates(section)
    lines += _charts(section)
    return lines


def render(summary: ReportSummary) -> str:
    """The whole ``report.md``."""
    sources = ", ".join(f"`{s}`" for s in summary.sources)
    lines = [
        "# stackgym report",
        "",
        f"Runs read from {sources} (stackgym {summary.stackgym_version}). Every number below "
        "is also in `summary.json`. Infrastructure errors are reported, never counted as a "
        "model failing a task.",
        "",
    ]
    lines += [f"> **Note:** {note}." for note in summary.notes] + ([""] if summary.notes else [])
    if len(summary.sections) > 1:
        lines += ["Sections: " + ", ".join(s.name for s in summary.sections) + ".", ""]
    for section in summary.sections:
        lines += render_section(section)
    return "\n".join(lines).rstrip("\n") + "\n"
