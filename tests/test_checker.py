"""The env checker passes a correct env and names what is wrong with broken ones."""

from __future__ import annotations

import random
from typing import Any

import pytest
from typer.testing import CliRunner

from stackgym.cli import app
from stackgym.core import StepResult, check_env
from stackgym.core.registry import register, registry
from toy_env import Lockbox, LockboxObservation


def failing(report) -> dict[str, str]:
    return {r.name: r.detail for r in report.failures()}


def test_checker_passes_a_correct_env():
    report = check_env(Lockbox)
    assert report.ok, failing(report)
    assert {r.name for r in report.results} >= {
        "seeded determinism",
        "every tool accepted",
        "malformed actions answered",
        "observation round trip",
    }


class WallClockLockbox(Lockbox):
    """Draws its code from an unseeded generator: not reproducible."""

    def _reset(self, seed: int, options: dict[str, Any]):
        obs, info = super()._reset(seed, options)
        self.code = f"{random.SystemRandom().randrange(1000):03d}"
        obs.text = f"code hash {hash(self.code) % 97}"
        return obs, info


class CrashOnGuess(Lockbox):
    def _step(self, action):
        if action.type == "guess":
            raise RuntimeError("boom")
        return super()._step(action)


class NaNObservation(LockboxObservation):
    score: float = 0.0


class NaNLockbox(Lockbox):
    observation_type = NaNObservation

    def _observe(self, text, reward, done, error=None):
        base = super()._observe(text, reward, done, error)
        return NaNObservation(**base.model_dump(), score=float("nan"))


class SilentInvalid(Lockbox):
    """Answers malformed actions without saying what was wrong."""

    def _invalid(self, message: str) -> StepResult:
        result = super()._invalid(message)
        result.observation.error = None
        return result


@pytest.mark.parametrize(
    ("env_class", "check", "fragment"),
    [
        (WallClockLockbox, "seeded determinism", "diverged"),
        (CrashOnGuess, "every tool accepted", "RuntimeError: boom"),
        (NaNLockbox, "observation round trip", ""),
        (SilentInvalid, "malformed actions answered", "not refused with an error"),
    ],
)
def test_checker_names_the_broken_property(env_class, check, fragment):
    report = check_env(env_class)
    failures = failing(report)
    assert check in failures, failures
    assert fragment in failures[check]


def test_check_env_command_reports_each_check_and_exit_code():
    register("lockbox-cli", "toy_env:Lockbox")
    register("lockbox-cli-broken", "test_checker:CrashOnGuess")
    try:
        runner = CliRunner()
        good = runner.invoke(app, ["check-env", "lockbox-cli"])
        assert good.exit_code == 0, good.output
        assert "all checks passed" in good.output
        bad = runner.invoke(app, ["check-env", "lockbox-cli-broken", "--json"])
        assert bad.exit_code == 1
        assert '"ok": false' in bad.output
        unknown = runner.invoke(app, ["check-env", "no-such-env"])
        assert unknown.exit_code == 2
        assert "lockbox-cli" in unknown.output
    finally:
        registry.remove("lockbox-cli")
        registry.remove("lockbox-cli-broken")
