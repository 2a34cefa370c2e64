"""No run lost silently: retries, the journal, the recorder's attachment, owner-only files.

Faults are made to happen, never mocked: a SQLite file locked by another
connection (``BEGIN EXCLUSIVE``) so that writes fail after the busy timeout,
a journal folder that cannot be created (its parent is a file), a flow
process killed with SIGKILL. The chaos suite (``tests/test_chaos.py``) adds
read-only, full and corrupt stores, PostgreSQL restarts and many writers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

from daskflow import flow, task
from daskflow.errors import StoreError
from daskflow.observers.events import StateChanged, TaskRunCreated, bus
from daskflow.observers.memory import MemoryObserver
from daskflow.states import State, StateType
from daskflow.store import StoreObserver, default_observer
from daskflow.store.journal import Journal, decode, encode
from daskflow.store.observer import open_in_background
from daskflow.store.sql import SQLStore
from tests.conftest import poll_for

S = StateType


@task
def double(x: int) -> int:
    return 2 * x


@flow(cluster="sync")
def doubles(n: int) -> int:
    return sum(double.map(range(n)).result())


@pytest.fixture
def store_path(tmp_path: Path) -> Iterator[Path]:
    """A store of the test's own, writes given up after 0.3 s, a journal folder of its own."""
    path = tmp_path / "runs.db"
    settings = {
        "daskflow.store": str(path),
        "daskflow.journal": str(tmp_path / "journal"),
        "daskflow.store-retry": "0.3s",
    }
    with dask.config.set(settings):
        yield path
        with dask.config.set({"daskflow.store": "none"}):
            default_observer()  # closes this test's store (and releases its journal)


