"""The chaos suite, fast: no run lost under store and process faults.

Each test runs one scenario of ``tests/chaos_store.py`` at its smallest size
(one run, a few tasks) with real processes and real faults: a lock held by
another process, a read-only mount, a full tmpfs, garbage over the SQLite
file, a SIGKILLed driver, four writers and a reader at once, a PostgreSQL
server stopped mid-run. ``benchmarks/chaos.py`` runs them at full size.

Targets: 0 runs lost, 0 transitions lost, 0 duplicated by a replay, exit
codes as documented, and never exit 0 for a run neither recorded nor
journaled. Mounting needs root (tests that mount skip otherwise); the
PostgreSQL restart needs PostgreSQL's binaries (it starts a server of its
own); writers on PostgreSQL need ``DASKFLOW_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos_store import (
    PG_BIN,
    driver_kill,
    mount_available,
    pg_restart,
    postgres,
    store_fault,
    writers,
)
from tests.test_store import SQL_BACKENDS, backend_url


def nothing_lost(counts: dict[str, Any], runs: int = 1) -> None:
    assert counts["started"] == runs, counts
    assert counts["recorded"] == runs, counts
    assert counts["lost"] == 0, counts
    assert counts["non_final"] == 0, counts
    assert counts["transitions_lost"] == 0, counts
    assert counts["duplicates"] == 0, counts
    assert counts["silent"] == 0, counts


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> None:
    why = mount_available(tmp_path_factory.mktemp("mount"))
    if why is not None:
        pytest.skip(why)


@pytest.mark.parametrize("cluster", ["sync", None], ids=["sync", "embedded"])
def test_a_locked_store_journals_the_run_and_replays_it_once(tmp_path: Path, cluster: Any) -> None:
    counts = store_fault(tmp_path, "lock", cluster=cluster, hold=2.5)
    nothing_lost(counts)
    assert counts["exit_codes"] == [0]
    assert counts["journal_named"] == 1, counts["lines"]  # the user is told where it is ...
    assert counts["warnings"] == 1  # ... once
    assert counts["journal_kept"] == 0  # replayed into the store, then deleted


def test_a_store_made_read_only_mid_run_keeps_the_run(tmp_path: Path, can_mount: None) -> None:
    counts = store_fault(tmp_path, "readonly")
    nothing_lost(counts)
    assert counts["exit_codes"] == [0]


def test_a_read_only_store_refuses_the_run_before_it_starts(
    tmp_path: Path, can_mount: None
) -> None:
    counts = store_fault(tmp_path, "readonly-start")
    assert counts["started"] == 0
    assert counts["exit_codes"] == [1]
    assert counts["silent"] == 0
    assert str(tmp_path) in counts["lines"][0]  # one line naming the store


def test_a_full_disk_journals_the_run_and_replays_it(tmp_path: Path, can_mount: None) -> None:
    counts = store_fault(tmp_path, "full")
    nothing_lost(counts)
    assert counts["exit_codes"] == [0]
    assert counts["journal_named"] == 1, counts["lines"]


def test_a_run_neither_recorded_nor_journaled_exits_1(tmp_path: Path, can_mount: None) -> None:
    counts = store_fault(tmp_path, "full", journal_apart=False)
    assert counts["started"] == 1
    assert counts["exit_codes"] == [1]
    assert counts["silent"] == 0
    line = counts["lines"][0]
    assert "daskflow.db" in line, line  # one line naming the store ...
    assert "journal" in line, line  # ... and the journal


def test_a_corrupt_store_keeps_the_run_in_the_journal(tmp_path: Path) -> None:
    counts = store_fault(tmp_path, "corrupt")
    assert counts["started"] == 1
    assert counts["exit_codes"] == [0]
    assert counts["journal_named"] == 1, counts["lines"]
    assert counts["store_errors"] == 1  # opening it later: StoreError, clearly
    assert "corrupt" in counts["store_error"]
    assert counts["list_exit"] != 0
    assert len(counts["list_lines"]) == 1
    assert "daskflow.db" in counts["list_lines"][0]
    assert counts["journal_kept"] == 1  # for when the user restores the file
    assert counts["silent"] == 0


def test_a_restored_backup_gets_the_whole_run_back_from_the_journal(tmp_path: Path) -> None:
    counts = store_fault(tmp_path, "corrupt")
    assert counts["store_errors"] == 1
    assert counts["restored_visible"] == 1


def test_a_killed_driver_is_crashed_and_retried_without_rerunning(tmp_path: Path) -> None:
    counts = driver_kill(tmp_path, tasks=4, seconds=0.5)
    assert counts["exit_codes"] == [-9, 0]
    assert counts["crashed"] == 1
    assert counts["retried"] == 1
    assert counts["reran"] == 0  # completed and stored before the kill: reused
    assert counts["cached"] == 2
    assert counts["executed"] == 5  # 4 steps, and the one killed once more
    nothing_lost(counts)


@pytest.fixture(params=SQL_BACKENDS)
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_url(request.param, tmp_path) as url:
        yield url


def test_four_writers_and_a_reader_lose_nothing(tmp_path: Path, shared_url: str) -> None:
    counts = writers(tmp_path, shared_url, processes=4, flows=2, tasks=5)
    nothing_lost(counts, runs=8)
    assert counts["exit_codes"] == [0, 0, 0, 0]
    assert counts["reads"] > 0
    assert counts["read_errors"] == 0, counts["first_read_error"]


@pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or os.geteuid() != 0,
    reason=f"needs root and PostgreSQL's initdb ({PG_BIN})",
)
def test_postgres_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    with postgres(tmp_path / "pg") as server:
        retried = pg_restart(tmp_path / "retried", down=2.0, retry="10s", steps=2, server=server)
        journaled = pg_restart(tmp_path / "journaled", down=3.5, retry="1s", steps=2, server=server)
    nothing_lost(retried)
    assert retried["exit_codes"] == [0, 0]
    nothing_lost(journaled)
    assert journaled["exit_codes"] == [0, 0]
    assert journaled["journal_named"] == 1  # down for longer than store-retry
    assert journaled["listed_final"] == 1  # daskflow runs list replayed it
    assert journaled["journal_kept"] == 0
