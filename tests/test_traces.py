"""The trace and results stores: one class writes and reads; torn and foreign lines are handled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stackgym.core import EpisodeRecord, ResultStore, RunRecord, TraceSchemaError, TraceStore
from stackgym.core.traces import TRACE_FILE, AgentInfo, StepRecord, Usage


def episode(i: int, steps: int = 3) -> EpisodeRecord:
    return EpisodeRecord(
        episode_id=f"ep{i}",
        env_id="lockbox",
        seed=i,
        agent=AgentInfo(name="scripted"),
        reset_observation={"text": "start"},
        steps=[
            StepRecord(
                index=k,
                action={"type": "reveal", "position": k % 3},
                observation={"text": f"step {k}"},
                reward=-0.1,
                usage=Usage(prompt_tokens=10, completion_tokens=2, calls=1),
            )
            for k in range(steps)
        ],
        total_reward=-0.1 * steps,
        outcome={"passed": i % 2 == 0},
    )


def test_written_episodes_read_back_equal(tmp_path):
    store = TraceStore(tmp_path)
    written = [episode(i) for i in range(5)]
    for record in written:
        store.write(record)
    store.close()
    assert list(TraceStore(tmp_path).episodes()) == written
    assert (tmp_path / TRACE_FILE).is_file()


def test_store_accepts_the_folder_or_the_file_path(tmp_path):
    TraceStore(tmp_path).write(episode(1))
    assert [e.episode_id for e in TraceStore(tmp_path / TRACE_FILE).episodes()] == ["ep1"]


def test_torn_final_line_is_reported_with_file_and_line_and_skipped(tmp_path):
    store = TraceStore(tmp_path)
    store.write_many([episode(0), episode(1)])
    with open(store.path, "ab") as handle:
        handle.write(episode(2).model_dump_json().encode()[:57])
    reader = TraceStore(tmp_path)
    assert [e.episode_id for e in reader.episodes()] == ["ep0", "ep1"]
    [problem] = reader.problems
    assert problem.line == 3 and problem.path == store.path
    assert "torn" in problem.reason


def test_appending_after_a_torn_line_keeps_new_episodes_readable(tmp_path):
    TraceStore(tmp_path).write(episode(0))
    path = tmp_path / TRACE_FILE
    with open(path, "ab") as handle:
        handle.write(b'{"schema_version": 1, "episode_id": "half')
    TraceStore(tmp_path).write(episode(1))
    reader = TraceStore(tmp_path)
    assert [e.episode_id for e in reader.episodes()] == ["ep0", "ep1"]
    assert [p.line for p in reader.problems] == [2]


def test_corrupt_middle_line_is_skipped_and_the_rest_still_read(tmp_path):
    path = tmp_path / TRACE_FILE
    lines = [episode(0).model_dump_json(), "{not json", episode(1).model_dump_json()]
    path.write_text("\n".join(lines) + "\n")
    reader = TraceStore(tmp_path)
    assert [e.episode_id for e in reader.episodes()] == ["ep0", "ep1"]
    assert [(p.line, "not a valid trace record" in p.reason) for p in reader.problems] == [
        (2, True)
    ]


def test_reading_another_schema_version_names_the_file_line_and_version(tmp_path):
    path = tmp_path / TRACE_FILE
    data = json.loads(episode(0).model_dump_json())
    data["schema_version"] = 2
    path.write_text(json.dumps(data) + "\n")
    with pytest.raises(TraceSchemaError) as info:
        list(TraceStore(tmp_path).episodes())
    message = str(info.value)
    assert str(path) in message and ":1:" in message and "version 2" in message


def test_discover_finds_every_trace_file_below_a_folder(tmp_path):
    TraceStore(tmp_path / "a").write(episode(0))
    TraceStore(tmp_path / "b" / "c").write(episode(1))
    (tmp_path / "notes.json").write_text("{}")
    stores = TraceStore.discover(tmp_path)
    assert sorted(s.root.relative_to(tmp_path).as_posix() for s in stores) == ["a", "b/c"]
    assert TraceStore.discover(tmp_path / "missing") == []


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_traces import episode
    from stackgym.core import TraceStore
    store = TraceStore({root!r})
    i = 0
    while True:
        store.write(episode(i, steps=200))
        i += 1
    """
)


def test_kill_9_mid_write_leaves_complete_episodes_and_at_most_one_torn_line(tmp_path):
    script = WRITER.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", script])
    path = tmp_path / TRACE_FILE
    deadline = time.monotonic() + 60
    while (not path.exists() or path.stat().st_size < 2_000_000) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    reader = TraceStore(tmp_path)
    episodes = list(reader.episodes())
    assert len(episodes) >= 5
    assert [e.episode_id for e in episodes] == [f"ep{i}" for i in range(len(episodes))]
    assert len(reader.problems) <= 1
    assert all(p.line == len(episodes) + 1 for p in reader.problems)


def test_results_store_round_trip_and_completed_ids(tmp_path):
    store = ResultStore(tmp_path)
    records = [
        RunRecord(run_id=f"r{i}", experiment="e", env_id="lockbox", model="oracle", seed=i)
        for i in range(3)
    ]
    store.write_many(records)
    assert list(ResultStore(tmp_path).records()) == records
    assert ResultStore(tmp_path).completed_ids() == {"r0", "r1", "r2"}
