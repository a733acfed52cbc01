"""What the serving tests share: real servers on 127.0.0.1 and in-process references.

A server runs with uvicorn in a thread of the test process (or, for the CLI
tests, as a ``stackgym serve`` subprocess); clients are the real ones
(openenv-core, mcp, websockets, httpx).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import serve_envs
import stackgym
from stackgym.core.registry import registry
from stackgym.serve import ServeConfig, create_app
from stackgym.serve.runner import uvicorn_options

TESTS = Path(__file__).parent
ROOT = TESTS.parent
BIN = Path(sys.executable).parent

#: Every env the compatibility tests cover: the built-in ones and the test envs.
ALL_ENV_IDS = sorted(set(registry) | set(serve_envs.TEST_ENV_IDS))
#: Steps an episode may take before a test calls it stuck (every env has a budget).
MAX_EPISODE_STEPS = 100


@contextmanager
def running_server(config: ServeConfig) -> Iterator[str]:
    """Serve ``config`` on a free port in a thread; yield its base URL."""
    app = create_app(config)
    options = {**uvicorn_options(config), "port": 0}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def all_envs_config(**knobs: Any) -> ServeConfig:
    return ServeConfig(envs=[{"env_id": env_id} for env_id in ALL_ENV_IDS], **knobs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    """Environment of a ``stackgym`` subprocess that can import the test envs."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@contextmanager
def serve_subprocess(args: list[str], health_url: str) -> Iterator[subprocess.Popen]:
    """Run ``stackgym ARGS`` until ``health_url`` answers at all; stop it afterwards."""
    process = subprocess.Popen(
        [str(BIN / "stackgym"), *args],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"stackgym {args} exited: {process.stderr.read().decode()}")
            try:
                httpx.get(health_url, timeout=1)
                break  # any answer: the server is listening
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"stackgym {args} did not start")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scripted_actions(env_id: str, seed: int, count: int = MAX_EPISODE_STEPS) -> list[dict]:
    """A seeded sequence of valid actions (the env's own examples) as JSON dicts."""
    env = stackgym.make(env_id)
    try:
        rng = random.Random(seed)
        env.reset(seed=seed)
        return [rng.choice(env.example_actions(rng)).model_dump(mode="json") for _ in range(count)]
    finally:
        env.close()


def play_in_process(env_id: str, seed: int, actions: list[dict]) -> list[dict[str, Any]]:
    """The reference transcript: reset, then ``actions`` until the episode ends."""
    env = stackgym.make(env_id)
    try:
        observation, _ = env.reset(seed=seed)
        transcript = [
            {"observation": observation.model_dump(mode="json"), "reward": None, "done": False}
        ]
        for action in actions:
            result = env.step(action)
            done = result.terminated or result.truncated
            transcript.append(
                {
                    "observation": result.observation.model_dump(mode="json"),
                    "reward": result.reward,
                    "done": done,
                }
            )
            if done:
                break
        return transcript
    finally:
        env.close()
