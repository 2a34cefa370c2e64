"""``with transaction():`` groups task runs: a failure rolls back, success commits (SPEC §1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import daskflow
from daskflow import flow, task
from daskflow.transactions import Transaction, get_transaction, transaction

CALLS: list[str] = []


@task
def write_file(path: str, contents: str) -> str:
    Path(path).write_text(contents)
    return path


@write_file.on_rollback
def delete_file(txn: Transaction) -> None:
    CALLS.append(f"rollback {txn.get('label', 'write')}")
    os.unlink(txn.get("path"))


@write_file.on_commit
def confirm(txn: Transaction) -> None:
    CALLS.append("commit write")


@task
def quality_test(path: str) -> int:
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2:
        raise ValueError("Not enough data!")
    return len(lines)


def _undo(name: str):
    def hook(txn: Transaction) -> None:
        CALLS.append(f"rollback {name}")

    return hook


@task(on_rollback=[_undo("step")], on_commit=[lambda txn: CALLS.append("commit step")])
def step(x: int) -> int:
    return x


@task
def explode(x: int) -> int:
    raise RuntimeError(f"step {x} failed")


@flow
def pipeline(path: str, contents: str) -> int:
    with transaction() as txn:
        txn.set("path", path)
        write_file(path, contents)
        return quality_test(path)


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


def test_a_failing_task_rolls_back_what_completed(cluster, tmp_path):
    path = str(tmp_path / "side-effect.txt")
    state = pipeline.with_options(cluster=cluster)(path, "hello world", return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, ValueError)
    assert not os.path.exists(path)  # the rollback hook deleted what write_file wrote
    assert CALLS == ["rollback write"]


def test_a_block_without_failure_commits(cluster, tmp_path):
    path = str(tmp_path / "side-effect.txt")
    assert pipeline.with_options(cluster=cluster)(path, "hello\nworld") == 2
    assert Path(path).read_text() == "hello\nworld"
    assert CALLS == ["commit write"]


@flow
def submitted(fail: bool) -> str | None:
    with transaction() as txn:
        txn.set("label", "submitted")
        futures = [step.submit(i) for i in range(3)]
        if fail:
            explode.submit(9)  # never waited on: the block's end waits for it
        status = txn.state.value
    return f"{status} {txn.state.value} {[f.result() for f in futures]}"


def test_the_block_waits_for_submitted_runs_and_rolls_back_newest_first(cluster):
    state = submitted.with_options(cluster=cluster)(True, return_state=True)
    assert state.is_failed()  # the failed run was never looked at: the flow fails too
    assert CALLS == ["rollback step"] * 3


def test_submitted_runs_commit_in_call_order(cluster):
    assert submitted.with_options(cluster=cluster)(False) == "ACTIVE COMMITTED [0, 1, 2]"
    assert CALLS == ["commit step"] * 3


@task(on_rollback=[_undo("first")])
def first() -> int:
    return 1


@task(on_rollback=[_undo("second")])
def second() -> int:
    return 2


@flow
def ordered() -> None:
    with transaction():
        first()
        second()
        explode(0)


def test_rollback_hooks_run_newest_first(cluster):
    assert ordered.with_options(cluster=cluster)(return_state=True).is_failed()
    assert CALLS == ["rollback second", "rollback first"]


@flow
def nested(fail_outer: bool) -> list[str]:
    seen = []
    with transaction() as outer:
        outer.set("who", "outer")
        with transaction() as inner:
            first()
            seen.append(inner.get("who"))  # values fall through to the enclosing one
        seen.append(inner.state.value)  # committed by the outer one, later
        second()
        if fail_outer:
            raise RuntimeError("outer failed")
    seen.append(inner.state.value)
    return seen


def test_a_nested_transaction_commits_with_its_parent(cluster):
    assert nested.with_options(cluster=cluster)(False) == ["outer", "STAGED", "COMMITTED"]


def test_a_failing_parent_rolls_back_its_committed_children(cluster):
    state = nested.with_options(cluster=cluster)(True, return_state=True)
    assert state.is_failed()
    assert CALLS == ["rollback second", "rollback first"]


def test_outside_a_flow_task_calls_join_the_transaction(tmp_path):
    path = str(tmp_path / "bare.txt")
    opened: list[Transaction] = []

    def block() -> None:
        with transaction() as txn:
            opened.append(txn)
            txn.set("path", path)
            write_file(path, "one line")
            quality_test(path)

    with pytest.raises(ValueError, match="Not enough data"):
        block()
    txn = opened[0]
    assert txn.is_rolled_back()
    assert not os.path.exists(path)
    assert get_transaction() is None


def test_a_key_makes_the_block_run_once(tmp_path):
    key = f"write-once-{tmp_path.name}"

    @flow(cluster="sync")
    def once() -> str:
        with transaction(key=key) as txn:
            if txn.is_committed():
                return "already written"
            step(1)
        return "written"

    assert once() == "written"
    assert once() == "already written"
    with transaction(key=key, overwrite=True) as txn:
        assert not txn.is_committed()


def test_a_failing_hook_is_logged_and_rolls_back_the_commit(caplog):
    def broken(txn: Transaction) -> None:
        raise OSError("disk full")

    fragile = step.with_options(on_commit=[broken])
    with transaction() as txn:
        fragile(1)
    assert txn.is_rolled_back()
    assert CALLS == ["rollback step"]
    assert "commit hook 'broken'" in caplog.text


def test_get_without_a_value_names_it():
    with transaction() as txn:
        assert txn.get("nothing", 5) == 5
        with pytest.raises(KeyError, match="nothing"):
            txn.get("nothing")


def test_transaction_is_importable_from_daskflow():
    assert daskflow.transaction is transaction


def test_a_hook_that_is_not_a_function_is_refused_at_decoration():
    with pytest.raises(daskflow.errors.ConfigurationError, match="on_rollback"):
        task(on_rollback=["not a function"])(lambda: 1)


@task
async def async_step(x: int) -> int:
    return x


@async_step.on_rollback
def async_undo(txn: Transaction) -> None:
    CALLS.append("rollback async")


@flow
async def async_pipeline(fail: bool) -> int:
    with transaction():
        value = await async_step(1)
        if fail:
            await async_step.submit(explode.submit(2))
    return value


def test_an_async_flow_rolls_back_too(cluster):
    import asyncio

    assert asyncio.run(async_pipeline.with_options(cluster=cluster)(False)) == 1
    assert CALLS == []
    state = asyncio.run(async_pipeline.with_options(cluster=cluster)(True, return_state=True))
    assert state.is_failed()
    assert CALLS == ["rollback async"]


def test_transaction_hooks_stay_on_the_client(cluster):
    import threading

    lock = threading.Lock()  # cannot be pickled: a hook holding it never goes to a worker

    @task
    def local_step(x: int) -> int:
        return x

    @local_step.on_commit
    def under_lock(txn: Transaction) -> None:
        with lock:
            CALLS.append("commit under lock")

    @flow
    def with_local_hooks() -> int:
        with transaction():
            return local_step.submit(3).result()

    assert with_local_hooks.with_options(cluster=cluster)() == 3
    assert CALLS == ["commit under lock"]


@task
def three() -> list[int]:
    return [1, 2, 3]


@flow
def mapped_later(fail: bool) -> None:
    with transaction():
        step.map(three.submit())  # its width is known only once three ran
        if fail:
            explode.submit(1)


def test_runs_of_a_map_of_unknown_width_join_the_transaction(cluster):
    mapped_later.with_options(cluster=cluster)(False)
    assert CALLS == ["commit step"] * 3
    CALLS.clear()
    assert mapped_later.with_options(cluster=cluster)(True, return_state=True).is_failed()
    assert CALLS == ["rollback step"] * 3