class Lock:
    """Another connection holding the SQLite file's write lock (``BEGIN EXCLUSIVE``)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def take(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def recorded_runs(path: Path) -> dict[str, tuple[StateType, dict[str, dict[StateType, int]]]]:
    store = SQLStore(str(path))
    try:
        runs = store.list_flow_runs(limit=None)
        return {r.id: (r.state, store.count_task_runs(r.id)) for r in runs}
    finally:
        store.close()


def test_fifty_flows_from_fifty_threads_right_after_a_store_change_are_all_recorded(
    tmp_path: Path,
) -> None:
    for round_ in range(3):  # each round a new store: its recorder is made while flows start
        path = tmp_path / f"runs-{round_}.db"
        start = threading.Barrier(50)
        results: list[int] = []

        def one(start: threading.Barrier = start, results: list[int] = results) -> None:
            start.wait()
            results.append(doubles(3))

        with dask.config.set({"daskflow.store": str(path)}):
            threads = [threading.Thread(target=one) for _ in range(50)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            bus.flush()
        assert results == [6] * 50
        runs = recorded_runs(path)
        assert len(runs) == 50, f"round {round_}: {len(runs)} of 50 flow runs recorded"
        assert all(state is S.COMPLETED for state, _ in runs.values())
        assert all(tasks == {"double": {S.COMPLETED: 3}} for _, tasks in runs.values())


def test_a_refused_batch_is_journaled_once_told_and_replayed_when_the_store_is_back(
    store_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert doubles(2) == 2  # the store exists, with one run
    lock = Lock(store_path)
    lock.take()
    with caplog.at_level(logging.WARNING, logger="daskflow.store"):
        first = doubles(3, return_state=True)
        second = doubles(4, return_state=True)
    assert (first.result(), second.result()) == (6, 12)  # the flows never wait on the store
    observer = default_observer()
    assert observer is not None
    journal = observer.journal.path
    assert journal is not None
    told = [r.getMessage() for r in caplog.records if r.name == "daskflow.store"]
    assert len(told) == 1, told  # once, naming the journal
    assert journal in told[0]
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "journal").st_mode) == 0o700
    assert len(recorded_runs(store_path)) == 1  # (a reader is not blocked by the lock)
    lines = Path(journal).read_text().splitlines()[1:]
    ids = {json.loads(line)["events"][0]["flow_run_id"] for line in lines}
    assert all(observer.outcome(run_id) == "journaled" for run_id in ids)

    lock.release()
    time.sleep(0.6)  # past the replay backoff: the next batch replays the journal first
    assert doubles(5) == 20
    runs = recorded_runs(store_path)
    assert len(runs) == 4
    assert all(state is S.COMPLETED for state, _ in runs.values())
    assert sorted(sum(t["double"].values()) for _, t in runs.values()) == [2, 3, 4, 5]
    assert not os.path.exists(journal)
    assert all(observer.outcome(run_id) == "recorded" for run_id in ids)


def test_a_journal_replayed_twice_is_written_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    folder = str(tmp_path / "journal")
    now = time.time()
    flow_run = "f" * 32
    events = [
        *_created(flow_run, now),
        StateChanged(flow_run, None, State(S.COMPLETED, now + 2), 1),
    ]
    store = SQLStore(str(path), replay=False)
    journal = Journal(store.url, store.where, folder)
    kept = journal.append(events[:3])
    journal.append(events[3:])
    journal.close()  # as if its process ended with the store down
    copy = tmp_path / "copy.jsonl"
    shutil.copy(kept, copy)
    store.close()

    for _ in range(2):
        with dask.config.set({"daskflow.journal": folder}):
            reopened = SQLStore(str(path))  # opening replays what nobody holds
        assert not os.path.exists(kept)
        (row,) = reopened.list_flow_runs()
        assert (row.id, row.state) == (flow_run, S.COMPLETED)
        assert len(reopened.list_transitions(flow_run)) == 2  # RUNNING, COMPLETED
        assert [t.state for t in reopened.list_task_runs(flow_run)] == [S.COMPLETED]
        reopened.close()
        shutil.copy(copy, kept)  # the same file again: nothing more is written


def test_a_journal_a_live_process_holds_is_left_to_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLStore(str(path), replay=False)
    journal = Journal(store.url, store.where, str(tmp_path / "journal"))
    kept = journal.append(_created("e" * 32, time.time()))
    with dask.config.set({"daskflow.journal": str(tmp_path / "journal")}):
        other = SQLStore(str(path))
    assert os.path.exists(kept)  # its owner is alive: it replays it itself
    assert other.list_flow_runs() == []
    assert journal.replay_into(store) == 1
    assert [r.id for r in other.list_flow_runs()] == ["e" * 32]
    assert not os.path.exists(kept)
    other.close()
    store.close()


def test_events_survive_the_journal_s_format() -> None:
    now = time.time()
    failed = State(S.FAILED, now, "boom", "ValueError", "bad", "Traceback ...", data=ValueError())
    events = [
        *_created("a" * 32, now),
        StateChanged("a" * 32, "t" * 32, failed, 2, "tcp://w:1", {"n": 1, "x": object()}),
    ]
    back = [decode(json.loads(json.dumps(encode(e)))) for e in events]
    assert back[0] == events[0]
    assert back[1] == TaskRunCreated(
        "t" * 32, "a" * 32, "double", "double-0", 0, frozenset({"db"}), None, now
    )
    assert back[4].state == failed  # the exception object itself is no part of a record
    assert back[4].details["n"] == 1
    assert back[4].details["x"].startswith("<object object")


def test_a_run_neither_recorded_nor_journaled_is_reported_lost(
    store_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, observer: MemoryObserver
) -> None:
    (tmp_path / "a-file").write_text("")
    assert doubles(1) == 0
    lock = Lock(store_path)
    lock.take()
    try:
        with (
            dask.config.set({"daskflow.journal": str(tmp_path / "a-file" / "journal")}),
            caplog.at_level(logging.ERROR, logger="daskflow.store"),
        ):
            with dask.config.set({"daskflow.store": "none"}):
                default_observer()  # a new recorder, journaling under a file: impossible
            state = doubles(2, return_state=True)
            recorder = default_observer()
    finally:
        lock.release()
    assert state.is_completed()
    assert recorder is not None
    last = list(observer.flow_runs)[-1]
    assert recorder.outcome(last) == "lost"
    [error] = [r.getMessage() for r in caplog.records if r.name == "daskflow.store"]
    assert "LOST" in error
    assert str(tmp_path / "a-file" / "journal") in error


FLOWS = """
    import time
    from daskflow import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def doubles(n: int = 3) -> int:
        return sum(double.map(range(n)).result())

    @flow
    def sleeps(seconds: float = 60) -> None:
        time.sleep(seconds)
