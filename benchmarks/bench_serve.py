"""Serving throughput, latency, session cost, memory and a load test (issue 8).

Targets: WebSocket >= 3,000 steps/s with 1 client and >= 4,500 with 8;
stateful HTTP >= 1,000 steps/s; session creation <= 1 ms p50; 256 concurrent
sessions with server RSS <= 150 MB; 64 clients x 200 episodes with 0 errors
and every episode's rewards equal to the in-process run with the same seeds.

The server runs as its own process pinned to one core, the clients as another
process pinned to the other (``taskset``, where available); loopback only;
every loop is bounded. Throughput figures are the best of ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_serve.py                  # toy env (Lockbox)
    .venv/bin/python benchmarks/bench_serve.py --env stack_doctor \\
        --policy '[{"type": "inspect", "target": "logs"}, {"type": "submit", ...}]'

A policy is a JSON list of actions played in order after each reset (the
"inspect once, then submit" shape); ``--long-policy`` is the 6-step one.
Steps/s counts env steps; the resets between episodes take time but are not
counted as steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The toy env lives with the tests; the benchmark registers it in both processes.
TOY_MODULE_PATH = ROOT / "tests"

#: Default policies per env: (inspect once then submit, a 6-step episode).
POLICIES: dict[str, tuple[list[dict], list[dict]]] = {
    "lockbox": (
        [{"type": "reveal", "position": 0}, {"type": "guess", "code": "000"}],
        [
            {"type": "reveal", "position": 0},
            {"type": "reveal", "position": 1},
            {"type": "reveal", "position": 2},
            {"type": "guess", "code": "000"},
            {"type": "guess", "code": "111"},
            {"type": "guess", "code": "222"},
        ],
    ),
    "stack_doctor": (
        [
            {"type": "inspect", "target": "logs"},
            {
                "type": "submit",
                "root_cause": "arch_guard",
                "fix": "relax_arch_check",
                "justification": "the logs show the architecture guard rejecting the device",
            },
        ],
        [
            {"type": "inspect", "target": "logs"},
            {"type": "inspect", "target": "config"},
            {"type": "inspect", "target": "snippet"},
            {"type": "inspect", "target": "metrics"},
            {"type": "inspect", "target": "logs"},
            {
                "type": "submit",
                "root_cause": "arch_guard",
                "fix": "relax_arch_check",
                "justification": "the logs show the architecture guard rejecting the device",
            },
        ],
    ),
}

#: What the issue measured for the original server (openenv-core 0.2.1, same machine).
ORIGINAL = {
    "ws1": "750-1,080 steps/s (p50 0.75 ms)",
    "ws8": "1,500-2,000 steps/s (cap raised)",
    "http": "~33 steps/s, and no episode (stateless)",
    "session": "14-20 ms",
    "sessions256": "refuses the 5th session",
    "load": "-",
}


def _register_toy() -> None:
    sys.path.insert(0, str(TOY_MODULE_PATH))
    from stackgym.core.registry import register, registry

    if "lockbox" not in registry:
        register("lockbox", "toy_env:Lockbox", choices={"guesses": (1, 2, 3)})


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() > 1 else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_main(env_id: str, port: int, max_sessions: int) -> None:
    """The server process (``--env floor``: the transport floor, below)."""
    _register_toy()
    from stackgym.serve import ServeConfig, run_server

    served = "lockbox" if env_id == "floor" else env_id
    config = ServeConfig.for_env(served, port=port, max_sessions=max_sessions)
    if env_id != "floor":
        run_server(config)
        return
    import uvicorn

    from stackgym.serve.runner import uvicorn_options

    uvicorn.run(_floor_app, **uvicorn_options(config))


#: What the floor server answers to every frame: a typical step payload.
FLOOR_REPLY = json.dumps(
    {
        "type": "observation",
        "data": {
            "observation": {"text": "digit 0 is 3", "done": False, "reward": -0.1},
            "reward": -0.1,
            "done": False,
            "terminated": False,
            "truncated": False,
            "info": {},
        },
    }
)


async def _floor_app(scope: dict, receive: Any, send: Any) -> None:
    """The transport floor: uvicorn with our settings, answering a fixed frame, no env.

    The gap between it and the real server is what stackgym adds per frame.
    """
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": FLOOR_REPLY})


def frame_round_trip(url: str, env_id: str, action: dict, frames: int):
    """Frames/s and p50 of one blocking client sending step frames back to back."""
    from stackgym.client import _BlockingWebSocket

    path = "/ws" if env_id == "floor" else f"/envs/{env_id}/ws"
    ws = _BlockingWebSocket(url.replace("http", "ws") + path, {}, 30)
    if env_id != "floor":
        ws.request({"type": "reset", "data": {"seed": 0}})
    message = {"type": "step", "data": action}
    latencies = []
    started = time.perf_counter()
    for _ in range(frames):
        t = time.perf_counter()
        ws.request(message)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    ws.close()
    return frames / elapsed, statistics.median(latencies) * 1000, frames


class Server:
    """The server subprocess, pinned to core 0."""

    def __init__(self, env_id: str, max_sessions: int = 300) -> None:
        import httpx

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            *_pin(0),
            sys.executable,
            __file__,
            "--serve",
            str(self.port),
            "--env",
            env_id,
            "--max-sessions",
            str(max_sessions),
        ]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                return  # any answer: it is listening
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.process.stderr.read().decode()}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- client-side measurements (run in the client process, pinned to core 1) --------------


async def _openenv_episodes(url: str, policy: list[dict], episodes: int, first_seed: int):
    from openenv.core.generic_client import GenericEnvClient

    latencies: list[float] = []
    rewards: list[list[float]] = []
    async with GenericEnvClient(base_url=url) as client:
        for episode in range(episodes):
            await client.reset(seed=first_seed + episode)
            got = []
            for action in policy:
                started = time.perf_counter()
                result = await client.step(action)
                latencies.append(time.perf_counter() - started)
                got.append(result.reward)
                if result.done:
                    break
            rewards.append(got)
    return latencies, rewards


async def _stackgym_episodes(url: str, env_id: str, policy, episodes: int, first_seed: int):
    from stackgym.client import aconnect

    latencies: list[float] = []
    rewards: list[list[float]] = []
    async with await aconnect(url, env_id) as env:
        for episode in range(episodes):
            await env.reset(seed=first_seed + episode)
            got = []
            for action in policy:
                started = time.perf_counter()
                result = await env.step(action)
                latencies.append(time.perf_counter() - started)
                got.append(result.reward)
                if result.terminated or result.truncated:
                    break
            rewards.append(got)
    return latencies, rewards


def websocket_throughput(url: str, env_id: str, policy, clients: int, steps: int, client: str):
    """Steps/s and step p50 (ms) of ``clients`` concurrent sessions."""
    # Import before the clock starts: openenv-core pulls in a large web stack.
    import openenv.core.generic_client  # noqa: F401
    import uvloop

    import stackgym.client  # noqa: F401

    per_client = max(1, steps // (clients * len(policy)))

    async def run(per_client: int):
        if client == "openenv":
            jobs = [
                _openenv_episodes(f"{url}/envs/{env_id}", policy, per_client, i * per_client)
                for i in range(clients)
            ]
        else:
            jobs = [
                _stackgym_episodes(url, env_id, policy, per_client, i * per_client)
                for i in range(clients)
            ]
        started = time.perf_counter()
        results = await asyncio.gather(*jobs)
        return time.perf_counter() - started, results

    uvloop.run(run(2))  # warm-up: first connections, first frames
    elapsed, results = uvloop.run(run(per_client))
    latencies = [x for lat, _ in results for x in lat]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, len(latencies)


def stackgym_sync_throughput(url: str, env_id: str, policy, steps: int):
    """One blocking stackgym client (the one run_episode uses)."""
    from stackgym.client import connect

    episodes = max(1, steps // len(policy))
    latencies = []
    with connect(url, env_id) as env:
        env.reset(seed=0)
        env.step(policy[0])
        started = time.perf_counter()
        for episode in range(episodes):
            env.reset(seed=episode)
            for action in policy:
                t = time.perf_counter()
                result = env.step(action)
                latencies.append(time.perf_counter() - t)
                if result.terminated or result.truncated:
                    break
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, len(latencies)


class _Http:
    """A keep-alive HTTP/1.1 connection (the standard library's; httpx costs ~1 ms a call)."""

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.connection.request(
            "POST",
            self.prefix + path,
            body=json.dumps(body),
            headers={"content-type": "application/json"},
        )
        answer = self.connection.getresponse()
        data = json.loads(answer.read())
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}: {data}")
        return data


