"""Stack Doctor's episodes: seeding, both reward tables, the budget, evidence and outcomes.

Expected rewards are written out from SPEC §5's tables by hand, never taken
from the rubric module.
"""

from __future__ import annotations

import random

import pytest

import stackgym
from stackgym.core import run_episode
from stackgym.core.errors import ConfigError, StackgymError, UnknownNameError
from stackgym.envs.stack_doctor.baselines import RandomAgent
from stackgym.envs.stack_doctor.models import StackDoctorObservation

#: The scenario most tests play: logs and snippet are probative, config is
#: neutral, metrics distracting; kernel is the owner; the fix is relax_arch_check.
GUARD = "ag-capability-list"
BRIEFING = (
    "Root cause has been pre-identified. Validate it, choose the minimal safe fix, and submit."
)


def blind(scenario: str | None = GUARD, **kw):
    return stackgym.make("stack_doctor", mode="blind_diagnosis", scenario=scenario, **kw)


def visible(scenario: str | None = GUARD, **kw):
    return stackgym.make("stack_doctor", mode="root_cause_visible", scenario=scenario, **kw)


def play(env, actions, seed=0):
    env.reset(seed=seed)
    return [env.step(a) for a in actions]


def submit_blind(root_cause="arch_guard", fix="relax_arch_check", justification="guard rejects cc"):
    return {"type": "submit", "root_cause": root_cause, "fix": fix, "justification": justification}


INSPECT_LOGS = {"type": "inspect", "target": "logs"}
APPLY_RIGHT = {"type": "apply_fix", "fix": "relax_arch_check"}


# -- seeding and variation -------------------------------------------------------


def test_reset_with_same_seed_gives_same_observation_and_same_rewards():
    first, again = blind(None), blind(None)
    actions = [INSPECT_LOGS, {"type": "ask_specialist", "specialist": "kernel"}, submit_blind()]
    for seed in (0, 7, 123):
        obs_a, _ = first.reset(seed=seed)
        obs_b, _ = again.reset(seed=seed)
        assert obs_a.model_dump_json() == obs_b.model_dump_json()
        for action in actions:
            a, b = first.step(action), again.step(action)
            assert a.observation.model_dump_json() == b.observation.model_dump_json()
            assert (a.reward, a.terminated, a.info) == (b.reward, b.terminated, b.info)


def test_seeds_vary_surface_details_of_one_scenario():
    env = blind()
    tickets, hardware, models, backends = set(), set(), set(), set()
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        tickets.add(obs.ticket)
        hardware.add(obs.hardware)
        models.add(obs.model)
        backends.add(obs.backend)
    assert len(hardware) >= 3 and len(models) >= 5 and len(backends) >= 3
    assert len(tickets) >= 25  # restart counts, image tags and names differ


def test_which_specialists_are_wrong_varies_and_at_least_one_always_is():
    env = blind("ag-flash-attn-major")  # two owners (kernel, dispatch): anyone can be wrong
    wrong_sets = set()
    for seed in range(60):
        obs, _ = env.reset(seed=seed)
        wrong = frozenset(
            name
            for name, opinion in obs.specialists.items()
            if opinion.suspects is not None and opinion.suspects != "arch_guard"
        )
        assert 1 <= len(wrong) <= 2
        assert any(o.suspects == "arch_guard" for o in obs.specialists.values())
        wrong_sets.add(wrong)
    assert len(wrong_sets) >= 6
    assert {s for group in wrong_sets for s in group} == {"runtime", "dispatch", "kernel", "loader"}


def test_the_only_owner_of_a_scenario_is_never_the_wrong_one():
    env = blind()  # kernel is the only specialist whose area covers this incident
    for seed in range(60):
        obs, _ = env.reset(seed=seed)
        assert obs.specialists["kernel"].suspects == "arch_guard"


def test_consecutive_seeds_cover_every_scenario_of_the_split():
    env = stackgym.make("stack_doctor", split="eval")
    seen = set()
    for seed in range(10):
        env.reset(seed=seed)
        seen.add(env.answer_key()["scenario"])
    assert len(seen) == 10


def test_the_scenario_option_of_reset_overrides_the_split():
    env = stackgym.make("stack_doctor", split="train")
    env.reset(seed=0, options={"scenario": "bw-attention-policy"})
    assert env.answer_key()["scenario"] == "bw-attention-policy"


def test_state_hides_the_scenario_until_the_episode_is_over():
    env = blind()
    env.reset(seed=0)
    assert env.state.scenario is None
    env.step(submit_blind())
    assert env.state.scenario == GUARD


