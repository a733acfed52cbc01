"""Experiment specs: presets, validation, registry names and the parity check."""

from __future__ import annotations

import pytest
import yaml

from harness_env import register_vault
from stackgym.core import ConfigError, UnknownNameError
from stackgym.core.registry import registry
from stackgym.data import DRIFT_MODES
from stackgym.harness.experiment import refuse_broken_parity
from stackgym.harness.parity import check_parity
from stackgym.harness.plan import plan_runs
from stackgym.harness.spec import (
    PRESETS_DIR,
    DataSnapshot,
    ExperimentSpec,
    Suite,
    load_spec,
    parse_spec,
    preset_names,
    read_spec,
)

PANEL = [
    "openrouter:x-ai/grok-code-fast-1",
    "openrouter:qwen/qwen3-coder-next",
    "openrouter:minimax/minimax-m2.1",
]
TASKS = ["active_user_arpu", "org_churn_rate", "avg_org_ltv"]
METRICS_SANDBOXES = {
    "app-typed",
    "app-drizzle",
    "warehouse-dbt",
    "warehouse-dbt-documented",
    "warehouse-dbt-cast",
    "warehouse-dbt-fair",
    "warehouse-dbt-realistic",
}


@pytest.fixture(scope="module")
def vault():
    yield register_vault()
    registry.remove("vault")


def vault_spec(**changes) -> dict:
    spec = {
        "name": "vault-test",
        "env": "vault",
        "factor": "room",
        "conditions": ["north", "south"],
        "tasks": ["open", "peek"],
        "models": ["oracle", "solver"],
        "runs": 2,
        "max_turns": 6,
        "data": {"seed": 1},
    }
    spec.update(changes)
    return spec


def test_the_four_presets_ship_and_validate_against_the_spec_model():
    assert preset_names() == [
        "architecture-all",
        "dbt-realistic-pregate",
        "post1-validation",
        "quick",
    ]
    for path in PRESETS_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        model = Suite if "experiments" in data else ExperimentSpec
        model.model_validate(data)
        for experiment in read_spec(path.stem).experiments:
            assert check_parity(experiment).ok, path.stem


def test_post1_validation_is_seed_002s_run_design():
    (spec,) = read_spec("post1-validation").experiments
    assert (spec.env, spec.factor) == ("metrics", "sandbox")
    assert [c.name for c in spec.conditions] == ["app-drizzle", "warehouse-dbt-fair"]
    assert spec.tasks == TASKS and spec.models == PANEL
    assert (spec.runs, spec.max_turns, spec.lint) == (5, 10, "none")
    runs = plan_runs(spec)
    per_condition = {
        c: sum(r.condition == c for r in runs) for c in ("app-drizzle", "warehouse-dbt-fair")
    }
    assert per_condition == {
        "app-drizzle": 45,
        "warehouse-dbt-fair": 45,
    }  # seed 002: 45 per sandbox
    assert spec.gate.orm == "app-drizzle" and spec.gate.dbt_fair == "warehouse-dbt-fair"


def test_realistic_pregate_differs_from_post1_only_in_the_dbt_sandbox():
    (post1,) = read_spec("post1-validation").experiments
    (pregate,) = read_spec("dbt-realistic-pregate").experiments
    assert [c.name for c in pregate.conditions] == ["app-drizzle", "warehouse-dbt-realistic"]
    keep = {"name", "description", "conditions", "gate"}
    assert post1.model_dump(exclude=keep) == pregate.model_dump(exclude=keep)


def test_architecture_all_covers_every_metrics_sandbox():
    (spec,) = read_spec("architecture-all").experiments
    assert {c.name for c in spec.conditions} == METRICS_SANDBOXES


def test_quick_runs_only_baselines_on_every_env_offline():
    loaded = read_spec("quick")
    assert {e.env for e in loaded.experiments} == {"metrics", "stack_doctor", "troubleshoot"}
    for experiment in loaded.experiments:
        assert set(experiment.models) == {"oracle", "heuristic", "random"}
    assert sum(len(plan_runs(e)) for e in loaded.experiments) <= 120  # a couple of minutes