def http_throughput(url: str, env_id: str, policy, steps: int, client: str = "stdlib"):
    """Whole episodes over stateful HTTP with one keep-alive client."""
    import httpx

    episodes = max(1, steps // len(policy))
    latencies = []
    if client == "httpx":
        http_client = httpx.Client(base_url=f"{url}/envs/{env_id}")

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = http_client.post(path, json=body)
            answer.raise_for_status()
            return answer.json()
    else:
        post = _Http(f"{url}/envs/{env_id}").post
    session = post("/reset", {"seed": 0})["session_id"]  # warm-up
    started = time.perf_counter()
    for episode in range(episodes):
        post("/reset", {"seed": episode, "session_id": session})
        for action in policy:
            t = time.perf_counter()
            answer = post("/step", {"session_id": session, "action": action})
            latencies.append(time.perf_counter() - t)
            if answer["done"]:
                break
    elapsed = time.perf_counter() - started
    post("/close", {"session_id": session})
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, len(latencies)


def session_creation(url: str, env_id: str, count: int):
    """p50 ms of opening a session and playing its first reset.

    HTTP: POST /reset without a session id on a keep-alive connection (the
    server makes a session and an env and resets it). WebSocket: a new TCP
    connection, the WebSocket handshake and the first reset, with the
    stackgym blocking client.
    """
    from stackgym.client import connect

    http = _Http(f"{url}/envs/{env_id}")
    http_times = []
    for seed in range(count + 5):
        started = time.perf_counter()
        session = http.post("/reset", {"seed": seed})["session_id"]
        http_times.append(time.perf_counter() - started)
        http.post("/close", {"session_id": session})
    ws_times = []
    for seed in range(count + 5):
        started = time.perf_counter()
        env = connect(url, env_id)
        env.reset(seed=seed)
        ws_times.append(time.perf_counter() - started)
        env.close()
    # The first few include first-call costs (imports, caches): not a session's cost.
    return statistics.median(http_times[5:]) * 1000, statistics.median(ws_times[5:]) * 1000


def concurrent_sessions(url: str, env_id: str, policy, count: int):
    """Hold ``count`` WebSocket sessions open at once (the parent reads the server RSS)."""
    import uvloop

    from stackgym.client import aconnect

    async def run():
        envs = await asyncio.gather(*(aconnect(url, env_id) for _ in range(count)))
        errors = 0
        results = await asyncio.gather(
            *(env.reset(seed=i) for i, env in enumerate(envs)), return_exceptions=True
        )
        errors += sum(isinstance(r, Exception) for r in results)
        results = await asyncio.gather(
            *(env.step(policy[0]) for env in envs), return_exceptions=True
        )
        errors += sum(isinstance(r, Exception) for r in results)
        # Hold them open while the parent reads the server's memory.
        print(json.dumps({"open": count, "errors": errors}), flush=True)
        sys.stdin.readline()
        await asyncio.gather(*(env.close() for env in envs))

    uvloop.run(run())


def load_test(url: str, env_id: str, policy, clients: int, episodes: int):
    """``clients`` concurrent sessions x ``episodes`` each; rewards per (seed)."""
    import uvloop

    from stackgym.client import aconnect

    async def one(index: int):
        got: dict[int, list[float]] = {}
        errors = 0
        async with await aconnect(url, env_id) as env:
            for episode in range(episodes):
                seed = index * episodes + episode
                try:
                    await env.reset(seed=seed)
                    rewards = []
                    for action in policy:
                        result = await env.step(action)
                        rewards.append(result.reward)
                        if result.terminated or result.truncated:
                            break
                    got[seed] = rewards
                except Exception:
                    errors += 1
        return got, errors

    async def run():
        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(clients)), return_exceptions=True)
        return time.perf_counter() - started, results

    elapsed, results = uvloop.run(run())
    rewards: dict[int, list[float]] = {}
    errors = 0
    for result in results:
        if isinstance(result, Exception):
            errors += episodes
            continue
        rewards.update(result[0])
        errors += result[1]
    return elapsed, errors, rewards


