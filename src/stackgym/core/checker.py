"""``check_env``: prove an environment honours the protocol (like Gymnasium's checker).

Each check plays real episodes. The report lists every check with a verdict
and, for failures, what was observed, so an env author can fix it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from stackgym.core.env import Env, ResetNeeded
from stackgym.core.models import EnvState, Observation, StepResult

#: Things agents really send: not JSON, the wrong JSON, unknown tools, junk.
MALFORMED_ACTIONS: tuple[Any, ...] = (
    "",
    "not json at all",
    '{"type": ',
    "[]",
    "null",
    "42",
    {},
    {"type": "__no_such_tool__"},
    {"type": 7},
    {"name": "__no_such_tool__", "arguments": "{}"},
    {"name": "x", "arguments": "{not json"},
    "x" * 300_000,
    ["type", "inspect"],
    None,
)


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CheckReport:
    env_id: str
    options: dict[str, Any]
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]


def _obs_key(observation: Observation) -> str:
    return observation.model_dump_json()


def _roll(env: Env, seed: int, steps: int) -> list[tuple[str, float, bool, bool]]:
    """Reset with ``seed`` and play ``steps`` example actions drawn from that seed."""
    rng = random.Random(seed)
    observation, _ = env.reset(seed=seed)
    transcript = [(_obs_key(observation), 0.0, False, False)]
    for _ in range(steps):
        action = rng.choice(env.example_actions(rng))
        result = env.step(action)
        transcript.append(
            (_obs_key(result.observation), result.reward, result.terminated, result.truncated)
        )
        if result.terminated or result.truncated:
            break
    return transcript


class _Checks:
    def __init__(self, factory: Callable[[], Env], seeds: tuple[int, ...], steps: int) -> None:
        self.factory = factory
        self.seeds = seeds
        self.steps = steps

    def run(self) -> Iterator[CheckResult]:
        for check in (
            self.reset_shape,
            self.observation_round_trip,
            self.tools_schema,
            self.every_tool_accepted,
            self.malformed_actions_answered,
            self.actions_after_end_refused,
            self.seeded_determinism,
            self.state_tracks_steps,
            self.step_before_reset,
        ):
            name = check.__name__.replace("_", " ")
            try:
                problem = check()
            except Exception as exc:  # the checker reports, it never crashes
                problem = f"raised {type(exc).__name__}: {exc}"
            yield CheckResult(name, problem is None, problem or "")

    def reset_shape(self) -> str | None:
        env = self.factory()
        out = env.reset(seed=self.seeds[0])
        if not (isinstance(out, tuple) and len(out) == 2):
            return f"reset() must return (observation, info), got {type(out).__name__}"
        observation, info = out
        if not isinstance(observation, env.observation_type):
            expected = env.observation_type.__name__
            return f"reset observation is {type(observation).__name__}, expected {expected}"
        if not isinstance(info, dict):
            return "reset info must be a dict"
        json.dumps(info)
        env.reset()  # without a seed
        return None

    def observation_round_trip(self) -> str | None:
        env = self.factory()
        rng = random.Random(self.seeds[0])
        observation, _ = env.reset(seed=self.seeds[0])
        observations = [observation]
        for action in env.example_actions(rng):
            env.reset(seed=self.seeds[0])
            observations.append(env.step(action).observation)
        for observation in observations:
            text = observation.model_dump_json()
            again = type(observation).model_validate_json(text)
            if again != observation:
                return f"{type(observation).__name__} does not survive JSON round trip"
        return None

    def tools_schema(self) -> str | None:
        env = self.factory()
        tools = env.tools()
        names = [t["function"]["name"] for t in tools]
        if not tools:
            return "env declares no tools"
        if len(set(names)) != len(names):
            return f"duplicate tool names: {names}"
        for tool in tools:
            params = tool["function"]["parameters"]
            if params.get("type") != "object" or "properties" not in params:
                return f"tool {tool['function']['name']!r} parameters are not a JSON object schema"
        json.dumps(tools)
        return None

    def every_tool_accepted(self) -> str | None:
        env = self.factory()
        rng = random.Random(self.seeds[0])
        env.reset(seed=self.seeds[0])
        examples = env.example_actions(rng)
        covered = {a.type for a in examples}
        missing = set(env.action_set.names) - covered
        if missing:
            return f"example_actions() covers no example of tools {sorted(missing)}"
        for action in examples:
            env.reset(seed=self.seeds[0])
            result = env.step(action)
            problem = self._bad_result(env, result)
            if problem:
                return f"tool {action.type!r}: {problem}"
            if "invalid_action" in result.info:
                return f"tool {action.type!r} was refused: {result.info['invalid_action']}"
            # the same action sent as a dict and as JSON text is accepted too
            for form in (action.model_dump(mode="json"), action.model_dump_json()):
                env.reset(seed=self.seeds[0])
                if "invalid_action" in env.step(form).info:
                    return f"tool {action.type!r} refused when sent as {type(form).__name__}"
        return None

    def malformed_actions_answered(self) -> str | None:
        env = self.factory()
        for raw in MALFORMED_ACTIONS:
            env.reset(seed=self.seeds[0])
            result = env.step(raw)
            problem = self._bad_result(env, result)
            if problem:
                return f"malformed action {str(raw)[:40]!r}: {problem}"
            if not result.observation.error or "invalid_action" not in result.info:
                return f"malformed action {str(raw)[:40]!r} was not refused with an error"
        return None

    def actions_after_end_refused(self) -> str | None:
        env = self.factory()
        rng = random.Random(self.seeds[0])
        env.reset(seed=self.seeds[0])
        for _ in range(1_000):
            result = env.step(rng.choice(env.example_actions(rng)))
            if result.terminated or result.truncated:
                break
        else:
            return "no episode ended within 1,000 example actions"
        after = env.step(rng.choice(env.example_actions(rng)))
        if "invalid_action" not in after.info or not after.observation.error:
            return "an action after the episode ended was not refused"
        if not (after.terminated or after.truncated):
            return "an action after the end must report the episode as ended"
        return None

    def seeded_determinism(self) -> str | None:
        for seed in self.seeds:
            first = _roll(self.factory(), seed, self.steps)
            again_env = self.factory()
            second = _roll(again_env, seed, self.steps)
            third = _roll(again_env, seed, self.steps)  # same instance, reset again
            for other, label in ((second, "a second env"), (third, "a second reset")):
                if other != first:
                    index = next(
                        (i for i, (a, b) in enumerate(zip(first, other, strict=False)) if a != b),
                        min(len(first), len(other)),
                    )
                    return (
                        f"seed {seed}: {label} diverged at step {index} "
                        "(same seed and actions must give the same observations and rewards)"
                    )
        return None

    def state_tracks_steps(self) -> str | None:
        env = self.factory()
        rng = random.Random(self.seeds[0])
        env.reset(seed=self.seeds[0])
        state = env.state
        if not isinstance(state, EnvState):
            return "state must be an EnvState"
        if state.seed != self.seeds[0] or state.step_count != 0 or not state.episode_id:
            return f"state after reset is off: {state.model_dump()}"
        env.step(rng.choice(env.example_actions(rng)))
        if env.state.step_count != 1:
            return f"state.step_count is {env.state.step_count} after one step"
        json.loads(env.state.model_dump_json())
        return None

    def step_before_reset(self) -> str | None:
        env = self.factory()
        try:
            env.step({"type": "anything"})
        except ResetNeeded:
            return None
        return "step() before reset() must raise ResetNeeded"

    @staticmethod
    def _bad_result(env: Env, result: Any) -> str | None:
        if not isinstance(result, StepResult):
            return f"step() returned {type(result).__name__}, expected StepResult"
        if not isinstance(result.observation, env.observation_type):
            return f"observation is {type(result.observation).__name__}"
        if not isinstance(result.reward, (int, float)):
            return "reward is not a number"
        if result.observation.done != (result.terminated or result.truncated):
            return "observation.done disagrees with terminated/truncated"
        if result.observation.reward is not None and result.observation.reward != result.reward:
            return "observation.reward disagrees with the returned reward"
        json.dumps(result.info)
        return None


def check_env(
    env_id: str | Callable[[], Env],
    options: dict[str, Any] | None = None,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    steps: int = 12,
) -> CheckReport:
    """Run every protocol check against ``env_id`` made with ``options``.

    ``env_id`` may also be a zero-argument factory returning a fresh env.
    """
    from stackgym.core.registry import make

    options = dict(options or {})
    if callable(env_id):
        factory = env_id
        name = getattr(env_id, "__name__", "env")
    else:
        name = env_id

        def factory() -> Env:
            return make(name, **options)

    report = CheckReport(env_id=name, options=options)
    report.results.extend(_Checks(factory, seeds, steps).run())
    return report
