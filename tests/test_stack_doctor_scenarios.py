"""Stack Doctor's scenario data: coverage, the split, and the schema refusing broken files."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from stackgym.core.errors import DataError
from stackgym.envs.stack_doctor.models import FIX_FOR
from stackgym.envs.stack_doctor.scenarios import (
    build_catalog,
    load_catalog,
    parse_scenarios,
    template_variables,
)

#: SPEC §5, copied by hand: the ten root-cause families and their one fix.
SPEC_TABLE = {
    "arch_guard": "relax_arch_check",
    "backend_whitelist": "add_whitelist_entry",
    "runtime_loader": "fix_runtime_path",
    "backend_selector": "switch_backend",
    "model_config": "update_model_config",
    "weight_layout": "fix_weight_mapping",
    "memory_oom": "tune_memory_config",
    "quantization_error": "fix_quantization",
    "distributed_comm": "fix_comm_config",
    "driver_compat": "update_driver_config",
}


def test_root_cause_to_fix_table_is_the_spec_table():
    assert FIX_FOR == SPEC_TABLE


def test_at_least_forty_scenarios_cover_all_ten_families():
    catalog = load_catalog()
    assert len(catalog.scenarios) >= 40
    families = Counter(s.data.root_cause for s in catalog.scenarios.values())
    assert set(families) == set(SPEC_TABLE)
    assert min(families.values()) >= 4


def test_at_least_a_quarter_is_held_out_and_every_family_is_in_both_splits():
    catalog = load_catalog()
    train, held_out = catalog.select("train"), catalog.select("eval")
    assert len(held_out) / len(catalog.scenarios) >= 0.25
    assert {s.data.root_cause for s in held_out} == set(SPEC_TABLE)
    assert {s.data.root_cause for s in train} == set(SPEC_TABLE)
    assert not {s.id for s in train} & {s.id for s in held_out}


def test_every_scenario_has_the_parts_the_issue_lists():
    for scenario in load_catalog().scenarios.values():
        data = scenario.data
        assert set(data.inspect) == {"logs", "config", "snippet", "metrics"}, data.id
        assert any(e.tag == "probative" for e in data.inspect.values()), data.id
        assert 1 <= len(data.minimal_evidence) <= 2, data.id
        assert data.decoys and data.root_cause not in data.decoys, data.id
        assert data.fix == SPEC_TABLE[data.root_cause], data.id


def test_some_scenarios_offer_plausible_fixes_that_are_not_minimal():
    with_alternatives = [s for s in load_catalog().scenarios.values() if s.data.alternatives]
    assert len(with_alternatives) >= 20
    for scenario in with_alternatives:
        assert all(a.fix != scenario.data.fix for a in scenario.data.alternatives)


def test_probative_evidence_is_not_always_in_the_logs():
    """Investigation must matter: in some incidents the logs are not what proves it."""
    scenarios = load_catalog().scenarios.values()
    elsewhere = [s for s in scenarios if s.data.inspect["logs"].tag != "probative"]
    assert len(elsewhere) >= 8
    assert any(s.data.split == "eval" for s in elsewhere)


# -- the schema refuses broken data, naming where -----------------------------------

GOOD = """
- id: test-guard
  title: a test incident
  split: train
  root_cause: arch_guard
  fix: relax_arch_check
  vars:
    limit: ["(8.0, 9.0)"]
  ticket: "{backend} pods on {hardware} crash at start-up."
  initial_log: "worker exited during device init"
  initial_snippet: "image: inference:latest"
  inspect:
    logs: {tag: probative, text: "capability {cc} not in SUPPORTED {limit}", facts: ["not in SUPPORTED"]}
    config: {tag: neutral, text: "dtype: bfloat16"}
    snippet: {tag: neutral, text: "def check(): pass"}
    metrics: {tag: distracting, points_to: driver_compat, text: "driver_version 570"}
  owners:
    kernel: {says: "kernels are fine on {sm}", followup: "the guard list lacks {cc}", facts: ["guard list"]}
  decoys: [driver_compat]
  minimal_evidence: [logs]
"""


def _broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def _compile(text: str) -> None:
    catalog = load_catalog()
    scenarios = parse_scenarios(text, "test.yaml")
    build_catalog(catalog.world, _library(), scenarios)


def _library():
    from importlib import resources

    from stackgym.envs.stack_doctor.scenarios import SpecialistLibrary

    raw = resources.files("stackgym.envs.stack_doctor").joinpath("specialists.yaml").read_text()
    return SpecialistLibrary.model_validate(yaml.safe_load(raw))


def test_a_well_formed_scenario_compiles():
    _compile(GOOD)


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("    config: {tag: neutral", "    konfig: {tag: neutral", "inspect"),
        ("fix: relax_arch_check", "fix: switch_backend", "is not the fix of 'arch_guard'"),
        ('facts: ["not in SUPPORTED"]', 'facts: ["not in the text"]', "is not in its text"),
        ("minimal_evidence: [logs]", "minimal_evidence: [config]", "are not probative"),
        ("decoys: [driver_compat]", "decoys: [arch_guard]", "decoys must be wrong families"),
        ("root_cause: arch_guard", "root_cause: cosmic_rays", "root_cause"),
        ('"dtype: bfloat16"', '"dtype: {precision}"', "unknown variables ['precision']"),
        ("split: train", "split: test", "split"),
    ],
)
def test_broken_scenarios_are_refused_with_a_message_naming_the_problem(old, new, fragment):
    with pytest.raises(DataError) as caught:
        _compile(_broken(old, new))
    assert fragment in str(caught.value)
    assert "test.yaml" in str(caught.value) or "test-guard" in str(caught.value)


def test_repeated_scenario_ids_are_refused():
    twice = GOOD + GOOD.replace("- id: test-guard", "- id: test-guard", 1)
    with pytest.raises(DataError, match="repeated"):
        _compile(twice)


def test_a_scenario_file_that_is_not_yaml_says_so():
    with pytest.raises(DataError, match="not valid YAML"):
        parse_scenarios("- id: [unclosed", "bad.yaml")


def test_templates_only_treat_lowercase_identifiers_in_braces_as_variables():
    text = 'metric{node="{node}"} {"arch_list": [1]} ${HOME} {cc}'
    assert template_variables(text) == {"node", "cc"}
