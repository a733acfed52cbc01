"""Anything an agent sends is answered, never raised: a property-based barrage on both modes."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stackgym
from stackgym.core.checker import check_env
from stackgym.envs.stack_doctor.models import FIXES, ROOT_CAUSES, SOURCES, SPECIALISTS, TARGETS

MODES = ("blind_diagnosis", "root_cause_visible")
TOOLS = ["inspect", "ask_specialist", "apply_fix", "submit"]
FIELDS = ["type", "target", "specialist", "fix", "root_cause", "evidence", "justification", "name"]
WORDS = [*TOOLS, *TARGETS, *SPECIALISTS, *FIXES, *ROOT_CAUSES, *SOURCES, "", "null", "🔥"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=40),
    st.just("x" * 2_001),  # over the justification cap
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
#: Mostly action-shaped dicts with arbitrary values, so the fields' validation is exercised.
action_dicts = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5).map(
    lambda d: {"type": d.get("type", "submit"), **d} if d else d
)
tool_calls = st.builds(
    lambda name, args: {"name": name, "arguments": args},
    st.sampled_from([*TOOLS, "rm -rf"]),
    st.one_of(st.text(max_size=30), action_dicts.map(json.dumps)),
)
#: Well-formed actions of both modes, so episodes also end and actions arrive after the end.
valid_actions = st.one_of(
    st.builds(lambda t: {"type": "inspect", "target": t}, st.sampled_from(TARGETS)),
    st.builds(lambda s: {"type": "ask_specialist", "specialist": s}, st.sampled_from(SPECIALISTS)),
    st.builds(lambda f: {"type": "apply_fix", "fix": f}, st.sampled_from(FIXES)),
    st.builds(
        lambda rc, f, j: {"type": "submit", "root_cause": rc, "fix": f, "justification": j},
        st.sampled_from(ROOT_CAUSES),
        st.sampled_from(FIXES),
        st.text(max_size=300),
    ),
    st.builds(
        lambda f, e, j: {"type": "submit", "fix": f, "evidence": e, "justification": j},
        st.sampled_from(FIXES),
        st.lists(st.sampled_from(SOURCES), max_size=8),
        st.text(max_size=300),
    ),
)
raw_actions = st.one_of(
    valid_actions,
    action_dicts,
    action_dicts.map(json.dumps),
    tool_calls,
    values,
    st.text(max_size=60),
    st.binary(max_size=30),
)


def _make(mode):
    return stackgym.make("stack_doctor", mode=mode, split="all")


ENVS = {mode: _make(mode) for mode in MODES}


@pytest.mark.parametrize("mode", MODES)
@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(raw_actions, min_size=1, max_size=9))
def test_any_sequence_of_actions_is_answered_with_a_well_formed_step(mode, seed, actions):
    env = ENVS[mode]
    env.reset(seed=seed)
    ended = False
    for index, action in enumerate(actions):
        result = env.step(action)
        obs = result.observation
        assert math.isfinite(result.reward)
        assert obs.done == (result.terminated or result.truncated)
        assert sum(result.info["reward_breakdown"].values()) == result.reward
        json.dumps(result.info)
        if "invalid_action" in result.info:
            assert obs.error
            assert result.info["reward_breakdown"].get("invalid_action") == -2.0
        if ended:
            # after the end: refused, penalised, still reported as ended
            assert "episode is over" in obs.error and result.reward == -2.0 and obs.done
        ended = ended or obs.done
        assert ended or index < 6  # the budget always ends an episode by step 6


@pytest.mark.parametrize("mode", MODES)
def test_hostile_inputs_get_a_message_naming_what_is_valid(mode):
    env = ENVS[mode]
    cases = {
        "not json at all": "not valid JSON",
        '{"type": "inspect"}': "target",
        '{"type": "inspect", "target": "/etc/passwd"}': "logs",
        '{"type": "apply_fix", "fix": 42}': "fix",
        '{"type": "ask_specialist", "specialist": "oracle"}': "runtime",
        '{"type": "teleport"}': "valid actions",
        '{"type": "inspect", "target": "logs", "sudo": true}': "sudo",
        json.dumps({"type": "submit", "fix": "switch_backend", "justification": "x" * 5_000,
                    "root_cause": "arch_guard", "evidence": ["logs"]}): "justification",
    }  # fmt: skip
    for raw, fragment in cases.items():
        env.reset(seed=1)
        result = env.step(raw)
        assert result.reward == -2.0, raw
        assert fragment in result.observation.error, (raw, result.observation.error)


@pytest.mark.parametrize("mode", MODES)
def test_check_env_passes(mode):
    report = check_env("stack_doctor", {"mode": mode})
    assert report.ok, [(r.name, r.detail) for r in report.failures()]
