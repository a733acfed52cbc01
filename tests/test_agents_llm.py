"""LLMAgent driven through the real openai client against a real fake-provider server."""

from __future__ import annotations

import asyncio
import itertools
import json
import re

import pytest

from stackgym.agents.fake_provider import ChatRequest, FakeProvider, Reply
from stackgym.agents.llm import LLMAgent, LLMSettings, Provider
from stackgym.core import ConfigError, InfraError, arun_episode, make_agent, run_episode
from toy_env import Lockbox

FAST = LLMSettings(backoff_s=0.001, max_backoff_s=0.01, call_timeout_s=5)


def code_of(seed: int) -> str:
    """The Lockbox code for a seed, read from a fresh env (the env owns the rule)."""
    env = Lockbox()
    env.reset(seed=seed)
    return env.code


def solver(request: ChatRequest) -> Reply:
    """A scripted 'model': reveal the three digits, then guess from the tool results."""
    results = [
        m["content"]
        for m in request.messages
        if m["role"] == "tool" and m["content"].startswith("digit")
    ]
    if len(results) < 3:
        return Reply.tool("reveal", {"position": len(results)}, content=f"look at {len(results)}")
    digits = [re.search(r"digit (\d) is (\d)", r).group(2) for r in results[:3]]
    return Reply.tool("guess", {"code": "".join(digits)}, content="I have all three digits")


def then_solve(*first: Reply):
    """Answer with ``first`` replies, then play like :func:`solver`."""
    queue = list(first)

    def model(request: ChatRequest) -> Reply:
        return queue.pop(0) if queue else solver(request)

    return model


@pytest.fixture
def openai_env(monkeypatch):
    """Point the openai:MODEL family at a fake provider started by the test."""

    def point(provider: FakeProvider, key: str = "sk-test") -> None:
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url)
        monkeypatch.setenv("OPENAI_API_KEY", key)

    return point


def agent_for(
    provider: FakeProvider, settings: LLMSettings = FAST, key: str = "sk-test"
) -> LLMAgent:
    return LLMAgent(
        "fake-model", Provider("openai", provider.url, "OPENAI_API_KEY", key), settings=settings
    )


def play(agent: LLMAgent, seed: int = 11):
    async def go():
        try:
            return await arun_episode(Lockbox(), agent, seed=seed)
        finally:
            await agent.aclose()

    return asyncio.run(go())


def test_native_tool_calls_solve_an_episode_and_feed_results_back():
    settings = FAST.model_copy(update={"temperature": 0.2, "max_tokens": 256, "seed": 7})
    with FakeProvider(solver, api_key="sk-test") as provider:
        record = play(agent_for(provider, settings))
        requests = provider.requests
    assert record.passed is True and record.error is None
    assert [s.tool_calls[0].name for s in record.steps] == ["reveal", "reveal", "reveal", "guess"]
    assert record.steps[-1].action == {
        "name": "guess",
        "arguments": json.dumps({"code": code_of(11)}),
    }
    assert record.steps[0].reasoning == "look at 0"
    assert len(requests) == 4
    first = requests[0].body
    assert [t["function"]["name"] for t in first["tools"]] == ["reveal", "guess"]
    assert (first["temperature"], first["max_tokens"], first["seed"]) == (0.2, 256, 7)
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert "Find the 3-digit code" in first["messages"][1]["content"]
    for before, after in itertools.pairwise(requests):
        call_id = after.messages[-2]["tool_calls"][0]["id"]
        assert (
            after.messages[-1]["role"] == "tool" and after.messages[-1]["tool_call_id"] == call_id
        )
        assert len(after.messages) == len(before.messages) + 2
    assert record.usage.calls == 4 and record.usage.prompt_tokens > 0
    assert (
        record.agent.name == "openai:fake-model" and record.agent.params["protocol_used"] == "tools"
    )


def test_cost_is_the_providers_when_reported():
    with FakeProvider(solver, cost_per_token=1e-6) as provider:
        record = play(agent_for(provider))
    per_step = [s.usage.cost_usd for s in record.steps]
    assert per_step == [
        pytest.approx((s.usage.prompt_tokens + s.usage.completion_tokens) * 1e-6)
        for s in record.steps
    ]
    assert record.usage.cost_usd == pytest.approx(sum(per_step))


