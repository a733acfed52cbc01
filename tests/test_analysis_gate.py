"""The decision gate and combining experiments: PASS/FAIL per criterion, mixing refused or allowed."""

from __future__ import annotations

import pytest
import yaml

from analysis_folders import (
    DRIZZLE,
    FAIR,
    PANEL,
    REALISTIC,
    TASKS,
    pattern_runs,
    spec_data,
    write_experiment,
)
from stackgym.analysis import build_report, load_comparators, write_report
from stackgym.core import ConfigError


def pregate_data(**changes):
    data = spec_data(name="dbt-realistic-pregate", conditions=[DRIZZLE, REALISTIC])
    data.pop("gate")
    data.update(changes)
    return data


@pytest.fixture
def strong(tmp_path):
    """The ORM side passes 4 of 5 repeats, fair dbt 1 of 5, realistic dbt 2 of 5."""
    post1 = tmp_path / "post1"
    pregate = tmp_path / "pregate"
    write_experiment(post1, spec_data(), pattern_runs("post1-validation", {DRIZZLE: 4, FAIR: 1}))
    write_experiment(
        pregate,
        pregate_data(),
        pattern_runs("dbt-realistic-pregate", {DRIZZLE: 4, REALISTIC: 2}, cross={REALISTIC}),
    )
    return post1, pregate


def criteria(summary) -> dict:
    (section,) = summary.sections
    (gate,) = section.gates
    return gate, {c.id: c for c in gate.criteria}


def test_the_gate_passes_when_every_criterion_holds(strong, tmp_path):
    post1, pregate = strong
    summary = write_report([post1, pregate], tmp_path / "report", charts=False)
    gate, verdicts = criteria(summary)
    assert all(c.passed for c in verdicts.values()), [c.reason for c in verdicts.values()]
    assert gate.passed
    assert "+60.0 points" in verdicts["advantage_reproduced"].reason
    assert "stays positive with each repeat left out" in verdicts["stable_across_runs"].reason
    assert "warehouse-dbt-fair" in verdicts["fair_comparator"].reason
    interpretation = gate.realistic_interpretation
    assert (
        "+40.0 points" in interpretation
        and "against +60.0 with the fair comparator" in interpretation
    )
    assert "materially changes" in interpretation and "-20.0 points" in interpretation
    assert "100.0% of its runs touched both" in interpretation
    text = (tmp_path / "report" / "report.md").read_text()
    assert (
        "**PASS**" in text and "| ORM advantage reproduced under matched settings | PASS |" in text
    )


def test_experiments_with_matching_settings_are_analysed_together(strong):
    post1, pregate = strong
    summary, _ = build_report([post1, pregate])
    (section,) = summary.sections
    assert section.name == "post1-validation + dbt-realistic-pregate"
    assert list(section.conditions) == [DRIZZLE, FAIR, REALISTIC]
    drizzle = next(r for r in section.by_condition if r.condition == DRIZZLE)
    assert drizzle.runs == 90 and drizzle.planned == 90 and drizzle.pass_rate.passed == 72
    assert [(c.a, c.b) for c in section.comparisons] == [(DRIZZLE, FAIR), (DRIZZLE, REALISTIC)]
    realistic = next(
        s for s in section.surfaces.surfaces if s.condition == REALISTIC and s.model is None
    )
    assert realistic.both.rate == 1.0 and section.surfaces.realistic == REALISTIC


def test_experiments_with_different_settings_are_refused_naming_the_settings(tmp_path, strong):
    post1, _ = strong
    other = tmp_path / "other"
    write_experiment(
        other,
        pregate_data(max_turns=20),
        pattern_runs("dbt-realistic-pregate", {DRIZZLE: 1, REALISTIC: 1}),
    )
    with pytest.raises(ConfigError) as caught:
        build_report([post1, other])
    message = caught.value.message
    assert "refusing to mix" in message and "max_turns" in message
    assert f"{post1}: 10" in message and f"{other}: 20" in message
    assert "report them separately" in caught.value.hint


def test_experiments_on_different_data_snapshots_are_refused(tmp_path, strong):
    post1, _ = strong
    other = tmp_path / "other"
    write_experiment(
        other, pregate_data(), pattern_runs("dbt-realistic-pregate", {DRIZZLE: 1, REALISTIC: 1}),
        snapshot="snap-other",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="data_snapshot"):
        build_report([post1, other])


