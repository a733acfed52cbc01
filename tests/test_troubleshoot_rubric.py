"""The troubleshooting rubric: the labelled diagnoses, synonyms, negation, windows, stuffing."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import pytest
import yaml

from stackgym.core.errors import ConfigError
from stackgym.envs.troubleshoot import rubric
from stackgym.envs.troubleshoot.rubric import (
    Diagnosis,
    RubricRules,
    Truth,
    claims,
    grade,
    jaccard,
    labelled_set,
    tables_named,
)

LABELLED = labelled_set()
IDEMPOTENCY = LABELLED.truths["idempotency"]


def diagnosis(**fields: str) -> Diagnosis:
    base = {
        "diagnosis": "Invoices were duplicated.",
        "table": "invoices",
        "window_start": "2025-11-20",
        "window_end": "2025-11-22",
        "source": "invoices_sync re-run",
    }
    return Diagnosis(**{**base, **fields})


def test_the_labelled_set_has_forty_diagnoses_of_every_kind():
    kinds = Counter(entry.kind for entry in LABELLED.diagnoses)
    assert len(LABELLED.diagnoses) >= 40
    assert set(kinds) == {"correct", "partial", "wrong", "adversarial"}
    assert kinds["adversarial"] >= 8
    assert {entry.truth for entry in LABELLED.diagnoses} == set(LABELLED.truths)


@pytest.mark.parametrize("entry", LABELLED.diagnoses, ids=lambda e: e.id)
def test_every_labelled_diagnosis_is_graded_as_labelled(entry):
    result = grade(entry.submission, LABELLED.truths[entry.truth])
    reasons = {name: c.reason for name, c in result.criteria.items()}
    assert result.passed is entry.passes, reasons
    for name, expected in entry.criteria.items():
        assert result.criteria[name].ok is expected, (name, reasons[name])


def test_every_adversarial_diagnosis_fails():
    adversarial = [e for e in LABELLED.diagnoses if e.kind == "adversarial"]
    assert adversarial
    for entry in adversarial:
        assert not grade(entry.submission, LABELLED.truths[entry.truth]).passed, entry.id


def test_a_pass_needs_three_criteria_with_table_and_mechanism():
    all_four = grade(diagnosis(), IDEMPOTENCY)
    assert all_four.passed and all_four.met == 4
    no_window = grade(diagnosis(window_start="2025-01-01", window_end="2025-01-02"), IDEMPOTENCY)
    assert no_window.passed and no_window.met == 3
    no_table = grade(diagnosis(table="subscriptions"), IDEMPOTENCY)
    assert no_table.met == 3 and not no_table.passed
    no_mechanism = grade(diagnosis(diagnosis="Invoice totals look high."), IDEMPOTENCY)
    assert no_mechanism.met == 3 and not no_mechanism.passed
    two = grade(
        diagnosis(window_start="2025-01-01", window_end="2025-01-02", source="?"), IDEMPOTENCY
    )
    assert two.met == 2 and not two.passed


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("invoices", "invoices"),
        ("Invoice", "invoices"),
        ("raw.stripe_invoices", "invoices"),
        ("staging.stg_stripe_invoices", "invoices"),
        ("`app`.`invoices` table", "invoices"),
        ("users.stripe_customer_id", "users"),
        ("app_users", "users"),
        ("the Stripe customer id of users", "users"),
        ("payment intents", "payment_intents"),
        ("subscription", "subscriptions"),
    ],
)
def test_every_name_of_a_table_means_that_one_table(name, table):
    assert tables_named(name) == {table}


def test_naming_several_tables_or_none_fails_the_table_criterion():
    assert tables_named("invoices, users") == {"invoices", "users"}
    for name in ("invoices, users", "all tables", "fct_org_revenue", "the database"):
        assert not grade(diagnosis(table=name), IDEMPOTENCY).table.ok, name


@pytest.mark.parametrize(
    ("text", "claimed"),
    [
        ("Invoices were duplicated.", True),
        ("There are no duplicates.", False),
        ("We ruled out duplication and found stale statuses.", False),
        ("Not duplicated, but the statuses are stale.", False),
        ("It is not a schema change; the invoices were duplicated.", True),
        ("The loader deduplicates rows.", False),
    ],
)
def test_negated_mentions_are_not_claims(text, claimed):
    patterns = rubric.rubric_rules().mechanisms["idempotency"]
    assert bool(claims(text, patterns)) is claimed


def test_negated_competing_mechanisms_do_not_cost_the_mechanism():
    ruled_out = diagnosis(diagnosis="No schema drift and no stale statuses: duplicate invoices.")
    assert grade(ruled_out, IDEMPOTENCY).mechanism.ok
    stuffed = diagnosis(diagnosis="Duplicate invoices, and also a schema drift.")
    assert not grade(stuffed, IDEMPOTENCY).mechanism.ok


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((date(2025, 11, 20), date(2025, 11, 22)), (date(2025, 11, 20), date(2025, 11, 22)), 1.0),
        ((date(2025, 11, 20), date(2025, 11, 23)), (date(2025, 11, 20), date(2025, 11, 22)), 0.75),
        ((date(2025, 11, 21), date(2025, 11, 21)), (date(2025, 11, 20), date(2025, 11, 22)), 1 / 3),
        ((date(2025, 11, 1), date(2025, 11, 30)), (date(2025, 11, 20), date(2025, 11, 22)), 0.1),
        ((date(2025, 1, 1), date(2025, 1, 3)), (date(2025, 11, 20), date(2025, 11, 22)), 0.0),
    ],
)
def test_window_overlap_is_the_jaccard_index_of_the_days(a, b, expected):
    assert jaccard(a, b) == pytest.approx(expected)


def test_windows_spanning_months_fail_and_open_windows_end_today():
    truth = LABELLED.truths["schema_drift"]
    assert grade(diagnosis(window_start="2025-12-11", window_end=""), truth).window.ok
    assert grade(diagnosis(window_start="2025-12-11", window_end="now"), truth).window.ok
    assert not grade(diagnosis(window_start="2025-01-01", window_end=""), truth).window.ok
    year = grade(diagnosis(window_start="2025-01-01", window_end="2025-12-31"), IDEMPOTENCY)
    assert not year.window.ok and year.window_jaccard == pytest.approx(3 / 365, abs=1e-3)


def test_a_window_that_does_not_parse_fails_the_criterion_with_a_reason():
    result = grade(diagnosis(window_start="last week"), IDEMPOTENCY)
    assert not result.window.ok and "last week" in result.window.reason
    backwards = grade(diagnosis(window_start="2025-11-22", window_end="2025-11-20"), IDEMPOTENCY)
    assert not backwards.window.ok and "before" in backwards.window.reason


def test_the_source_must_blame_one_job_on_the_app_side():
    assert grade(diagnosis(source="the ETL"), IDEMPOTENCY).source.ok
    assert grade(diagnosis(source="a retry without an idempotency key"), IDEMPOTENCY).source.ok
    for source in (
        "invoices_sync and users_mapping_sync",
        "the warehouse replication",
        "a dbt staging model",
        "invoices_sync: lookups timed out",
        "?",
    ):
        assert not grade(diagnosis(source=source), IDEMPOTENCY).source.ok, source


def test_truths_come_from_the_injected_bugs_diagnosis():
    from stackgym.data import DatasetSpec, dataset_for

    bug = dataset_for(DatasetSpec(seed=0, scale=0.2, bug="stale_status")).diagnosis
    truth = Truth.from_diagnosis(bug, as_of=datetime(2026, 1, 1))
    assert (truth.table, truth.etl_job, truth.bug) == ("subscriptions", bug.etl_job, "stale_status")
    summary = Diagnosis(
        diagnosis=bug.summary,
        table=bug.table,
        window_start=f"{bug.window_start:%Y-%m-%d}",
        window_end=f"{bug.window_end:%Y-%m-%d}",
        source=bug.etl_job,
    )
    assert grade(summary, truth).met == 4


def test_rules_with_a_broken_pattern_are_refused_naming_it():
    data = yaml.safe_load(rubric.RULES_FILE.read_text())
    data["mechanisms"]["idempotency"].append("dup(licat")
    with pytest.raises(ValueError, match="dup\\(licat"):
        RubricRules.model_validate(data)
    data = yaml.safe_load(rubric.RULES_FILE.read_text())
    del data["mechanisms"]["stale_status"]
    with pytest.raises(ValueError, match="stale_status"):
        RubricRules.model_validate(data)


def test_a_labelled_set_that_lets_an_adversarial_diagnosis_pass_is_refused(tmp_path, monkeypatch):
    data = yaml.safe_load(rubric.LABELLED_FILE.read_text())
    adversarial = next(d for d in data["diagnoses"] if d["kind"] == "adversarial")
    adversarial["passes"] = True
    broken = tmp_path / "diagnoses.yaml"
    broken.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(rubric, "LABELLED_FILE", broken)
    rubric.labelled_set.cache_clear()
    try:
        with pytest.raises(ConfigError, match="adversarial"):
            rubric.labelled_set()
    finally:
        rubric.labelled_set.cache_clear()
