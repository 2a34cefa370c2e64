"""Flows that break their own run store, for the chaos suite (tests/chaos_store.py).

``faulted`` runs ``n`` steps, then one ``fault`` task that damages the run store
in the way its ``kind`` says, then ``n`` more steps: the fault happens at a
known point of the run, and the batches after it meet it. Every task appends
a line to ``marks`` when it starts (``s NAME``) and when it ends (``e NAME``),
so a scenario can count what ran, apart from what the store recorded.

Run as a script, the file is a writer or a reader of one store at once:

    python chaos_flows.py write STORE_URL FLOWS TASKS   # FLOWS flows mapping TASKS tasks
    python chaos_flows.py read STORE_URL STOP_FILE      # read until STOP_FILE exists
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daskflow import flow, task

#: Holds ``BEGIN EXCLUSIVE`` on a SQLite file for a while, in a process of its own.
HOLD_LOCK = """
import pathlib, sqlite3, sys, time
path, seconds, released = sys.argv[1], float(sys.argv[2]), sys.argv[3]
conn = sqlite3.connect(path, isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(seconds)
conn.execute("ROLLBACK")
conn.close()
pathlib.Path(released).write_text("released")
"""


def _mark(marks: str, text: str) -> None:
    if marks:
        with open(marks, "a") as file:
            file.write(text + "\n")


@task
def step(i: int, marks: str = "", seconds: float = 0.0) -> int:
    """Sleep ``seconds`` and return ``i``, marking the start and the end."""
    _mark(marks, f"s step-{i}")
    time.sleep(seconds)
    _mark(marks, f"e step-{i}")
    return i


def _garbage(path: str, offset: int) -> None:
    """Random bytes over ``path`` from ``offset`` to its end (4 KiB at least)."""
    with open(path, "r+b") as file:
        size = os.path.getsize(path)
        file.seek(offset)
        file.write(os.urandom(max(size - offset, 4096)))
        file.flush()
        os.fsync(file.fileno())


@task
def fault(kind: str, target: str, seconds: float = 4.0, marks: str = "") -> str:
    """Damage the run store at ``target`` (a SQLite file, or a folder) now.

    ``lock``: a process of its own holds ``BEGIN EXCLUSIVE`` on the file for
    ``seconds`` (it writes ``target + ".released"`` when it lets go);
    ``readonly``: the file's folder is bind-mounted read-only on itself;
    ``full``: a file fills the file system of the store's folder;
    ``corrupt``: once the run's first batch is in the file, the WAL
    checkpointed into it, then garbage over its pages from the second on;
    ``corrupt-wal``: garbage over the frames of the WAL file (SQLite cannot
    tell until the file is next opened);
    ``pg-restart``: ``target`` is a PostgreSQL data folder, stopped now and
    started again ``seconds`` later by a process of its own (which writes
    ``target + ".restarted"``); ``none``: nothing.
    """
    _mark(marks, "s fault")
    folder = os.path.dirname(target)
    if kind == "lock":
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, target, str(seconds), target + ".released"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "locked":
            raise RuntimeError("the lock holder did not take the lock")
    elif kind == "readonly":
        subprocess.run(["mount", "--bind", folder, folder], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", folder], check=True)
    elif kind == "full":
        with open(os.path.join(folder, "filler"), "wb") as file:
            try:
                while True:
                    file.write(b"\0" * 65536)
                    file.flush()
                    os.fsync(file.fileno())
            except OSError:
                pass
    elif kind == "corrupt":  # what the WAL held is in the file first, then garbage
        with sqlite3.connect(target) as conn:
            deadline = time.monotonic() + 10  # the run's first batch is in the file
            while not conn.execute("SELECT count(*) FROM flow_runs").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError("the run's first batch never reached the store")
                time.sleep(0.02)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _garbage(target, 4096)
    elif kind == "corrupt-wal":  # garbage over the frames that committed transactions wrote
        _garbage(target + "-wal", 32)
    elif kind == "pg-restart":
        pg_ctl = os.environ.get("CHAOS_PG_CTL", "/usr/lib/postgresql/15/bin/pg_ctl")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", pg_ctl, "-D", target, "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
        )
        restart = (
            f"sleep {seconds}; runuser -u postgres -- {pg_ctl} -D {target} -w -l "
            f"{target}/log start >/dev/null 2>&1; touch {target}.restarted"
        )
        subprocess.Popen(["sh", "-c", restart], start_new_session=True)
    elif kind != "none":
        raise ValueError(f"no fault kind {kind!r}")
    _mark(marks, "e fault")
    return kind


@flow(name="chaos-faulted")
def faulted(kind: str, target: str, n: int = 2, seconds: float = 4.0, marks: str = "") -> int:
    """``n`` steps, the fault, ``n`` more steps (``seconds`` each when kind is pg-restart)."""
    nap = 0.5 if kind == "pg-restart" else 0.0
    total = sum(step(i, marks) for i in range(n))
    fault(kind, target, seconds, marks)
    return total + sum(step(i, marks, nap) for i in range(n, 2 * n))


@flow(name="chaos-slow", persist_result=True)
def slow(n: int = 4, seconds: float = 1.0, marks: str = "") -> int:
    """``n`` steps of ``seconds`` each, one after another, every result stored."""
    return sum(step(i, marks, seconds) for i in range(n))


@flow(name="chaos-mapped")
def mapped(tasks: int = 10) -> int:
    """``tasks`` steps at once."""
    return sum(step.map(range(tasks)).result())


def _write(url: str, flows: int, tasks: int) -> None:
    import dask

    with dask.config.set({"daskflow.store": url, "daskflow.progress": False}):
        ids = []
        for _ in range(flows):
            state = mapped.with_options(cluster="sync")(tasks, return_state=True)
            ids.append(state.is_completed())
    print(json.dumps({"completed": sum(ids)}), flush=True)


def _read(url: str, stop: str) -> None:
    from daskflow.store import open_store

    reads = errors = 0
    first_error = ""
    store = open_store(url)
    try:
        while not Path(stop).exists():
            try:
                found = store.list_flow_runs(limit=None)
                for run in found[:3]:
                    store.list_task_runs(run.id)
                    store.list_transitions(run.id)
                reads += 1
            except (sqlite3.Error, Exception) as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
            time.sleep(0.02)
    finally:
        store.close()
    print(json.dumps({"reads": reads, "errors": errors, "first_error": first_error}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        _write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "read":
        _read(sys.argv[2], sys.argv[3])