"""


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daskflow.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=120,
    )


def test_daskflow_run_exits_1_for_a_run_neither_recorded_nor_journaled(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    (tmp_path / "a-file").write_text("")
    store = tmp_path / "runs.db"
    env = {"DASKFLOW_STORE": str(store), "DASKFLOW__STORE_RETRY": "0.3s"}
    assert (
        _cli("run", "flows.py:doubles", "--cluster", "sync", env=env, cwd=tmp_path).returncode == 0
    )
    lock = Lock(store)
    lock.take()
    try:
        journaled = _cli(
            "run", "flows.py:doubles", "--cluster", "sync",
            env={**env, "DASKFLOW_JOURNAL": str(tmp_path / "journal")}, cwd=tmp_path,
        )  # fmt: skip
        lost = _cli(
            "run", "flows.py:doubles", "--cluster", "sync",
            env={**env, "DASKFLOW_JOURNAL": str(tmp_path / "a-file" / "j")}, cwd=tmp_path,
        )  # fmt: skip
    finally:
        lock.release()
    assert journaled.returncode == 0, journaled.stderr
    assert "Result: 6" in journaled.stdout
    assert f"kept in the journal {tmp_path / 'journal'}" in journaled.stderr
    assert lost.returncode == 1, lost.stderr
    assert "This run could not be recorded" in lost.stderr
    assert "Traceback" not in lost.stderr
    # the journaled run is in the store once a daskflow process opened it again
    with dask.config.set({"daskflow.journal": str(tmp_path / "journal")}):
        runs = recorded_runs(store)
    assert len(runs) == 2
    assert all(state is S.COMPLETED for state, _ in runs.values())
    assert os.listdir(tmp_path / "journal") == []


def test_the_configured_heartbeat_timeout_marks_a_killed_flow_s_run_crashed(
    tmp_path: Path,
) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    store = tmp_path / "runs.db"
    env = {"DASKFLOW_STORE": str(store), "DASKFLOW__HEARTBEAT_TIMEOUT": "2s"}
    process = subprocess.Popen(
        [sys.executable, "-m", "daskflow.cli", "run", "flows.py:sleeps", "--cluster", "sync"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "started" in process.stdout.readline()  # the run is recorded RUNNING
        with dask.config.set({"daskflow.heartbeat-timeout": "2s"}):
            poll_for(lambda: _states(store) == [S.RUNNING], timeout=30)
            time.sleep(3)  # heartbeats every 2/3 s keep it alive
            assert _states(store) == [S.RUNNING]
            process.send_signal(signal.SIGKILL)
            process.wait()
            poll_for(lambda: _states(store) == [S.CRASHED], timeout=30, interval=0.5)
    finally:
        process.kill()
        process.wait()


def _states(path: Path) -> list[StateType]:
    store = SQLStore(str(path))
    try:
        return [r.state for r in store.list_flow_runs()]
    finally:
        store.close()


def test_the_store_and_its_folders_are_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "runs.db"
    with dask.config.set({"daskflow.store": str(path)}):
        assert doubles(2) == 2
        bus.flush()
        with dask.config.set({"daskflow.store": "none"}):
            default_observer()
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in [tmp_path / "new", tmp_path / "new" / "folder", *path.parent.iterdir()]
    }
    assert modes.pop("new") == 0o700
    assert modes.pop("folder") == 0o700
    assert modes.pop("runs.db") == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes  # -wal, -shm if still there


def test_configuration_precedence_is_dask_s(tmp_path: Path) -> None:
    yaml_folder = tmp_path / "dask-config"
    yaml_folder.mkdir()
    (yaml_folder / "daskflow.yaml").write_text(
        "daskflow:\n  store: from-yaml.db\n  heartbeat-timeout: 7s\n"
    )
    code = textwrap.dedent(
        """
        import dask, daskflow
        from daskflow.store.observer import configured_url
        from daskflow import config
        print(configured_url(), config.get_seconds("heartbeat-timeout"))
        with dask.config.set({"daskflow.store": "from-set.db"}):
            print(configured_url())
        """
    )

    def run(**env: str) -> list[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DASKFLOW")}
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**base, "DASK_CONFIG": str(yaml_folder), **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split("\n")[:2]

    assert run() == ["from-yaml.db 7.0", "from-set.db"]
    assert run(DASKFLOW_STORE="from-env.db") == ["from-env.db 7.0", "from-set.db"]
    assert run(DASKFLOW__HEARTBEAT_TIMEOUT="3s") == ["from-yaml.db 3.0", "from-set.db"]
    (yaml_folder / "daskflow.yaml").unlink()
    assert run() == [f"{Path('~/.daskflow/daskflow.db')} 60.0", "from-set.db"]


def _created(flow_run: str, now: float) -> list[object]:
    from daskflow.observers.events import FlowRunCreated

    return [
        FlowRunCreated(flow_run, "doubles", "doubles-1", {"n": 1}, None, now),
        TaskRunCreated("t" * 32, flow_run, "double", "double-0", 0, frozenset({"db"}), None, now),
        StateChanged(flow_run, None, State(S.RUNNING, now + 1), 1),
        StateChanged(flow_run, "t" * 32, State(S.COMPLETED, now + 1.5), 1),
    ]


@task
def says(text: str) -> None:
    from daskflow import get_run_logger

    get_run_logger().info("said %s", text)
    raise ValueError(text)


@flow(cluster="sync")
def speaks(text: str) -> None:
    says(text)


@pytest.mark.parametrize("text", ["\ud800 lone surrogate", "NUL \x00 inside"])
def test_text_no_database_holds_is_recorded_escaped(store_path: Path, text: str) -> None:
    state = speaks(text, return_state=True)
    assert state.is_failed()
    observer = default_observer()
    assert observer is not None
    bus.flush()
    assert observer.journal.empty  # the store took every batch
    [(run_id, (run_state, tasks))] = recorded_runs(store_path).items()
    assert (run_state, tasks) == (S.FAILED, {"says": {S.FAILED: 1}})
    store = SQLStore(str(store_path))
    [task_run] = store.list_task_runs(run_id)
    escaped = text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
    assert task_run.error_message == escaped
    assert any(log.message == f"said {escaped}" for log in store.list_logs(run_id))
    store.close()


def test_a_store_opened_in_the_background_records_the_first_run(store_path: Path) -> None:
    open_in_background()  # what a top-level flow call does before starting its cluster
    assert doubles(3) == 6  # the run waits for the helper where it needs the store
    observer = default_observer()
    assert observer is not None
    assert [o for o in bus._observers if isinstance(o, StoreObserver)] == [observer]
    [(run_state, tasks)] = recorded_runs(store_path).values()
    assert (run_state, tasks) == (S.COMPLETED, {"double": {S.COMPLETED: 3}})


def test_a_store_that_fails_to_open_in_the_background_fails_the_flow_call(
    store_path: Path,
) -> None:
    store_path.write_bytes(b"not a database at all, " * 100)
    open_in_background()
    with pytest.raises(StoreError, match="not a daskflow database"):
        doubles(1)
    assert store_path.read_bytes() == b"not a database at all, " * 100  # left untouched
