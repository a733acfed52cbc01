"""Stateful HTTP: whole episodes over POST /reset and /step, and every refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from serve_harness import (
    ALL_ENV_IDS,
    all_envs_config,
    play_in_process,
    running_server,
    scripted_actions,
)
from stackgym.serve import ServeConfig

pytestmark = pytest.mark.xdist_group("serve-http")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with running_server(all_envs_config()) as url, httpx.Client(base_url=url) as client:
        yield client


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_an_episode_over_plain_http_equals_the_in_process_one(
    http: httpx.Client, env_id: str
) -> None:
    seed = 5
    actions = scripted_actions(env_id, seed)
    expected = play_in_process(env_id, seed, actions)
    first = http.post(f"/envs/{env_id}/reset", json={"seed": seed})
    assert first.status_code == 200
    session = first.json()["session_id"]
    assert first.headers["X-Session-Id"] == session
    played = [{k: first.json()[k] for k in ("observation", "done")} | {"reward": None}]
    for action in actions:
        answer = http.post(f"/envs/{env_id}/step", json={"session_id": session, "action": action})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        played.append({k: body[k] for k in ("observation", "reward", "done")})
        if body["done"]:
            assert "outcome" in body["info"]
            break
    assert played == expected
    state = http.get(f"/envs/{env_id}/state", headers={"X-Session-Id": session}).json()
    assert state["seed"] == seed
    assert state["step_count"] == len(played) - 1
    assert http.post(f"/envs/{env_id}/close", json={"session_id": session}).json()["closed"]


def test_two_http_sessions_do_not_share_an_episode(http: httpx.Client) -> None:
    one = http.post("/envs/lockbox/reset", json={"seed": 1}).json()["session_id"]
    two = http.post("/envs/lockbox/reset", json={"seed": 2}).json()["session_id"]
    http.post(
        "/envs/lockbox/step", json={"session_id": one, "action": {"type": "reveal", "position": 0}}
    )
    assert http.get("/envs/lockbox/state", params={"session_id": one}).json()["step_count"] == 1
    assert http.get("/envs/lockbox/state", params={"session_id": two}).json()["step_count"] == 0
    # Resetting an existing session keeps its id and starts over.
    again = http.post("/envs/lockbox/reset", json={"seed": 9, "session_id": one}).json()
    assert again["session_id"] == one
    assert http.get("/envs/lockbox/state", params={"session_id": one}).json()["seed"] == 9


def test_unknown_and_closed_sessions_are_told_apart(http: httpx.Client) -> None:
    unknown = http.post("/envs/lockbox/step", json={"session_id": "nope", "action": {}})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "SESSION_ERROR"
    assert "unknown session id 'nope'" in unknown.json()["detail"]
    session = http.post("/envs/lockbox/reset", json={}).json()["session_id"]
    assert http.post("/envs/lockbox/close", json={"session_id": session}).status_code == 200
    late = http.post("/envs/lockbox/step", json={"session_id": session, "action": {"type": "look"}})
    assert late.status_code == 404
    assert f"session {session} was closed" in late.json()["detail"]
    missing = http.post("/envs/lockbox/step", json={"action": {"type": "reveal", "position": 0}})
    assert missing.status_code == 400
    assert "no session id" in missing.json()["detail"]


def test_a_session_belongs_to_its_env(http: httpx.Client) -> None:
    session = http.post("/envs/lockbox/reset", json={}).json()["session_id"]
    wrong = http.post(
        "/envs/corridor/step", json={"session_id": session, "action": {"type": "look"}}
    )
    assert wrong.status_code == 404
    assert "belongs to env 'lockbox'" in wrong.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{not json", 400, "INVALID_JSON", "not valid JSON"),
        (b"[1, 2]", 422, "VALIDATION_ERROR", "must be a JSON object"),
        (b'{"seed": -3}', 422, "VALIDATION_ERROR", "seed must be a non-negative integer"),
        (b'{"seed": true}', 422, "VALIDATION_ERROR", "seed must be a non-negative integer"),
        (b'{"colour": "red"}', 422, "VALIDATION_ERROR", "unknown reset field 'colour'"),
        (b'{"guesses": 9}', 422, "VALIDATION_ERROR", "guesses=9 is not one of 1, 2, 3"),
        (b'{"options": 4}', 422, "VALIDATION_ERROR", "options must be a JSON object"),
        (b'{"episode_id": ""}', 422, "VALIDATION_ERROR", "episode_id must be a string"),
    ],
)
def test_bad_reset_bodies_are_refused_with_a_reason(
    http: httpx.Client, body: bytes, status: int, code: str, message: str
) -> None:
    before = http.get("/health").json()["sessions"]
    answer = http.post(
        "/envs/lockbox/reset", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert message in answer.json()["detail"]
    assert http.get("/health").json()["sessions"] == before, "a refused reset leaks no session"


def test_an_unparseable_action_is_answered_by_the_env_like_in_process(http: httpx.Client) -> None:
    session = http.post("/envs/lockbox/reset", json={"seed": 0}).json()["session_id"]
    answer = http.post("/envs/lockbox/step", json={"session_id": session, "action": "not json"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["reward"] == -0.5
    assert "not valid JSON" in body["observation"]["error"]
    assert "not valid JSON" in body["info"]["invalid_action"]
    no_action = http.post("/envs/lockbox/step", json={"session_id": session})
    assert no_action.status_code == 422
    assert "needs an 'action'" in no_action.json()["detail"]


def test_reject_invalid_actions_mode_refuses_without_stepping() -> None:
    config = ServeConfig.for_env("lockbox", reject_invalid_actions=True)
    with running_server(config) as url, httpx.Client(base_url=url) as http:
        session = http.post("/reset", json={"seed": 0}).json()["session_id"]
        answer = http.post("/step", json={"session_id": session, "action": {"type": "fly"}})
        assert answer.status_code == 422
        assert "unknown action type 'fly'" in answer.json()["detail"]
        assert "valid actions" in answer.json()["hint"]
        assert http.get("/state", params={"session_id": session}).json()["step_count"] == 0


def test_oversized_bodies_get_413_and_the_server_keeps_serving() -> None:
    with (
        running_server(ServeConfig.for_env("lockbox", max_body_bytes=4096)) as url,
        httpx.Client(base_url=url) as http,
    ):
        session = http.post("/reset", json={"seed": 0}).json()["session_id"]
        big = {"session_id": session, "action": {"type": "guess", "code": "1" * 10_000}}
        answer = http.post("/step", json=big)
        assert answer.status_code == 413
        assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"

        def chunks():
            for _ in range(10):
                yield b" " * 1000

        chunked = http.post("/step", content=chunks())
        assert chunked.status_code == 413
        ok = http.post(
            "/step", json={"session_id": session, "action": {"type": "reveal", "position": 1}}
        )
        assert ok.status_code == 200


def test_token_auth_refuses_calls_without_the_bearer_token() -> None:
    with (
        running_server(ServeConfig.for_env("lockbox", token="s3cret")) as url,
        httpx.Client(base_url=url) as http,
    ):
        refused = http.post("/reset", json={})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["code"] == "UNAUTHORIZED"
        wrong = http.post("/reset", json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert http.get("/schema").status_code == 401
        assert http.get("/health").status_code == 200
        good = http.post("/reset", json={}, headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200


def test_http_sessions_past_the_limit_get_capacity_reached() -> None:
    with (
        running_server(ServeConfig.for_env("lockbox", max_sessions=2)) as url,
        httpx.Client(base_url=url) as http,
    ):
        first = http.post("/reset", json={}).json()["session_id"]
        http.post("/reset", json={})
        refused = http.post("/reset", json={})
        assert refused.status_code == 503
        assert refused.json()["code"] == "CAPACITY_REACHED"
        http.post("/close", json={"session_id": first})
        assert http.post("/reset", json={}).status_code == 200


def test_idle_sessions_are_closed_after_the_ttl() -> None:
    with (
        running_server(ServeConfig.for_env("lockbox", idle_ttl_s=0.3)) as url,
        httpx.Client(base_url=url) as http,
    ):
        session = http.post("/reset", json={}).json()["session_id"]
        assert http.get("/health").json()["sessions"] == 1
        time.sleep(1.0)
        assert http.get("/health").json()["sessions"] == 0
        late = http.get("/state", params={"session_id": session})
        assert late.status_code == 404
        assert "without a call" in late.json()["detail"]


def test_schema_metadata_tools_and_health_describe_the_env(http: httpx.Client) -> None:
    schema = http.get("/envs/lockbox/schema").json()
    assert {s["title"] for s in schema["action"]["oneOf"]} == {"reveal", "guess"}
    assert "guesses_left" in schema["observation"]["properties"]
    assert "step_count" in schema["state"]["properties"]
    metadata = http.get("/envs/corridor/metadata").json()
    assert metadata["name"] == "corridor"
    assert metadata["client_options"] == {"layout": ["short", "long"]}
    tools = http.get("/envs/corridor/tools").json()["tools"]
    assert [t["function"]["name"] for t in tools] == ["move", "look"]
    health = http.get("/health").json()
    assert health["status"] == "healthy"
    assert set(health["envs"]) == set(ALL_ENV_IDS)


def test_a_server_of_several_envs_asks_for_the_env_at_the_root(http: httpx.Client) -> None:
    answer = http.post("/reset", json={})
    assert answer.status_code == 404
    assert "serves several envs" in answer.json()["detail"]
    unknown = http.post("/envs/chess/reset", json={})
    assert unknown.status_code == 404
    assert "does not serve env 'chess'" in unknown.json()["detail"]


def test_openapi_documents_the_bodies(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    step = spec["paths"]["/envs/{env_id}/step"]["post"]
    assert "action" in step["requestBody"]["content"]["application/json"]["schema"]["properties"]
