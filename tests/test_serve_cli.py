"""`stackgym serve` and `stackgym mcp` from the command line, as subprocesses."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from mcp import Client
from typer.testing import CliRunner

import serve_envs  # noqa: F401  (registers the test envs in this process too)
from serve_harness import free_port, serve_subprocess
from stackgym.cli import app
from stackgym.client import connect

pytestmark = pytest.mark.xdist_group("serve-cli")


def test_serve_one_env_with_an_option_and_play_it() -> None:
    port = free_port()
    args = ["serve", "lockbox", "--guesses", "1", "--port", str(port), "--import", "serve_envs"]
    with serve_subprocess(args, f"http://127.0.0.1:{port}/health") as process:
        url = f"http://127.0.0.1:{port}"
        with connect(url, "lockbox") as env:
            observation, _ = env.reset(seed=0)
            assert observation.guesses_left == 1
            result = env.step({"type": "guess", "code": "999" if observation else "000"})
            assert result.terminated or result.reward == 1.0
        # One env: OpenEnv's root paths answer too.
        root = httpx.post(f"{url}/reset", json={"seed": 0}).json()
        assert root["observation"]["guesses_left"] == 1
    assert process.returncode is not None
    banner = process.stderr.read().decode()
    assert "serving lockbox" in banner
    assert '"max_sessions": 256' in banner


def test_serve_all_with_a_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKGYM_SERVE_TOKEN", "s3cr3t-Zq9")
    port = free_port()
    args = ["serve", "--all", "--port", str(port), "--import", "serve_envs"]
    with serve_subprocess(args, f"http://127.0.0.1:{port}/health") as process:
        url = f"http://127.0.0.1:{port}"
        assert {"lockbox", "corridor"} <= set(httpx.get(f"{url}/health").json()["envs"])
        assert httpx.post(f"{url}/envs/corridor/reset", json={}).status_code == 401
        with connect(url, "corridor") as env:  # the client reads the same variable
            assert env.reset(seed=1)[1]["length"] == 4
    assert "s3cr3t-Zq9" not in process.stderr.read().decode(), "the token is never printed"


def test_mcp_over_streamable_http_from_the_command_line() -> None:
    port = free_port()
    args = ["mcp", "corridor", "--http", "--port", str(port), "--import", "serve_envs"]

    async def play(url: str) -> tuple[list[str], float]:
        async with Client(url, mode="legacy") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            await client.call_tool("reset", {"seed": 0, "layout": "long"})
            result = await client.call_tool("look", {})
            return names, result.structured_content["reward"]

    with serve_subprocess(args, f"http://127.0.0.1:{port}/mcp"):
        names, reward = asyncio.run(play(f"http://127.0.0.1:{port}/mcp"))
    assert names == ["reset", "state", "move", "look"]
    assert reward == -0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "chess"], "unknown environment 'chess'"),
        (["serve"], "name one env id, or pass --all"),
        (["serve", "lockbox", "--all"], "name one env id, or pass --all"),
        (["serve", "--all", "--guesses", "1"], "cannot be combined with --all"),
        (["serve", "lockbox", "--guesses"], "needs a value"),
        (["serve", "lockbox", "--colour", "red"], "cannot make 'lockbox'"),
        (["serve", "lockbox", "--port", "70000"], "port"),
        (["serve", "lockbox", "--import", "no_such_module_xyz"], "cannot import"),
        (["mcp", "chess"], "unknown environment 'chess'"),
    ],
)
def test_bad_serve_commands_exit_2_with_a_reason(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_serve_help_names_the_endpoints() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "/envs/ENV_ID" in result.output
