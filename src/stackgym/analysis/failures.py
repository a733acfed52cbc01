"""Counting failures by taxonomy category, per condition and per model × condition."""

from __future__ import annotations

from collections import Counter

import numpy as np

from stackgym.analysis.aggregate import RunTable
from stackgym.analysis.summary import Category, TaxonomyExample, TaxonomyRow, TaxonomySummary
from stackgym.analysis.taxonomy import Taxonomy

#: Most frequent error texts shown per category.
EXAMPLES_PER_CATEGORY = 3
#: Characters of an error text kept in an example.
EXAMPLE_CHARS = 240


def _row(table: RunTable, mask: np.ndarray, **labels: str | None) -> TaxonomyRow:
    codes = table.category[mask & (table.category >= 0)]
    counts = np.bincount(codes, minlength=len(table.categories))
    return TaxonomyRow(
        **labels,
        failures=len(codes),
        counts={table.categories[i]: int(c) for i, c in enumerate(counts) if c},
    )


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= EXAMPLE_CHARS else line[: EXAMPLE_CHARS - 1] + "…"


def failure_summary(table: RunTable, taxonomy: Taxonomy) -> TaxonomySummary:
    """Failures per category overall, per condition, per model × condition, with examples."""
    everything = np.ones(len(table), dtype=bool)
    by_condition = []
    by_model_condition = []
    for c, condition in enumerate(table.conditions):
        in_condition = table.condition == c
        if in_condition.any():
            by_condition.append(_row(table, in_condition, condition=condition))
        for m, model in enumerate(table.models):
            mask = in_condition & (table.model == m)
            if mask.any():
                by_model_condition.append(_row(table, mask, condition=condition, model=model))
    examples: list[TaxonomyExample] = []
    raw: Counter[tuple[int, str, str | None]] = Counter()
    runs, rules, codes = table.runs, table.rules, table.category
    for index in np.flatnonzero(codes >= 0).tolist():
        error = runs[index].error
        if error:
            raw[(int(codes[index]), error, rules[index])] += 1
    texts: dict[int, Counter[tuple[str, str | None]]] = {}
    for (code, error, rule), count in raw.items():
        texts.setdefault(code, Counter())[(_one_line(error), rule)] += count
    for code, counter in sorted(texts.items()):
        # Most frequent first; ties in text order, so reports are reproducible.
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0][0], item[0][1] or ""))
        for (error, rule), count in ranked[:EXAMPLES_PER_CATEGORY]:
            examples.append(
                TaxonomyExample(
                    category=table.categories[code], rule=rule, count=count, error=error
                )
            )
    return TaxonomySummary(
        source=taxonomy.source,
        categories=[
            Category(id=c.id, label=c.label, description=c.description)
            for c in taxonomy.rules.categories
        ],
        total=_row(table, everything),
        by_condition=by_condition,
        by_model_condition=by_model_condition,
        examples=examples,
    )