def test_a_comparator_not_documented_as_fair_fails_that_criterion(tmp_path):
    data = spec_data(conditions=[DRIZZLE, "warehouse-dbt"])
    data["gate"]["dbt_fair"] = "warehouse-dbt"
    write_experiment(
        tmp_path / "x", data, pattern_runs("post1-validation", {DRIZZLE: 4, "warehouse-dbt": 0})
    )
    summary, _ = build_report([tmp_path / "x"])
    gate, verdicts = criteria(summary)
    assert verdicts["advantage_reproduced"].passed and not verdicts["fair_comparator"].passed
    assert (
        "sandbox=warehouse-dbt of env 'metrics', which is not a documented fair"
        in verdicts["fair_comparator"].reason
    )
    assert "(documented: warehouse-dbt-fair)" in verdicts["fair_comparator"].reason
    assert not gate.passed


def test_a_comparators_file_can_document_another_fair_comparator(tmp_path):
    data = spec_data(conditions=[DRIZZLE, "warehouse-dbt"])
    data["gate"]["dbt_fair"] = "warehouse-dbt"
    write_experiment(
        tmp_path / "x", data, pattern_runs("post1-validation", {DRIZZLE: 4, "warehouse-dbt": 0})
    )
    path = tmp_path / "comparators.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "fair": [
                    {
                        "env": "metrics",
                        "factor": "sandbox",
                        "value": "warehouse-dbt",
                        "why": "our call",
                    }
                ]
            }
        )
    )
    summary, _ = build_report([tmp_path / "x"], comparators=load_comparators(path))
    _, verdicts = criteria(summary)
    assert verdicts["fair_comparator"].passed and "our call" in verdicts["fair_comparator"].reason


def test_one_repeat_cannot_show_stability(tmp_path):
    write_experiment(
        tmp_path / "x",
        spec_data(runs=1),
        pattern_runs("post1-validation", {DRIZZLE: 1, FAIR: 0}, runs=1),
    )
    summary, _ = build_report([tmp_path / "x"])
    _, verdicts = criteria(summary)
    assert not verdicts["stable_across_runs"].passed
    assert "only 1 repeat(s): stability needs two or more" in verdicts["stable_across_runs"].reason


def test_stability_can_be_waived_by_the_spec(tmp_path):
    data = spec_data(runs=1)
    data["gate"]["require_stable"] = False
    write_experiment(
        tmp_path / "x", data, pattern_runs("post1-validation", {DRIZZLE: 1, FAIR: 0}, runs=1)
    )
    summary, _ = build_report([tmp_path / "x"])
    _, verdicts = criteria(summary)
    assert verdicts["stable_across_runs"].passed
    assert (
        verdicts["stable_across_runs"].reason == "not required by the gate (require_stable: false)"
    )


def test_a_realistic_comparator_missing_models_is_not_measured(tmp_path, strong):
    post1, _ = strong
    partial = tmp_path / "partial"
    runs = [
        r
        for r in pattern_runs("dbt-realistic-pregate", {DRIZZLE: 4, REALISTIC: 2})
        if r.model != PANEL[2] or r.condition != REALISTIC
    ]
    write_experiment(partial, pregate_data(), runs, status="interrupted")
    summary, _ = build_report([post1, partial])
    gate, verdicts = criteria(summary)
    reason = verdicts["realistic_measured"].reason
    assert not verdicts["realistic_measured"].passed and "measured for 2 of 3 models" in reason
    assert PANEL[2] in reason and gate.realistic_interpretation is None
    notes = " ".join(summary.sections[0].notes)
    assert "is interrupted" in notes and f"{len(TASKS) * 5} missing" in notes


def test_a_gate_naming_an_absent_condition_fails_with_the_reason(tmp_path):
    data = spec_data()
    data["gate"]["orm"] = "app-typed"
    write_experiment(tmp_path / "x", data, pattern_runs("post1-validation", {DRIZZLE: 4, FAIR: 1}))
    summary, _ = build_report([tmp_path / "x"])
    gate, verdicts = criteria(summary)
    assert not gate.passed
    assert "no judged runs of 'app-typed'" in verdicts["advantage_reproduced"].reason