def test_cost_falls_back_to_a_user_price_table_and_is_none_for_unknown_models(tmp_path):
    table = tmp_path / "prices.yaml"
    table.write_text("version: 1\nmodels:\n  fake-model: {prompt: 1.0, completion: 2.0}\n")
    script = [Reply.tool("reveal", {"position": 0}, prompt_tokens=1000, completion_tokens=500)]
    with FakeProvider(script) as provider:
        agent = agent_for(provider, FAST.model_copy(update={"price_table": str(table)}))
        env = Lockbox()
        obs, info = env.reset(seed=1)
        agent.reset(env, obs, info)
        turn = agent.act(obs)
        agent.close()
    assert turn.usage.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    with FakeProvider([Reply.tool("reveal", {"position": 0})]) as provider:
        agent = LLMAgent("no-such-model", Provider("openai", provider.url, "K", "k"), settings=FAST)
        agent.reset(env, obs, info)
        assert agent.act(obs).usage.cost_usd is None
        agent.close()


@pytest.mark.parametrize(
    ("bad", "refusal"),
    [
        (Reply.tool("guess", "{not json"), "not valid JSON"),
        (Reply.tool("open_sesame", {}), "unknown action type 'open_sesame'"),
        (Reply.tool("guess", {"code": "12"}), "invalid 'guess' action"),
        (Reply.text("I believe the code is 123."), "not valid JSON"),
    ],
)
def test_malformed_replies_are_invalid_actions_and_the_episode_continues(bad, refusal):
    with FakeProvider(then_solve(bad)) as provider:
        record = play(agent_for(provider))
        second = provider.requests[1]
    assert refusal in record.steps[0].info["invalid_action"]
    assert refusal in record.steps[0].observation["error"]
    assert record.passed is True and len(record.steps) == 5
    fed_back = second.messages[-1]
    assert refusal in fed_back["content"]
    assert fed_back["role"] == ("user" if bad.kind == "message" and not bad.tool_calls else "tool")


def test_several_tool_calls_in_one_reply_are_stepped_in_order_with_one_model_call():
    reveal_all = Reply.tools([("reveal", {"position": p}) for p in range(3)])
    with FakeProvider(then_solve(reveal_all)) as provider:
        record = play(agent_for(provider))
        requests = provider.requests
    assert record.passed is True
    assert [s.usage is not None for s in record.steps] == [True, False, False, True]
    assert len(requests) == 2
    answers = requests[1].messages[-3:]
    ids = [c["id"] for c in requests[1].messages[-4]["tool_calls"]]
    assert [m["tool_call_id"] for m in answers] == ids
    assert [m["content"] for m in answers] == [f"digit {i} is {code_of(11)[i]}" for i in range(3)]


def xml_solver(request: ChatRequest) -> Reply:
    results = [m["content"] for m in request.messages[2:] if m["role"] == "user"]
    if len(results) < 3:
        return Reply.text(f"Let me look.\n<tool>reveal</tool>\n<position>{len(results)}</position>")
    digits = "".join(re.search(r"digit \d is (\d)", r).group(1) for r in results)
    return Reply.text(f"<tool>guess</tool><code>{digits}</code>")


def test_xml_tag_protocol_for_models_without_tool_calling():
    with FakeProvider(xml_solver) as provider:
        record = play(agent_for(provider, FAST.model_copy(update={"protocol": "xml"})))
        first = provider.requests[0].body
    assert "tools" not in first
    system = first["messages"][0]["content"]
    assert "<tool>TOOL_NAME</tool>" in system and "<position> (integer)" in system
    assert record.passed is True
    assert record.steps[0].action == {"type": "reveal", "position": 0}


def test_auto_protocol_falls_back_to_tags_when_the_provider_refuses_tools():
    def model(request: ChatRequest) -> Reply:
        if "tools" in request.body:
            return Reply.error(404, "No endpoints found that support tool use.")
        return xml_solver(request)

    with FakeProvider(model) as provider:
        record = play(agent_for(provider))
        with_tools = [r for r in provider.requests if "tools" in r.body]
    assert record.passed is True and record.error is None
    assert len(with_tools) == 1
    assert record.agent.params["protocol_used"] == "xml"


def test_429_500_and_malformed_bodies_are_retried_then_the_call_succeeds():
    script = [
        Reply.error(429, "slow down", retry_after=0),
        Reply.error(500, "upstream exploded"),
        Reply.raw("<html>bad gateway</html>"),
        Reply.raw('{"id": "x", "choices": []}'),
        Reply.tool("reveal", {"position": 0}),
    ]
    with FakeProvider(script) as provider:
        agent = agent_for(provider)
        env = Lockbox()
        obs, info = env.reset(seed=3)
        agent.reset(env, obs, info)
        turn = agent.act(obs)
        agent.close()
        assert provider.request_count == 5
    assert turn.action == {"name": "reveal", "arguments": '{"position": 0}'}
    assert agent.retries == 4