def in_process_rewards(env_id: str, policy, seeds) -> dict[int, list[float]]:
    import stackgym

    env = stackgym.make(env_id)
    out = {}
    for seed in seeds:
        env.reset(seed=seed)
        rewards = []
        for action in policy:
            result = env.step(action)
            rewards.append(result.reward)
            if result.terminated or result.truncated:
                break
        out[seed] = rewards
    env.close()
    return out


# -- the driver --------------------------------------------------------------------------


def client_main(task: str, url: str, env_id: str, args: dict[str, Any]) -> None:
    """The client process: run one measurement, print its result as JSON."""
    _register_toy()
    policy = args.get("policy")
    if task == "ws":
        out = websocket_throughput(
            url, env_id, policy, args["clients"], args["steps"], args["client"]
        )
    elif task == "sync":
        out = stackgym_sync_throughput(url, env_id, policy, args["steps"])
    elif task == "http":
        out = http_throughput(url, env_id, policy, args["steps"], args["client"])
    elif task == "frames":
        out = frame_round_trip(url, env_id, policy[0], args["frames"])
    elif task == "session":
        out = session_creation(url, env_id, args["count"])
    elif task == "sessions":
        concurrent_sessions(url, env_id, policy, args["count"])
        return
    elif task == "load":
        elapsed, errors, rewards = load_test(url, env_id, policy, args["clients"], args["episodes"])
        out = [elapsed, errors, {str(k): v for k, v in rewards.items()}]
    else:
        raise SystemExit(f"unknown task {task}")
    print(json.dumps(out), flush=True)


