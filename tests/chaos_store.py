"""Store and process faults for the chaos suite: real processes, real faults.

Shared by the fast tests (tests/test_chaos.py) and ``benchmarks/chaos.py``.
Each scenario is a plain function that takes a scratch folder (and a store
URL where it matters) and a size, runs ``daskflow`` as subprocesses against
a store it breaks, repairs the fault the way a user would, then reads the
store back and returns a dict of counts:

``started``
    flow runs that announced their id;
``recorded``
    of those, runs the store holds in a final state;
``lost``
    runs the store does not hold at all (or holds unfinished with no way to
    end them: see ``non_final``);
``non_final``
    runs the store holds in a state that is not final;
``transitions_lost``
    state changes a run should have recorded and did not: a flow run goes
    PENDING, RUNNING, then its final state, and so does each task run it
    should have (a task run reused from a stored result goes PENDING,
    CACHED); a missing task run loses all of its own;
``duplicates``
    state changes recorded more than once (a journal replayed twice);
``silent``
    runs neither recorded nor journaled whose ``daskflow run`` exited 0;
``exit_codes``
    the exit codes of the ``daskflow run`` commands, in order.

Targets: ``lost``, ``transitions_lost``, ``duplicates`` and ``silent`` are 0,
and the exit codes are those the scenario documents. The flows live in
``tests/resources/chaos_flows.py``; a fault comes from the flow's own
``fault`` task, so it strikes at a known point of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask

__all__ = [
    "PG_BIN",
    "Unavailable",
    "driver_kill",
    "mount_available",
    "pg_restart",
    "postgres",
    "store_fault",
    "writers",
]

FLOWS = Path(__file__).parent / "resources" / "chaos_flows.py"
RUN_ID = re.compile(r"started: id ([0-9a-f]{32})")
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "TIMED_OUT", "CACHED")


def mount_available(folder: str | os.PathLike[str]) -> str | None:
    """None when this process may mount a tmpfs and a read-only bind; else why not."""
    probe = Path(folder) / "mount-probe"
    probe.mkdir(parents=True, exist_ok=True)
    for command in (
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
        ["mount", "--bind", str(probe), str(probe)],
        ["mount", "-o", "remount,bind,ro", str(probe)],
    ):
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            _unmount(probe)
            return f"mount cannot run: {exc}"
        if done.returncode != 0:
            _unmount(probe)
            return f"{' '.join(command[:3])} is not permitted: {done.stderr.strip()}"
    _unmount(probe)
    return None


def _unmount(path: Path) -> None:
    while subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode == 0:
        pass


def _counts() -> dict[str, Any]:
    return {
        "started": 0,
        "recorded": 0,
        "lost": 0,
        "non_final": 0,
        "transitions_lost": 0,
        "duplicates": 0,
        "silent": 0,
        "journaled": 0,
        "exit_codes": [],
    }


def _env(folder: Path, store: str, **extra: str) -> dict[str, str]:
    """The environment of a ``daskflow`` subprocess: its own store, journal and results."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASKFLOW")}
    env.update(
        DASKFLOW_STORE=store,
        DASKFLOW_JOURNAL=str(folder / "journal"),
        DASKFLOW_RESULTS=str(folder / "results"),
        DASKFLOW__PROGRESS="false",
        DASKFLOW__STORE_RETRY="1s",
    )
    env.update(extra)
    return env


def _daskflow(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daskflow.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )


def _flow_file(folder: Path) -> Path:
    """The chaos flows, copied into ``folder`` (where ``daskflow runs retry`` finds them)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(FLOWS, folder / "chaos_flows.py"))


def _run_id(output: str) -> str | None:
    found = RUN_ID.search(output)
    return found.group(1) if found else None


def _opened(url: str, journal: Path) -> Any:
    """The store at ``url``, opened here: the journals in ``journal`` are replayed into it."""
    from daskflow.store import open_store

    with dask.config.set({"daskflow.journal": str(journal)}):
        return open_store(url)


def _transitions(store: Any, run_id: str) -> list[tuple[str | None, str]]:
    rows = list(store.list_transitions(run_id))
    for task_run in store.list_task_runs(run_id):
        rows += store.list_transitions(run_id, task_run.id)
    return [(row.task_run_id, row.state.value) for row in rows]


def audit(store: Any, run_id: str | None, tasks: int, counts: dict[str, Any]) -> None:
    """Add what the store holds of flow run ``run_id`` (of ``tasks`` task runs) to ``counts``."""
    run = store.get_flow_run(run_id) if run_id else None
    if run is None:
        counts["lost"] += 1
        counts["transitions_lost"] += 3 * (tasks + 1)
        return
    final = run.state.value in FINAL
    counts["recorded"] += final
    counts["non_final"] += not final
    seen = Counter(_transitions(store, run_id))  # type: ignore[arg-type]
    expected: Counter[tuple[str | None, str]] = Counter()
    expected.update((None, s) for s in dict.fromkeys(("PENDING", "RUNNING", run.state.value)))
    task_runs = store.list_task_runs(run_id)
    for task_run in task_runs:
        state = task_run.state.value
        ran = ("RUNNING",) if state not in ("CACHED", "CRASHED", "PENDING") else ()
        expected.update((task_run.id, s) for s in dict.fromkeys(("PENDING", *ran, state)))
    counts["transitions_lost"] += sum((expected - seen).values())
    counts["transitions_lost"] += 3 * max(0, tasks - len(task_runs))
    counts["duplicates"] += sum(n - 1 for n in seen.values() if n > 1)


def _journals(folder: Path) -> list[Path]:
    return sorted((folder / "journal").glob("*.jsonl"))


def store_fault(
    folder: str | os.PathLike[str],
    kind: str,
    *,
    runs: int = 1,
    cluster: str | None = "sync",
    journal_apart: bool = True,
    steps: int = 2,
    hold: float = 4.0,
) -> dict[str, Any]:
    """``daskflow run`` of a flow whose own task breaks its SQLite store, ``runs`` times.

    ``kind`` is a fault of ``chaos_flows.fault``: ``lock`` (another process
    holds ``BEGIN EXCLUSIVE`` for ``hold`` seconds), ``readonly`` (the store's folder
    bind-mounted read-only mid-run), ``readonly-start`` (read-only before the
    run starts), ``full`` (the store on a 2 MiB tmpfs that the task fills;
    with ``journal_apart=False`` the journal is on it too), ``corrupt`` or
    ``corrupt-wal``. Each run has its own store and journal; ``cluster``
    None is the default embedded cluster. After the run, the fault is
    repaired (the lock let go, the folder unmounted, the filler removed) and
    the store opened here, which replays the journal; for ``lock`` the kept
    copy of the journal is replayed once more (``duplicates`` must stay 0).

    Besides the counts of the module, ``journal_named`` (runs whose stderr
    named their journal file), ``store_errors`` (opening the store after the
    fault raised ``StoreError``: expected for ``corrupt``; then
    ``restored_visible`` counts the runs seen after restoring the store's
    backup from before the run, which replays the journal), ``journal_kept``
    (journal files left for the user to replay), ``warnings`` (daskflow's
    warnings on stderr: the user is told once) and ``lines`` (the last
    stderr line of each run, for the table's notes).
    """
    counts = _counts() | {"journal_named": 0, "store_errors": 0, "journal_kept": 0, "lines": []}
    for number in range(runs):
        root = Path(folder) / f"{kind}-{number}"
        _flow_file(root)
        store_dir = root / "store"
        store_dir.mkdir()
        store = store_dir / "daskflow.db"
        journal = root / "journal" if journal_apart else store_dir / "journal"
        if kind == "full":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(store_dir)])
        try:
            _faulted_run(root, kind, store, journal, (steps, hold), cluster, counts)
        finally:
            _unmount(store_dir)
    return counts


def _faulted_run(
    root: Path,
    kind: str,
    store: Path,
    journal: Path,
    size: tuple[int, float],
    cluster: str | None,
    counts: dict[str, Any],
) -> None:
    """One run of :func:`store_fault`: run, repair, open (replaying), audit."""
    from daskflow.errors import StoreError

    if kind in ("readonly-start", "corrupt"):  # a store made before the run, and its backup
        _opened(str(store), journal).close()
        shutil.copy(store, root / "backup.db")
    if kind == "readonly-start":
        subprocess.run(["mount", "--bind", str(store.parent), str(store.parent)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store.parent)], check=True)
    env = _env(root, str(store), DASKFLOW_JOURNAL=str(journal))
    fault = "none" if kind == "readonly-start" else kind
    args = ["run", f"{root / 'chaos_flows.py'}:faulted", "-p", f"kind={fault}"]
    steps, hold = size
    args += ["-p", f"target={store}", "-p", f"marks={root / 'marks'}", "-p", f"n={steps}"]
    args += ["-p", f"seconds={hold}"]
    try:
        done = _daskflow(*args, *(["--cluster", cluster] if cluster else []), cwd=root, env=env)
    finally:  # the repair
        if kind == "lock":
            _wait_for(Path(f"{store}.released"), 30)
        elif kind.startswith("readonly"):
            _unmount(store.parent)
        elif kind == "full":
            (store.parent / "filler").unlink(missing_ok=True)
    counts["exit_codes"].append(done.returncode)
    counts["lines"].append((done.stderr.strip().splitlines() or [""])[-1])
    run_id = _run_id(done.stdout + done.stderr)
    if run_id is None:  # refused before it began: nothing to record
        counts["refused"] = counts.get("refused", 0) + 1
        counts["silent"] += done.returncode == 0
        return
    counts["started"] += 1
    named = [p for p in _journals(journal.parent) if str(p) in done.stderr]
    counts["journal_named"] += bool(named)
    counts["warnings"] = counts.get("warnings", 0) + done.stderr.count("daskflow: ")
    counts["journaled"] += bool(named)
    kept = [(p, p.read_bytes()) for p in _journals(journal.parent)]
    try:
        opened = _opened(str(store), journal)
    except StoreError as exc:
        counts["store_errors"] += 1
        counts["store_error"] = str(exc)
        counts["journal_kept"] += len(_journals(journal.parent))
        listed = _daskflow("runs", "list", cwd=root, env=env)
        counts["list_exit"] = listed.returncode
        counts["list_lines"] = listed.stderr.strip().splitlines()
        # the user restores the backup: what the journal brings back into it
        for path in store.parent.glob(store.name + "*"):
            path.unlink()
        shutil.copy(root / "backup.db", store)
        opened = _opened(str(store), journal)
        visible = run_id is not None and opened.get_flow_run(run_id) is not None
        counts["restored_visible"] = counts.get("restored_visible", 0) + visible
        opened.close()
        return
    try:
        before = dict(counts)
        audit(opened, run_id, 2 * steps + 1, counts)
        lost = counts["lost"] > before["lost"] or counts["non_final"] > before["non_final"]
        counts["silent"] += lost and done.returncode == 0
        for path, data in kept:  # the same journal again: nothing new
            path.with_name(path.name.replace(".jsonl", "-again.jsonl")).write_bytes(data)
    finally:
        opened.close()
    if kept and run_id:
        again = _opened(str(store), journal)
        try:
            seen = Counter(_transitions(again, run_id))
            counts["duplicates"] += sum(n - 1 for n in seen.values() if n > 1)
        finally:
            again.close()
    counts["journal_kept"] += len(_journals(journal.parent))


def _wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _marks(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def driver_kill(
    folder: str | os.PathLike[str],
    *,
    runs: int = 1,
    tasks: int = 4,
    seconds: float = 1.0,
    cluster: str | None = "sync",
) -> dict[str, Any]:
    """SIGKILL ``daskflow run``'s process group mid-run, then ``daskflow runs retry`` it.

    The flow (``persist_result=True``) runs ``tasks`` steps of ``seconds``
    one after another; the group is killed while step ``tasks // 2`` runs.
    With a heartbeat timeout of 3 s, ``daskflow runs list`` 3.5 s later must
    show the run CRASHED, and ``daskflow runs retry`` must complete it
    without running again a step that completed before the kill.

    Besides the counts of the module (of the killed runs, then of the
    retries): ``crashed`` (killed runs listed CRASHED), ``retried`` (retries
    that completed), ``reran`` (steps that had completed before the kill
    and ran again), ``cached`` (task runs the retries reused), ``executed``
    (steps that ran, over all runs: each started step once, plus the killed
    one again).
    """
    counts = _counts() | {"crashed": 0, "retried": 0, "reran": 0, "cached": 0, "executed": 0}
    for number in range(runs):
        root = Path(folder) / f"kill-{number}"
        flows = _flow_file(root)
        marks = root / "marks"
        env = _env(root, str(root / "daskflow.db"), DASKFLOW__HEARTBEAT_TIMEOUT="3s")
        args = ["-m", "daskflow.cli", "run", f"{flows}:slow", "-p", f"n={tasks}"]
        args += ["-p", f"seconds={seconds}", "-p", f"marks={marks}"]
        driver = subprocess.Popen(
            [sys.executable, *args, *(["--cluster", cluster] if cluster else [])],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        middle = f"s step-{tasks // 2}"
        deadline = time.monotonic() + 120
        while middle not in _marks(marks) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(seconds / 2)
        with contextlib.suppress(ProcessLookupError):  # it ended first: the counts tell
            os.killpg(driver.pid, signal.SIGKILL)
        output, _ = driver.communicate()
        counts["exit_codes"].append(driver.returncode)
        done_before = {line[2:] for line in _marks(marks) if line.startswith("e ")}
        killed_marks = len(_marks(marks))
        run_id = _run_id(output)
        counts["started"] += run_id is not None
        time.sleep(3.5)
        listed = _daskflow("runs", "list", "--json", cwd=root, env=env)
        states = {r["id"]: r["state"] for r in json.loads(listed.stdout or "[]")}
        counts["crashed"] += states.get(run_id) == "CRASHED"
        retry = _daskflow("runs", "retry", str(run_id), "--json", cwd=root, env=env)
        counts["exit_codes"].append(retry.returncode)
        new_id = json.loads(retry.stdout or "{}").get("id") if retry.returncode == 0 else None
        counts["retried"] += new_id is not None
        after = _marks(marks)[killed_marks:]
        counts["reran"] += len({line[2:] for line in after if line.startswith("s ")} & done_before)
        counts["executed"] += sum(line.startswith("s ") for line in _marks(marks))
        store = _opened(str(root / "daskflow.db"), root / "journal")
        try:
            killed = store.get_flow_run(run_id) if run_id else None
            counts["lost"] += killed is None
            counts["non_final"] += killed is not None and killed.state.value not in FINAL
            if new_id is not None:
                audit(store, new_id, tasks, counts)
                cached = store.list_task_runs(new_id, states=["CACHED"])
                counts["cached"] += len(cached)
            else:
                counts["lost"] += 1
        finally:
            store.close()
    return counts


def writers(
    folder: str | os.PathLike[str],
    store_url: str | None = None,
    *,
    processes: int = 4,
    flows: int = 5,
    tasks: int = 10,
) -> dict[str, Any]:
    """``processes`` processes each record ``flows`` flows of ``tasks`` mapped steps
    into one store at once, while a reader process lists runs in a loop.

    ``store_url`` None: a SQLite file in ``folder``. Besides the counts of
    the module: ``reads`` and ``read_errors`` of the reader (target 0, and
    ``first_read_error``), ``journaled`` (journal files the writers left).
    """
    root = Path(folder)
    _flow_file(root)
    url = store_url or str(root / "daskflow.db")
    env = _env(root, url)
    stop = root / "stop"
    script = str(root / "chaos_flows.py")

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, script, *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )

    _opened(url, root / "journal").close()  # the reader opens an existing store
    reader = start("read", url, str(stop))
    writing = [start("write", url, str(flows), str(tasks)) for _ in range(processes)]
    counts = _counts()
    for process in writing:
        process.communicate(timeout=600)
        counts["exit_codes"].append(process.returncode)
    stop.touch()
    read = json.loads(reader.communicate(timeout=60)[0] or "{}")
    counts["journaled"] = len(_journals(root))
    counts["started"] = processes * flows
    store = _opened(url, root / "journal")
    try:
        found = store.list_flow_runs(flow="chaos-mapped", limit=None)
        for run in found:
            audit(store, run.id, tasks, counts)
    finally:
        store.close()
    counts["lost"] += counts["started"] - len(found)
    counts["transitions_lost"] += (counts["started"] - len(found)) * 3 * (tasks + 1)
    return counts | {
        "reads": read.get("reads", 0),
        "read_errors": read.get("errors", -1),
        "first_read_error": read.get("first_error", "the reader printed nothing"),
    }


def pg_restart(
    folder: str | os.PathLike[str],
    *,
    runs: int = 1,
    down: float = 2.5,
    retry: str = "10s",
    steps: int = 3,
    server: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A flow recording into a PostgreSQL of its own, which its task stops mid-run.

    The server is started again ``down`` seconds later. With ``retry``
    (``daskflow.store-retry``) longer than ``down`` the refused batches are
    retried until it is back; shorter, they are journaled, and replayed when
    ``daskflow runs list`` opens the store after the server is back.
    ``server``: ``(url, data folder)`` from :func:`postgres`; None starts one.

    Besides the counts of the module: ``journal_named`` (runs whose stderr
    named their journal), ``warnings`` (daskflow's warnings on stderr),
    ``listed_final`` (runs that the ``daskflow runs
    list`` after the restart showed in a final state: it replayed the
    journal), ``journal_kept`` (journal files left after it).

    Raises
    ------
    Unavailable
        PostgreSQL's ``initdb`` is not installed, or cannot run here.
    """
    if server is None:
        with postgres(Path(folder) / "pg") as started:
            return pg_restart(
                folder, runs=runs, down=down, retry=retry, steps=steps, server=started
            )
    url, data = server
    counts = _counts() | {"journal_named": 0, "listed_final": 0, "journal_kept": 0}
    for number in range(runs):
        root = Path(folder) / f"pg-{number}-{down}"
        flows = _flow_file(root)
        env = _env(root, url, DASKFLOW__STORE_RETRY=retry)
        restarted = Path(f"{data}.restarted")
        restarted.unlink(missing_ok=True)
        args = ["run", f"{flows}:faulted", "--cluster", "sync", "-p", "kind=pg-restart"]
        args += ["-p", f"target={data}", "-p", f"seconds={down}", "-p", f"n={steps}"]
        done = _daskflow(*args, cwd=root, env=env)
        counts["exit_codes"].append(done.returncode)
        run_id = _run_id(done.stdout + done.stderr)
        counts["started"] += run_id is not None
        named = [p for p in _journals(root) if str(p) in done.stderr]
        counts["journal_named"] += bool(named)
        counts["warnings"] = counts.get("warnings", 0) + done.stderr.count("daskflow: ")
        counts["journaled"] += bool(named)
        _wait_for(restarted, 60)
        listed = _daskflow("runs", "list", "--json", "--limit", "1000", cwd=root, env=env)
        counts["exit_codes"].append(listed.returncode)
        states = {r["id"]: r["state"] for r in json.loads(listed.stdout or "[]")}
        counts["listed_final"] += states.get(run_id) in FINAL
        counts["journal_kept"] += len(_journals(root))
        store = _opened(url, root / "journal")
        try:
            before = counts["lost"] + counts["non_final"]
            audit(store, run_id, 2 * steps + 1, counts)
            lost = counts["lost"] + counts["non_final"] > before
            counts["silent"] += lost and done.returncode == 0
        finally:
            store.close()
    return counts


PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Unavailable(RuntimeError):
    """A scenario cannot run here (no PostgreSQL binaries, no permission to mount)."""


@contextmanager
def postgres(folder: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """A PostgreSQL server of its own: ``(URL of database "chaos", data folder)``.

    The data folder is made by ``initdb`` as the ``postgres`` user, in a
    folder of /tmp that user can reach (``folder`` itself may sit below one
    only root can enter); its address (127.0.0.1, a free port) is written in
    its ``postgresql.conf``, so a plain ``pg_ctl start`` restarts it the same.

    Raises
    ------
    Unavailable
        ``initdb`` is not installed, or the ``postgres`` user cannot run it.
    """
    import sqlalchemy as sa

    if not (PG_BIN / "initdb").exists():
        raise Unavailable(f"PostgreSQL's initdb is not installed ({PG_BIN / 'initdb'})")
    Path(folder).mkdir(parents=True, exist_ok=True)
    data = tempfile.mkdtemp(prefix="daskflow-chaos-pg-")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    try:
        shutil.chown(data, "postgres", "postgres")
        init = [str(PG_BIN / "initdb"), "-D", data, "-U", "postgres", "--auth=trust"]
        made = subprocess.run([*as_postgres, *init], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise Unavailable(f"initdb failed: {made.stderr.strip()[-300:]}")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with open(os.path.join(data, "postgresql.conf"), "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\n")
            conf.write(f"unix_socket_directories = '{data}'\nfsync = off\n")
        start = [str(PG_BIN / "pg_ctl"), "-D", data, "-l", f"{data}/log", "-w", "start"]
        subprocess.run([*as_postgres, *start], capture_output=True, check=True)
        server = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE chaos"))
        admin.dispose()
        yield f"{server}/chaos", data
    finally:
        stop = [str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]
        subprocess.run([*as_postgres, *stop], capture_output=True, check=False)
        shutil.rmtree(data, ignore_errors=True)
        Path(f"{data}.restarted").unlink(missing_ok=True)