# -- blind_diagnosis: the original reward table ---------------------------------


def test_blind_inspect_and_ask_cost_a_quarter_each():
    results = play(blind(), [INSPECT_LOGS, {"type": "ask_specialist", "specialist": "loader"}])
    assert [r.reward for r in results] == [-0.25, -0.25]
    assert results[0].info["reward_breakdown"] == {"step_cost": -0.25}


def test_blind_fast_correct_solve_pays_every_component():
    results = play(blind(), [INSPECT_LOGS, APPLY_RIGHT, submit_blind()])
    assert [r.reward for r in results] == [-0.25, 3.0, 8 + 8 + 1 + 2]
    assert results[-1].terminated and not results[-1].truncated
    outcome = results[-1].info["outcome"]
    assert outcome["passed"] is True
    assert outcome["metrics"]["reward"] == -0.25 + 3 + 19
    assert outcome["answer"] == {"root_cause": "arch_guard", "fix": "relax_arch_check"}


def test_blind_wrong_fix_costs_two_and_each_wrong_field_costs_four():
    results = play(
        blind(),
        [
            {"type": "apply_fix", "fix": "update_driver_config"},
            submit_blind(root_cause="driver_compat", fix="relax_arch_check", justification=""),
        ],
    )
    assert results[0].reward == -2.0
    assert results[1].reward == -4 + 8  # wrong root cause, right fix, no justification
    outcome = results[1].info["outcome"]
    assert outcome["passed"] is False
    assert outcome["metrics"]["fix_correct"] is True
    assert outcome["metrics"]["rc_correct"] is False
    assert outcome["metrics"]["bad_interventions"] == 1


def test_blind_justification_needs_ten_characters():
    short = play(blind(), [submit_blind(justification="  123456789  ")])[0]
    long = play(blind(), [submit_blind(justification="1234567890")])[0]
    assert long.reward - short.reward == 1.0
    assert short.info["outcome"]["metrics"]["justification_ok"] is False


def test_blind_fast_bonus_only_within_four_steps():
    four = play(blind(), [INSPECT_LOGS] * 3 + [submit_blind()])[-1]
    five = play(blind(), [INSPECT_LOGS] * 4 + [submit_blind()])[-1]
    assert four.reward == 8 + 8 + 1 + 2
    assert five.reward == 8 + 8 + 1


def test_running_out_of_steps_costs_four_and_truncates():
    results = play(blind(), [INSPECT_LOGS] * 6)
    assert [r.reward for r in results] == [-0.25] * 5 + [-0.25 - 4]
    assert results[-1].truncated and not results[-1].terminated
    assert results[-1].observation.done
    metrics = results[-1].info["outcome"]["metrics"]
    assert metrics["out_of_steps"] is True
    assert metrics["submitted"] is False and metrics["fix_correct"] is False


def test_invalid_action_costs_two_counts_a_step_and_says_what_is_valid():
    env = blind()
    env.reset(seed=0)
    result = env.step({"type": "inspect", "target": "gpu"})
    assert result.reward == -2.0
    assert "invalid_action" in result.info
    assert "logs" in result.observation.error and "metrics" in result.observation.error
    assert result.observation.steps_left == 5


def test_a_second_apply_fix_is_refused_with_the_penalty():
    results = play(blind(), [APPLY_RIGHT, {"type": "apply_fix", "fix": "switch_backend"}])
    assert results[1].reward == -2.0
    assert "once per episode" in results[1].info["invalid_action"]
    assert results[1].observation.fix_applied == "relax_arch_check"


def test_actions_after_the_end_get_the_penalty_and_report_the_end():
    env = blind()
    env.reset(seed=0)
    env.step(submit_blind())
    after = env.step(INSPECT_LOGS)
    assert after.reward == -2.0 and after.terminated
    assert "episode is over" in after.observation.error


def test_applying_a_plausible_but_not_minimal_fix_explains_why_it_is_not_enough():
    result = play(blind(), [{"type": "apply_fix", "fix": "update_driver_config"}])[0]
    assert "masked" in result.observation.last_result
    assert "already supports" in result.observation.last_result


# -- root_cause_visible: the seed's reward table --------------------------------


def test_visible_reset_names_the_root_cause_with_the_seed_sentence():
    obs, _ = visible().reset(seed=3)
    assert obs.mode == "root_cause_visible"
    assert obs.known_root_cause == "arch_guard"
    assert BRIEFING in obs.text
    assert all(o.suspects == "arch_guard" for o in obs.specialists.values())
    blind_obs, _ = blind().reset(seed=3)
    assert blind_obs.known_root_cause is None and BRIEFING not in blind_obs.text