def test_a_hung_provider_times_out_and_the_call_is_retried():
    with FakeProvider([Reply.hang(), Reply.tool("reveal", {"position": 1})]) as provider:
        agent = agent_for(provider, FAST.model_copy(update={"call_timeout_s": 0.3}))
        env = Lockbox()
        obs, info = env.reset(seed=3)
        agent.reset(env, obs, info)

        async def one_turn():
            try:
                return await agent.aact(obs)
            finally:
                await agent.aclose()

        turn = asyncio.run(one_turn())
        assert provider.request_count == 2
    assert turn.tool_calls[0].arguments == '{"position": 1}'


def test_exhausted_retries_end_the_episode_as_an_infra_error():
    settings = FAST.model_copy(update={"max_retries": 2})
    with FakeProvider(lambda request: Reply.error(503, "overloaded")) as provider:
        record = play(agent_for(provider, settings))
        assert provider.request_count == 3
    assert record.passed is None and record.outcome["infra_error"] is True
    assert "gave up after 3 attempt(s); last error HTTP 503: overloaded" in record.error


def test_a_401_is_an_infra_error_at_once_not_a_failed_task():
    with FakeProvider(solver, api_key="sk-right") as provider:
        record = play(agent_for(provider, key="sk-wrong"))
        assert provider.request_count == 1  # permanent: never retried
    assert record.passed is None and record.steps == []
    assert "API key was refused (HTTP 401)" in record.error
    assert record.outcome == {"passed": None, "infra_error": True}


def test_an_unknown_model_404_is_an_infra_error():
    with FakeProvider([Reply.error(404, "model 'fake-model' does not exist")]) as provider:
        record = play(agent_for(provider))
    assert "not found (HTTP 404): model 'fake-model' does not exist" in record.error


def test_sync_and_async_agents_play_the_same_episode(openai_env):
    with FakeProvider(solver) as provider:
        openai_env(provider)
        agent = make_agent("openai:fake-model", "lockbox", settings=FAST)
        sync = run_episode(Lockbox(), agent, seed=5)
        agent.close()
        asynchronous = play(make_agent("openai:fake-model", "lockbox", settings=FAST), seed=5)
    assert [s.action for s in sync.steps] == [s.action for s in asynchronous.steps]
    assert sync.passed is asynchronous.passed is True


def test_openrouter_family_sends_its_key_to_its_base_url(monkeypatch):
    with FakeProvider(solver, api_key="or-key") as provider:
        monkeypatch.setenv("OPENROUTER_BASE_URL", provider.url)
        monkeypatch.setenv("OPENROUTER_API_KEY", "or-key")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        record = play(make_agent("openrouter:x-ai/grok-code-fast-1", "lockbox", settings=FAST))
        request = provider.requests[0]
    assert record.passed is True
    assert request.model == "x-ai/grok-code-fast-1"
    assert request.headers["x-title"] == "stackgym"


@pytest.mark.parametrize(
    ("family", "variable"), [("openai", "OPENAI_API_KEY"), ("openrouter", "OPENROUTER_API_KEY")]
)
def test_a_missing_api_key_is_a_clear_error_before_any_call(monkeypatch, family, variable):
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError) as caught:
        make_agent(f"{family}:some-model", "lockbox")
    assert f"{variable} is not set" in caught.value.message
    assert f"export {variable}=" in caught.value.hint


def test_a_system_prompt_setting_replaces_the_default():
    with FakeProvider(solver) as provider:
        play(agent_for(provider, FAST.model_copy(update={"system_prompt": "You open locks."})))
        assert provider.requests[0].messages[0] == {"role": "system", "content": "You open locks."}


def test_infra_error_class_is_what_the_agent_raises():
    with FakeProvider([Reply.error(403, "forbidden")]) as provider:
        agent = agent_for(provider)
        env = Lockbox()
        obs, info = env.reset(seed=0)
        agent.reset(env, obs, info)
        with pytest.raises(InfraError) as caught:
            agent.act(obs)
        agent.close()
    assert "HTTP 403" in caught.value.message and caught.value.hint == "check OPENAI_API_KEY"