def measure(task: str, url: str, env_id: str, **args: Any) -> Any:
    command = [*_pin(1), sys.executable, __file__, "--client", task, "--url", url, "--env", env_id]
    command += ["--args", json.dumps(args)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"client {task} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best(task: str, repeat: int, server: Server, env_id: str, **args: Any) -> str:
    """The best of ``repeat`` runs, and the server's CPU time per step in that run.

    CPU time per step does not depend on what else the machine runs, so it
    says what one core can serve when nothing else competes for it.
    """
    runs = []
    for _ in range(repeat):
        cpu = server.cpu_seconds()
        rate, p50, steps = measure(task, server.url, env_id, **args)
        runs.append((rate, p50, (server.cpu_seconds() - cpu) / steps))
    rate, p50, cpu_per_step = max(runs)
    return (
        f"{rate:,.0f} steps/s (step p50 {p50:.2f} ms; server CPU {cpu_per_step * 1e6:.0f} µs "
        f"a step = {1 / cpu_per_step:,.0f} steps/s per core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--env", default="lockbox", help="env id (default: the toy env)")
    parser.add_argument("--policy", help="JSON list of actions: inspect once, then submit")
    parser.add_argument("--long-policy", help="JSON list of 6 actions")
    parser.add_argument("--repeat", type=int, default=3, help="runs per throughput figure")
    parser.add_argument("--steps", type=int, default=6000, help="steps per throughput run")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-sessions", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve_main(options.env, options.serve, options.max_sessions)
        return
    if options.client:
        client_main(options.client, options.url, options.env, json.loads(options.args))
        return

    env_id = options.env
    _register_toy()
    short, long = POLICIES.get(env_id, (None, None))
    short = json.loads(options.policy) if options.policy else short
    long = json.loads(options.long_policy) if options.long_policy else long
    if short is None or long is None:
        raise SystemExit(f"no default policies for {env_id!r}: pass --policy and --long-policy")
    steps = 600 if options.quick else options.steps
    repeat = 1 if options.quick else options.repeat
    load_clients, load_episodes = (8, 20) if options.quick else (64, 200)

    print(
        f"env {env_id}; python {platform.python_version()}; {os.cpu_count()} cores; "
        f"load average at start {os.getloadavg()[0]:.2f}; "
        f"server pinned to core 0, clients to core 1: {bool(_pin(0))}; best of {repeat}"
    )
    rows: list[tuple[str, str, str, str]] = []
    server = Server(env_id)
    try:
        for name, policy in (("inspect+submit", short), ("6-step", long)):
            for clients in (1, 8):
                figure = best(
                    "ws",
                    repeat,
                    server,
                    env_id,
                    policy=policy,
                    clients=clients,
                    steps=steps,
                    client="openenv",
                )
                target = ">= 3,000" if clients == 1 else ">= 4,500"
                rows.append(
                    (
                        f"WebSocket, {clients} client(s), openenv-core client, {name}",
                        target,
                        figure,
                        ORIGINAL["ws1" if clients == 1 else "ws8"],
                    )
                )
                figure = best(
                    "ws",
                    repeat,
                    server,
                    env_id,
                    policy=policy,
                    clients=clients,
                    steps=steps,
                    client="stackgym",
                )
                rows.append(
                    (
                        f"WebSocket, {clients} client(s), stackgym async client, {name}",
                        target,
                        figure,
                        "",
                    )
                )
            figure = best("sync", repeat, server, env_id, policy=policy, steps=steps)
            rows.append(
                (
                    f"WebSocket, 1 client, stackgym blocking client, {name}",
                    ">= 3,000",
                    figure,
                    "",
                )
            )
            for client in ("stdlib", "httpx"):
                figure = best(
                    "http",
                    repeat,
                    server,
                    env_id,
                    policy=policy,
                    steps=steps // 2,
                    client=client,
                )
                label = "http.client" if client == "stdlib" else "httpx"
                rows.append(
                    (
                        f"stateful HTTP, 1 client ({label}), {name}",
                        ">= 1,000",
                        figure,
                        ORIGINAL["http"] if client == "stdlib" else "",
                    )
                )
        frames = 600 if options.quick else 5000
        figure = best("frames", repeat, server, env_id, policy=short, frames=frames)
        rows.append(
            (
                "WebSocket frame round trip, 1 blocking client, step frames only",
                "",
                figure.replace("steps/s", "frames/s"),
                "",
            )
        )
        http_p50, ws_p50 = min(
            (
                measure("session", server.url, env_id, count=100 if options.quick else 500)
                for _ in range(repeat)
            ),
            key=lambda r: r[0],
        )
        rows.append(
            (
                "session creation, HTTP POST /reset (new session + env + reset), p50",
                "<= 1 ms",
                f"{http_p50:.2f} ms",
                ORIGINAL["session"],
            )
        )
        rows.append(
            (
                "session creation, TCP + WebSocket handshake + first reset, p50",
                "<= 1 ms",
                f"{ws_p50:.2f} ms",
                ORIGINAL["session"],
            )
        )
    finally:
        server.stop()

    # The transport floor: the same uvicorn settings and client, no env, no stackgym.
    floor = Server("floor")
    try:
        figure = best("frames", repeat, floor, "floor", policy=short, frames=frames)
        rows.append(
            (
                "transport floor: uvicorn answering a fixed frame, same client",
                "",
                figure.replace("steps/s", "frames/s").replace("a step", "a frame"),
                "",
            )
        )
    finally:
        floor.stop()

    # 256 sessions at once: a fresh server, so its memory is not the throughput runs'.
    server = Server(env_id, max_sessions=256)
    try:
        idle_rss = server.rss_mb()
        command = [
            *_pin(1),
            sys.executable,
            __file__,
            "--client",
            "sessions",
            "--url",
            server.url,
            "--env",
            env_id,
            "--args",
            json.dumps({"policy": short, "count": 256}),
        ]
        holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        opened = json.loads(holder.stdout.readline())
        rss = server.rss_mb()
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=120)
        rows.append(
            (
                "256 concurrent WebSocket sessions, server RSS",
                "<= 150 MB",
                f"{rss:.0f} MB (idle {idle_rss:.0f} MB), {opened['errors']} errors",
                ORIGINAL["sessions256"],
            )
        )
    finally:
        server.stop()

    server = Server(env_id)
    try:
        elapsed, errors, rewards = measure(
            "load", server.url, env_id, policy=short, clients=load_clients, episodes=load_episodes
        )
    finally:
        server.stop()
    seeds = range(load_clients * load_episodes)
    expected = in_process_rewards(env_id, short, seeds)
    mismatched = sum(rewards.get(str(seed)) != expected[seed] for seed in seeds)
    rows.append(
        (
            f"load: {load_clients} clients x {load_episodes} episodes",
            "0 errors, rewards = in-process",
            f"{errors} errors, {mismatched} episodes differ, {elapsed:.1f} s",
            ORIGINAL["load"],
        )
    )

    width = max(len(r[0]) for r in rows)
    print(f"\n{'what':<{width}} | target | measured | original server")
    for what, target, measured, original in rows:
        print(f"{what:<{width}} | {target} | {measured} | {original}")


if __name__ == "__main__":
    main()