def test_spec_drift_modes_are_the_datasets():
    assert DataSnapshot.model_fields["drift"].annotation.__args__[0].__args__ == DRIFT_MODES


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"conditons": ["a"]}, "conditons: unknown setting"),
        ({"runs": 0}, "runs: Input should be greater than or equal to 1"),
        ({"conditions": []}, "conditions: List should have at least 1 item"),
        (
            {"conditions": ["north", "north"]},
            "condition names must be unique; 'north' appears twice",
        ),
        ({"models": ["oracle", "oracle"]}, "models must be unique"),
        (
            {"options": {"room": "north"}},
            "factor 'room' is also set as a shared setting (options.room)",
        ),
        (
            {"factor": "max_turns", "conditions": ["x"]},
            "factor 'max_turns' is also set as a shared setting (max_turns)",
        ),
        ({"options": {"max_turns": 3}}, "env option 'max_turns' is set twice"),
        ({"conditions": [{"name": "a/b"}]}, "conditions.0.name: String should match pattern"),
        (
            {"conditions": [{"name": "north", "overrides": {"options": {"room": "south"}}}]},
            "condition 'north' overrides the factor 'room'",
        ),
        ({"lint": "sometimes"}, "lint: Input should be 'none' or 'lint'"),
    ],
)
def test_invalid_specs_are_refused_naming_the_setting(changes, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_spec(vault_spec(**changes), "test.yaml")
    assert "invalid experiment spec test.yaml" in caught.value.message
    assert fragment in caught.value.message


def test_a_spec_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        read_spec(path)


def test_an_unknown_preset_lists_the_presets():
    with pytest.raises(UnknownNameError) as caught:
        read_spec("post2-validation")
    assert "post1-validation" in caught.value.hint and "quick" in caught.value.hint


def test_a_per_condition_override_breaks_parity_naming_the_field(vault):
    spec = parse_spec(
        vault_spec(
            conditions=[
                "north",
                {"name": "south", "overrides": {"max_turns": 12, "agent": {"temperature": 0.7}}},
            ]
        )
    ).experiment
    report = check_parity(spec)
    assert not report.ok
    assert {d.field: d.values for d in report.differences} == {
        "max_turns": {"north": 6, "south": 12},
        "agent.temperature": {"north": None, "south": 0.7},
    }
    with pytest.raises(ConfigError) as caught:
        refuse_broken_parity(spec)
    assert "breaks parity" in caught.value.message
    assert "max_turns (north: 6, south: 12)" in caught.value.message
    assert "agent.temperature (north: null, south: 0.7)" in caught.value.message


def test_overrides_equal_to_the_shared_settings_keep_parity(vault):
    spec = parse_spec(
        vault_spec(
            conditions=["north", {"name": "south", "overrides": {"max_turns": 6, "runs": 2}}]
        )
    )
    report = check_parity(spec.experiment)
    assert report.ok and report.shared["max_turns"] == 6 and report.shared["data.seed"] == 1
    assert report.conditions == {"north": "north", "south": "south"}


def test_an_override_of_the_panel_or_the_data_breaks_parity(vault):
    spec = parse_spec(
        vault_spec(
            conditions=[
                "north",
                {
                    "name": "south",
                    "overrides": {"models": ["oracle"], "data": {"seed": 2}, "runs": 3},
                },
            ]
        )
    ).experiment
    fields = {d.field for d in check_parity(spec).differences}
    assert fields == {"models", "data.seed", "runs"}


def write(tmp_path, spec: dict):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_load_spec_accepts_registered_names(vault, tmp_path):
    loaded = load_spec(write(tmp_path, vault_spec()))
    assert loaded.experiment.name == "vault-test" and loaded.source.endswith("spec.yaml")


@pytest.mark.parametrize(
    ("changes", "name", "known"),
    [
        ({"env": "vaults"}, "vaults", "vault"),
        ({"conditions": ["north", "west"]}, "west", "drifty, north, south"),
        ({"tasks": ["open", "smash"]}, "smash", "open, peek"),
        ({"models": ["oracle", "psychic"]}, "psychic", "oracle"),
        ({"models": ["anthropic:claude"]}, "anthropic:claude", "openrouter:…"),
        ({"gate": {"orm": "north", "dbt_fair": "east"}}, "east", "drifty, north, south"),
    ],
)
def test_unknown_names_are_refused_at_load_naming_the_valid_choices(
    vault, tmp_path, changes, name, known
):
    with pytest.raises(UnknownNameError) as caught:
        load_spec(write(tmp_path, vault_spec(**changes)))
    assert repr(name) in caught.value.message
    assert known in caught.value.hint


def test_a_suite_checks_every_experiment(vault, tmp_path):
    suite = {
        "name": "two",
        "experiments": [vault_spec(), vault_spec(name="other", tasks=["open", "kick"])],
    }
    with pytest.raises(UnknownNameError, match="'kick'"):
        load_spec(write(tmp_path, suite))


def test_run_ids_are_readable_deterministic_and_paired(vault):
    spec = parse_spec(vault_spec()).experiment
    runs = plan_runs(spec)
    assert len(runs) == 2 * 2 * 2 * 2
    assert [r.run_id for r in runs[:4]] == [
        "vault-test/north/open/oracle/0",
        "vault-test/south/open/oracle/0",
        "vault-test/north/open/solver/0",
        "vault-test/south/open/solver/0",
    ]
    assert [r.run_id for r in plan_runs(spec)] == [r.run_id for r in runs]
    assert {r.seed for r in runs if r.repeat == 1} == {1}  # every condition plays the same seed
    assert runs[0].options == {"max_turns": 6, "data_seed": 1, "room": "north", "task": "open"}