def test_visible_specialists_never_name_the_fix_outright():
    env = stackgym.make("stack_doctor", mode="root_cause_visible", split="all")
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        fix = env.answer_key()["fix"]
        assert all(fix not in o.says for o in obs.specialists.values())


def test_visible_relevant_evidence_pays_half_once():
    results = play(
        visible(),
        [
            INSPECT_LOGS,  # probative
            {"type": "inspect", "target": "config"},  # neutral
            INSPECT_LOGS,  # redundant
            {"type": "ask_specialist", "specialist": "kernel"},  # the owner: probative
        ],
    )
    assert [r.reward for r in results] == [0.25, -0.25, -0.25, 0.25]
    assert results[0].info["reward_breakdown"] == {"step_cost": -0.25, "relevant_evidence": 0.5}


def test_visible_apply_pays_four_and_acting_before_any_evidence_is_unsafe():
    assert play(visible(), [INSPECT_LOGS, APPLY_RIGHT])[1].reward == 4.0
    early = play(visible(), [APPLY_RIGHT])[0]
    assert early.reward == 4.0 - 2.0
    assert early.info["reward_breakdown"]["unsafe_sequence"] == -2.0
    assert (
        play(visible(), [INSPECT_LOGS, {"type": "apply_fix", "fix": "switch_backend"}])[1].reward
        == -4.0
    )


def remediation(fix="relax_arch_check", evidence=("logs",), justification=None, **extra):
    text = justification or "Logs: compute capability is not in SUPPORTED_CAPABILITIES."
    return {
        "type": "submit",
        "fix": fix,
        "evidence": list(evidence),
        "justification": text,
        **extra,
    }


def test_visible_supported_fast_submission_pays_fix_justification_and_bonus():
    results = play(visible(), [INSPECT_LOGS, APPLY_RIGHT, remediation()])
    assert results[-1].reward == 10 + 1 + 2
    outcome = results[-1].info["outcome"]
    assert outcome["passed"] is True
    assert outcome["metrics"]["rc_correct"] is None
    assert outcome["metrics"]["supported"] is True
    assert outcome["metrics"]["evidence_precision"] == 1.0


def test_visible_evidence_never_inspected_does_not_count():
    result = play(visible(), [remediation(evidence=["logs", "snippet"])])[0]
    assert result.info["evidence"]["counted"] == []
    assert result.info["evidence"]["not_inspected"] == ["logs", "snippet"]
    # correct fix, unsupported, justification quotes nothing that was seen
    assert result.reward == 10 - 2
    assert result.info["justification"]["ok"] is False


def test_visible_citing_only_irrelevant_evidence_is_unsupported():
    results = play(
        visible(), [{"type": "inspect", "target": "config"}, remediation(evidence=["config"])]
    )
    assert results[-1].info["reward_breakdown"]["unsupported"] == -2.0
    assert results[-1].info["outcome"]["metrics"]["supported"] is False


def test_visible_wrong_fix_costs_six():
    result = play(visible(), [INSPECT_LOGS, remediation(fix="update_driver_config")])[-1]
    assert result.info["reward_breakdown"]["fix"] == -6.0
    assert "fast_solve" not in result.info["reward_breakdown"]
    assert result.info["outcome"]["passed"] is False


def test_visible_root_cause_field_is_accepted_and_ignored():
    plain = play(visible(), [INSPECT_LOGS, remediation()])[-1]
    named = play(visible(), [INSPECT_LOGS, remediation(root_cause="memory_oom")])[-1]
    assert "invalid_action" not in named.info
    assert named.reward == plain.reward


@pytest.mark.parametrize(
    ("justification", "ok", "reason"),
    [
        ("SUPPORTED_CAPABILITIES", True, "concise"),  # 22 characters, quotes a fact
        ("too short", False, "too short"),
        ("SUPPORTED_CAPABILITIES " + "x" * 270, False, "too long"),
        ("The guard rejects the GPU, so relax it.", False, "quotes no key fact"),
        ("supported_capabilities misses the cc", True, "concise"),  # case-insensitive
        ("SUPPORTED_CAPABILITIES lacks it; switch_backend", False, "switch_backend"),
    ],
)
def test_visible_justification_rule(justification, ok, reason):
    result = play(visible(), [INSPECT_LOGS, remediation(justification=justification)])[-1]
    assert result.info["justification"]["ok"] is ok
    assert reason in result.info["justification"]["reason"]


