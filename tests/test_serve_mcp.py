"""The real MCP client lists and calls every env's tools and plays episodes to the end."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

import stackgym
from serve_harness import (
    ALL_ENV_IDS,
    BIN,
    play_in_process,
    scripted_actions,
    subprocess_env,
)
from stackgym.serve import ServeConfig
from stackgym.serve.mcp import streamable_http_app

pytestmark = pytest.mark.xdist_group("serve-mcp")


def _stdio(env_id: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(BIN / "stackgym"),
        args=["mcp", env_id, "--import", "serve_envs"],
        env=subprocess_env(),
    )


async def _play(client: Client, actions: list[dict], seed: int) -> list[dict]:
    first = await client.call_tool("reset", {"seed": seed})
    assert not first.is_error, first.content
    transcript = [
        {
            "observation": first.structured_content["observation"],
            "reward": None,
            "done": first.structured_content["done"],
        }
    ]
    for action in actions:
        arguments = {k: v for k, v in action.items() if k != "type"}
        result = await client.call_tool(action["type"], arguments)
        payload = result.structured_content
        assert result.content[0].text == payload["observation"]["text"]
        transcript.append({k: payload[k] for k in ("observation", "reward", "done")})
        if payload["done"]:
            break
    return transcript


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_mcp_stdio_lists_the_env_tools_and_plays_an_episode_to_the_end(env_id: str) -> None:
    seed = 1
    actions = scripted_actions(env_id, seed)
    expected = play_in_process(env_id, seed, actions)
    env = stackgym.make(env_id)
    try:
        env_tools = {t["function"]["name"]: t["function"] for t in env.tools()}
    finally:
        env.close()

    async def run() -> tuple[list, list]:
        async with Client(_stdio(env_id)) as client:
            listed = (await client.list_tools()).tools
            transcript = await _play(client, actions, seed)
            state = await client.call_tool("state", {})
            assert state.structured_content["step_count"] == len(transcript) - 1
            return listed, transcript

    listed, transcript = asyncio.run(run())
    by_name = {tool.name: tool for tool in listed}
    assert set(by_name) == {"reset", "state", *env_tools}
    for name, function in env_tools.items():
        assert by_name[name].description == function["description"]
        schema = dict(by_name[name].input_schema)
        assert schema["properties"].pop("session_id")["type"] == "string"
        assert schema == function["parameters"]
    assert transcript == expected
    assert transcript[-1]["done"]


def test_mcp_refusals_are_tool_errors_and_the_episode_goes_on() -> None:
    async def run() -> None:
        async with Client(_stdio("lockbox")) as client:
            early = await client.call_tool("reveal", {"position": 0})
            assert early.is_error
            assert "call the reset tool first" in early.content[0].text
            bad_option = await client.call_tool("reset", {"guesses": 9})
            assert bad_option.is_error
            assert "guesses=9" in bad_option.content[0].text
            await client.call_tool("reset", {"seed": 0, "guesses": 2})
            refused = await client.call_tool("guess", {"code": "abc"})
            assert refused.is_error
            assert refused.structured_content["reward"] == -0.5
            assert "invalid 'guess' action" in refused.content[0].text
            unknown = await client.call_tool("teleport", {})
            assert unknown.is_error and "unknown tool 'teleport'" in unknown.content[0].text
            state = await client.call_tool("state", {})
            assert state.structured_content["step_count"] == 1
            ok = await client.call_tool("reveal", {"position": 1})
            assert not ok.is_error
            assert ok.structured_content["observation"]["guesses_left"] == 2

    asyncio.run(run())


@contextmanager
def _mcp_http(config: ServeConfig, env_id: str) -> Iterator[str]:
    app = streamable_http_app(config, env_id)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_mcp_streamable_http_in_both_protocol_eras() -> None:
    seed = 6
    actions = scripted_actions("corridor", seed)
    expected = play_in_process("corridor", seed, actions)

    async def run(url: str) -> None:
        # Handshake era: the Mcp-Session-Id ties calls to the episode.
        async with Client(url, mode="legacy") as client:
            assert await _play(client, actions, seed) == expected
        # Stateless era: each call names its episode with session_id.
        async with Client(url) as client:
            first = await client.call_tool("reset", {"seed": seed})
            session = first.structured_content["session_id"]
            lost = await client.call_tool("look", {})
            assert lost.is_error and "pass the session_id" in lost.content[0].text
            step = await client.call_tool("look", {"session_id": session})
            assert not step.is_error
            assert step.structured_content["observation"]["distance"] is not None

    with _mcp_http(ServeConfig.for_env("corridor"), "corridor") as url:
        asyncio.run(run(url))


def test_mcp_http_needs_the_token() -> None:
    with _mcp_http(ServeConfig.for_env("lockbox", token="k"), "lockbox") as url:
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401

        async def run() -> list[str]:
            # The SDK's transport takes an httpx2 client (its HTTP library).
            http = httpx2.AsyncClient(headers={"Authorization": "Bearer k"})

            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                return [t.name for t in (await client.list_tools()).tools]

        assert asyncio.run(run()) == ["reset", "state", "reveal", "guess"]
