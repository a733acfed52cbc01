"""WebSocket frames: every refusal is an error frame and the session goes on; fuzzing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from serve_harness import running_server
from stackgym.core.registry import register, registry
from stackgym.serve import ServeConfig
from toy_env import Lockbox

pytestmark = pytest.mark.xdist_group("serve-ws")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    config = ServeConfig.for_env("lockbox", max_frame_bytes=4096, max_body_bytes=4096)
    with running_server(config) as base:
        yield base.replace("http://", "ws://")


def ask(ws: ClientConnection, message: object) -> dict:
    ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
    return json.loads(ws.recv(timeout=10))


def test_every_malformed_frame_gets_an_error_frame_and_the_session_goes_on(url: str) -> None:
    with connect(f"{url}/ws") as ws:
        assert ask(ws, {"type": "reset", "data": {"seed": 4}})["type"] == "observation"
        cases = [
            ("{broken", "INVALID_JSON"),
            ("[]", "VALIDATION_ERROR"),
            ({"type": "dance"}, "UNKNOWN_TYPE"),
            ({"data": {}}, "UNKNOWN_TYPE"),
            ({"type": "step"}, "VALIDATION_ERROR"),
            ({"type": "reset", "data": {"seed": "x"}}, "VALIDATION_ERROR"),
            ({"type": "reset", "data": [1]}, "VALIDATION_ERROR"),
            ({"type": "reset", "data": {"guesses": 7}}, "VALIDATION_ERROR"),
            ({"type": "state", "extra": 1}, "VALIDATION_ERROR"),
            ("x" * 5000, "VALIDATION_ERROR"),
        ]
        for message, code in cases:
            answer = ask(ws, message)
            assert answer["type"] == "error", message
            assert answer["data"]["code"] == code, (message, answer)
            assert answer["data"]["message"]
        # The episode survived all of it.
        state = ask(ws, {"type": "state"})
        assert state["type"] == "state"
        assert state["data"]["seed"] == 4
        assert state["data"]["step_count"] == 0
        step = ask(ws, {"type": "step", "data": {"type": "reveal", "position": 0}})
        assert step["type"] == "observation"
        assert step["data"]["info"] == {}
        assert step["data"]["terminated"] is False


def test_binary_frames_are_read_like_text(url: str) -> None:
    with connect(f"{url}/ws") as ws:
        answer = ask(ws, json.dumps({"type": "reset", "data": {"seed": 1}}).encode())
        assert answer["type"] == "observation"


def test_step_before_reset_is_a_session_error(url: str) -> None:
    with connect(f"{url}/ws") as ws:
        answer = ask(ws, {"type": "step", "data": {"type": "reveal", "position": 0}})
        assert answer["data"]["code"] == "SESSION_ERROR"
        assert "reset" in answer["data"]["hint"]
        empty = ask(ws, {"type": "state"})
        assert empty["data"]["episode_id"] is None


def test_tools_frame_lists_the_env_tools(url: str) -> None:
    with connect(f"{url}/ws") as ws:
        answer = ask(ws, {"type": "tools"})
        assert [t["function"]["name"] for t in answer["data"]["tools"]] == ["reveal", "guess"]


def test_close_frame_ends_the_session(url: str) -> None:
    health = url.replace("ws://", "http://") + "/health"
    with connect(f"{url}/ws") as ws:
        ask(ws, {"type": "reset"})
        assert httpx.get(health).json()["sessions"] == 1
        ws.send(json.dumps({"type": "close"}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert httpx.get(health).json()["sessions"] == 0


def test_frames_far_over_the_limit_close_the_connection_only(url: str) -> None:
    with connect(f"{url}/ws", max_size=None) as ws:
        ws.send("x" * 20_000)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
    with connect(f"{url}/ws") as ws:
        assert ask(ws, {"type": "reset"})["type"] == "observation"


def test_unknown_env_path_is_refused_with_a_frame(url: str) -> None:
    with connect(f"{url}/envs/chess/ws") as ws:
        answer = json.loads(ws.recv(timeout=10))
        assert answer["data"]["code"] == "VALIDATION_ERROR"
        assert "does not serve env 'chess'" in answer["data"]["message"]


def test_websocket_without_the_token_is_refused_with_401() -> None:
    with running_server(ServeConfig.for_env("lockbox", token="t0k")) as base:
        ws_url = base.replace("http://", "ws://") + "/ws"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url)
        assert refused.value.response.status_code == 401
        with connect(ws_url, additional_headers={"Authorization": "Bearer t0k"}) as ws:
            assert ask(ws, {"type": "reset"})["type"] == "observation"


def test_idle_websocket_sessions_are_closed() -> None:
    with (
        running_server(ServeConfig.for_env("lockbox", idle_ttl_s=0.3)) as base,
        connect(base.replace("http://", "ws://") + "/ws") as ws,
    ):
        ask(ws, {"type": "reset"})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1001


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frames = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["reset", "step", "state", "tools", "nope", ""])},
        optional={"data": json_values},
    ).map(json.dumps),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(frames, min_size=1, max_size=6))
def test_fuzzed_frames_are_always_answered_and_never_break_the_server(
    url: str, sequence: list
) -> None:
    with connect(f"{url}/ws") as ws:
        for message in sequence:
            answer = ask(ws, message)
            assert answer["type"] in {"observation", "state", "tools", "error"}
            if answer["type"] == "error":
                assert answer["data"]["code"] in {
                    "INVALID_JSON",
                    "VALIDATION_ERROR",
                    "UNKNOWN_TYPE",
                    "SESSION_ERROR",
                }
        assert ask(ws, {"type": "reset", "data": {"seed": 2}})["type"] == "observation"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/reset", "/step", "/close", "/envs/lockbox/step"]),
    body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
    session=st.booleans(),
)
def test_fuzzed_http_bodies_get_a_4xx_with_a_reason_never_a_500(
    url: str, path: str, body: bytes, session: bool
) -> None:
    base = url.replace("ws://", "http://")
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=base) as http:
        if session:
            headers["X-Session-Id"] = http.post("/reset", json={}).json()["session_id"]
        answer = http.post(path, content=body, headers=headers)
        assert answer.status_code in {200, 400, 404, 409, 413, 422}, answer.text
        if answer.status_code != 200:
            assert answer.json()["detail"]
        assert http.get("/health").json()["status"] == "healthy"


class Crashy(Lockbox):
    """Lockbox whose guesses raise: an env bug the server must contain."""

    env_id = "crashy"

    def _step(self, action):
        if action.type == "guess":
            raise RuntimeError("boom")
        return super()._step(action)


@pytest.fixture
def crashy() -> Iterator[str]:
    register("crashy", "test_serve_websocket:Crashy")
    yield "crashy"
    registry.remove("crashy")


def test_an_env_that_raises_gets_execution_error_and_others_keep_playing(crashy: str) -> None:
    config = ServeConfig(envs=[{"env_id": crashy}, {"env_id": "lockbox"}])
    with running_server(config) as base:
        ws_base = base.replace("http://", "ws://")
        with (
            connect(f"{ws_base}/envs/crashy/ws") as bad,
            connect(f"{ws_base}/envs/lockbox/ws") as good,
        ):
            ask(bad, {"type": "reset", "data": {"seed": 0}})
            ask(good, {"type": "reset", "data": {"seed": 0}})
            answer = ask(bad, {"type": "step", "data": {"type": "guess", "code": "123"}})
            assert answer["data"]["code"] == "EXECUTION_ERROR"
            assert "RuntimeError: boom" in answer["data"]["message"]
            assert (
                ask(good, {"type": "step", "data": {"type": "guess", "code": "123"}})["type"]
                == "observation"
            )
            assert (
                ask(bad, {"type": "step", "data": {"type": "reveal", "position": 0}})["type"]
                == "observation"
            )
        http = httpx.post(f"{base}/envs/crashy/reset", json={"seed": 0}).json()
        failed = httpx.post(
            f"{base}/envs/crashy/step",
            json={"session_id": http["session_id"], "action": {"type": "guess", "code": "000"}},
        )
        assert failed.status_code == 500
        assert failed.json()["code"] == "EXECUTION_ERROR"