def test_visible_justification_must_quote_evidence_actually_seen():
    # "check_device" is a key fact of the snippet, which was never inspected.
    result = play(visible(), [INSPECT_LOGS, remediation(justification="check_device raises here")])
    assert result[-1].info["justification"]["ok"] is False


# -- every step explains its reward ----------------------------------------------


@pytest.mark.parametrize("mode", ["blind_diagnosis", "root_cause_visible"])
def test_reward_breakdown_always_sums_to_the_reward(mode):
    env = stackgym.make("stack_doctor", mode=mode, split="all")
    agent = RandomAgent()
    for seed in range(150):
        episode = run_episode(env, agent, seed=seed)
        for step in episode.steps:
            assert sum(step.info["reward_breakdown"].values()) == step.reward
        assert episode.outcome["metrics"]["reward"] == episode.total_reward
        assert len(episode.steps) <= 6


def test_outcome_metrics_are_flat_numbers_booleans_or_none():
    env = blind(None, split="all")
    for seed in range(20):
        episode = run_episode(env, RandomAgent(), seed=seed)
        for value in episode.outcome["metrics"].values():
            assert value is None or isinstance(value, bool | int | float)


# -- helpers for agents and trainers ---------------------------------------------


def test_candidate_actions_are_valid_and_shrink_as_the_episode_goes():
    env = blind()
    env.reset(seed=5)
    first = env.candidate_actions()
    assert len(first) == 4 + 4 + 10 + 10
    env.step(INSPECT_LOGS)
    env.step(APPLY_RIGHT)
    later = env.candidate_actions()
    kinds = [a.type for a in later]
    assert "apply_fix" not in kinds
    assert {"type": "inspect", "target": "logs"} not in [a.model_dump() for a in later]
    for action in later:
        env.reset(seed=5)
        env.step(INSPECT_LOGS)
        env.step(APPLY_RIGHT)
        assert "invalid_action" not in env.step(action).info
    assert env.candidate_actions() == [] or not env.state.done


def test_example_actions_give_one_valid_action_per_tool():
    for env in (blind(), visible()):
        env.reset(seed=0)
        examples = env.example_actions(random.Random(1))
        assert sorted(a.type for a in examples) == sorted(env.action_set.names)
        for action in examples:
            env.reset(seed=0)
            assert "invalid_action" not in env.step(action).info


def test_observations_equal_their_validated_json_round_trip():
    env = visible()
    observations = [env.reset(seed=9)[0]]
    for action in (INSPECT_LOGS, APPLY_RIGHT, remediation()):
        observations.append(env.step(action).observation)
    for obs in observations:
        assert StackDoctorObservation.model_validate_json(obs.model_dump_json()) == obs
        assert StackDoctorObservation.model_validate(obs.model_dump()) == obs


def test_step_text_tells_an_llm_what_it_found_and_what_is_left():
    env = blind()
    obs, _ = env.reset(seed=0)
    assert "submit" in obs.text and "ROOT_CAUSE:" in obs.text and "FIX:" in obs.text
    result = env.step(INSPECT_LOGS)
    assert "SUPPORTED_CAPABILITIES" in result.observation.text
    assert "5 steps left" in result.observation.text
    assert result.observation.findings["logs"] in result.observation.text


# -- configuration errors ---------------------------------------------------------


def test_bad_options_are_refused_with_the_valid_choices():
    with pytest.raises(ConfigError, match="root_cause_visible"):
        stackgym.make("stack_doctor", mode="easy")
    with pytest.raises(ConfigError, match="train, eval, all"):
        stackgym.make("stack_doctor", split="test")
    with pytest.raises(UnknownNameError) as caught:
        stackgym.make("stack_doctor", scenario="no-such-incident")
    assert GUARD in str(caught.value)
    env = blind()
    with pytest.raises(StackgymError, match="unknown reset options"):
        env.reset(seed=0, options={"difficulty": "hard"})


# -- the base class's seeding (core/env.py, changed for reset speed) ---------------


def test_seedless_resets_continue_from_the_last_explicit_seed_however_interleaved():
    env = blind(None)
    env.reset(seed=11)
    first = [env.reset()[1]["seed"] for _ in range(4)]
    env.reset(seed=11)
    again = [env.reset()[1]["seed"] for _ in range(4)]
    env.reset(seed=12)
    other = [env.reset()[1]["seed"] for _ in range(4)]
    assert first == again and first != other
    assert len(set(first)) == 4


def test_episode_ids_are_unique_32_digit_hex():
    env = blind()
    ids = {env.reset(seed=0)[1]["episode_id"] for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
