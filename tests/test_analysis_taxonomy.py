"""The failure taxonomy: shipped rules against a labelled fixture, and rule files validated at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackgym.analysis.taxonomy import RULES_FILE, load_taxonomy
from stackgym.core import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "analysis" / "taxonomy_cases.yaml"


def labelled_cases() -> list[dict]:
    data = yaml.safe_load(FIXTURE.read_text())
    defaults = data["defaults"]
    return [{**defaults, **case} for case in data["cases"]]


CASES = labelled_cases()


def test_the_labelled_fixture_covers_every_category_with_dozens_of_cases():
    categories = {c["expected"] for c in CASES}
    assert len(CASES) >= 40
    shipped = {c["id"] for c in yaml.safe_load(RULES_FILE.read_text())["categories"]}
    assert categories == shipped
    kinds = " ".join(str(c.get("error")) for c in CASES)
    for engine in ("Binder Error", "no such column", "TS2339", "TypeError", "KeyError", "HTTP 401"):
        assert engine in kinds


@pytest.mark.parametrize("case", CASES, ids=[f"{c['expected']}-{i}" for i, c in enumerate(CASES)])
def test_shipped_rules_label_each_case_as_a_person_would(case):
    taxonomy = load_taxonomy()
    label = taxonomy.classify(
        env_id=case["env"],
        status=case["status"],
        passed=None if case["status"] == "infra_error" else False,
        truncated=case["truncated"],
        error=case.get("error"),
        metrics=case["metrics"],
    )
    assert label is not None and label.category == case["expected"], (case, label)


def test_runs_that_passed_or_were_not_judged_get_no_label():
    taxonomy = load_taxonomy()
    common = {"env_id": "metrics", "truncated": False, "error": None, "metrics": {}}
    assert taxonomy.classify(status="completed", passed=True, **common) is None
    assert taxonomy.classify(status="completed", passed=None, **common) is None
    infra = taxonomy.classify(status="infra_error", passed=None, **common)
    assert infra is not None and infra.category == "infra_error"


def test_the_same_outcome_gets_the_same_label_whatever_else_the_metrics_hold():
    taxonomy = load_taxonomy()
    first = taxonomy.classify(
        env_id="metrics", status="completed", passed=False, truncated=False,
        error="no such column: x", metrics={"context_files_read": 2, "score": 0.25},
    )  # fmt: skip
    second = taxonomy.classify(
        env_id="metrics", status="completed", passed=False, truncated=False,
        error="no such column: x", metrics={"context_files_read": 2, "score": 0.75},
    )  # fmt: skip
    engaged_not = taxonomy.classify(
        env_id="metrics", status="completed", passed=False, truncated=False,
        error="no such column: x", metrics={"context_files_read": 0, "context_files_total": 5},
    )  # fmt: skip
    assert first == second and first.category == "schema_mismatch"
    assert engaged_not.category == "no_engagement"


def write_rules(tmp_path, rules: list[dict], categories: list[dict] | None = None) -> Path:
    categories = categories or [
        {"id": "alpha", "label": "alpha"},
        {"id": "beta", "label": "beta"},
        {"id": "other", "label": "other"},
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "categories": categories, "rules": rules}))
    return path


def test_rules_are_tried_in_order_and_the_first_match_wins(tmp_path):
    path = write_rules(
        tmp_path,
        [
            {"name": "first", "category": "alpha", "match": ["boom"]},
            {"name": "second", "category": "beta", "match": ["boom"]},
            {"name": "wide", "category": "beta", "when": {"error": "present"}},
        ],
    )
    taxonomy = load_taxonomy(path)
    fields = {"env_id": "x", "status": "completed", "passed": False, "truncated": False}
    boom = taxonomy.classify(error="BOOM went the query", metrics={}, **fields)
    assert (boom.category, boom.rule) == ("alpha", "first")
    other = taxonomy.classify(error="quiet", metrics={}, **fields)
    assert (other.category, other.rule) == ("beta", "wide")
    nothing = taxonomy.classify(error=None, metrics={}, **fields)
    assert (nothing.category, nothing.rule) == ("other", None)


def test_metric_conditions_compare_values_and_env_scopes_a_rule(tmp_path):
    path = write_rules(
        tmp_path,
        [
            {
                "name": "few",
                "category": "alpha",
                "env": ["e1"],
                "when": {"metrics": {"n": {"lt": 3}}},
            },
            {
                "name": "listed",
                "category": "beta",
                "when": {"metrics": {"kind": {"in": ["a", "b"]}}},
            },
        ],
    )
    taxonomy = load_taxonomy(path)
    fields = {"status": "completed", "passed": False, "truncated": False, "error": None}
    assert taxonomy.classify(env_id="e1", metrics={"n": 2}, **fields).category == "alpha"
    assert taxonomy.classify(env_id="e2", metrics={"n": 2}, **fields).category == "other"
    assert taxonomy.classify(env_id="e1", metrics={"n": 5}, **fields).category == "other"
    assert taxonomy.classify(env_id="e1", metrics={}, **fields).category == "other"
    assert taxonomy.classify(env_id="e3", metrics={"kind": "b"}, **fields).category == "beta"


@pytest.mark.parametrize(
    ("rules", "categories", "message"),
    [
        ([{"name": "r", "category": "gamma", "match": ["x"]}], None, "category 'gamma'"),
        ([{"name": "r", "category": "alpha", "match": ["(unclosed"]}], None, "not a valid regular"),
        ([{"name": "r", "category": "alpha"}], None, "tests nothing"),
        (
            [{"name": "r", "category": "alpha", "match": ["x"], "colour": "red"}],
            None,
            "unknown key",
        ),
        (
            [{"name": "r", "category": "alpha", "match": ["x"]}],
            [{"id": "alpha", "label": "alpha"}],
            "must include 'other'",
        ),
        (
            [
                {"name": "r", "category": "alpha", "match": ["x"]},
                {"name": "r", "category": "alpha", "match": ["y"]},
            ],
            None,
            "rule names must be unique",
        ),
    ],
)
def test_a_broken_rules_file_is_refused_naming_the_problem(tmp_path, rules, categories, message):
    path = write_rules(tmp_path, rules, categories)
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    assert message in caught.value.message and str(path) in caught.value.message


def test_a_missing_or_unparseable_rules_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_taxonomy(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_taxonomy(bad)
