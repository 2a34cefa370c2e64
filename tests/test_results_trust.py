"""Results you can trust (SPEC §5 "Trust"): signed results, owner-only files, movable folders.

Real result folders, real pickles (one whose ``__reduce__`` creates a marker
file), flows on sync, a threads cluster and a 2-process cluster. A stored
value that this store's key did not sign is never loaded: the task runs
again, and its new result replaces the cache entry.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import stat
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest

from daskflow import flow, runs, task
from daskflow.cache import task_input_hash
from daskflow.errors import ResultStorageError
from daskflow.results.signing import key_for, key_path, signer
from daskflow.results.storage import ResultStorage
from daskflow.states import StateType
from tests.resources.tasks import count_attempt


@task(cache_key_fn=task_input_hash)
def square(folder: str, x: int) -> int:
    count_attempt(folder, f"square-{x}")
    return x * x


@task(persist_result=True)
def step(folder: str, name: str) -> int:
    count_attempt(folder, name)
    return len(name)


@task
def gate(folder: str, x: int) -> int:
    if (Path(folder) / "closed").exists():
        raise RuntimeError("the gate is closed")
    return x * 10


class Evil:
    """Unpickling it creates ``marker``: what a planted pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def attempts(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text()) if path.exists() else 0


def latest(f) -> object:
    return runs(flow=f.name, limit=1)[0]


def the_square_run(f) -> object:
    (run,) = [r for r in latest(f).task_runs if r.task_name == "square"]
    return run


def cached_flow(cluster, storage: str | None = None):
    @flow(name="trusted-cache", cluster=cluster, result_storage=storage)
    def f(folder: str) -> int:
        return square(folder, 7)

    return f


def test_a_planted_pickle_is_not_loaded_and_the_task_runs_again(cluster, tmp_path):
    f = cached_flow(cluster, str(tmp_path / "results"))
    assert f(str(tmp_path)) == 49
    location = Path(the_square_run(f).result_location)
    marker = tmp_path / "the-pickle-ran"
    location.write_bytes(pickle.dumps(Evil(marker)))

    assert f(str(tmp_path)) == 49
    run = the_square_run(f)
    assert not marker.exists()
    assert run.state.type is StateType.COMPLETED  # ran, not CACHED
    assert attempts(tmp_path, "square-7") == 2
    warnings = [log.message for log in latest(f).logs if log.level == logging.WARNING]
    assert len(warnings) == 1
    assert str(location) in warnings[0]
    assert "not signed by this store's key" in warnings[0]

    assert f(str(tmp_path)) == 49  # the new result replaced the entry
    assert the_square_run(f).state.type is StateType.CACHED
    assert attempts(tmp_path, "square-7") == 2
    assert not marker.exists()


@pytest.mark.parametrize("value", [{"a": 1}, pd.DataFrame({"x": [1.0, 2.0, 3.0]})])
def test_a_flipped_byte_is_refused(tmp_path, value):
    storage = ResultStorage(str(tmp_path / "results"))
    record = storage.write("run-1", value, cache_key="k")
    path = Path(record.location)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    entry = storage.lookup("k")
    assert entry is not None
    with pytest.raises(ResultStorageError, match="not signed by this store's key") as caught:
        storage.read(entry)
    assert caught.value.location == str(path)


def test_a_big_frame_is_signed_while_it_is_written(tmp_path):
    """Frames of 32 MB and more are hashed by a thread following the writer."""
    frame = pd.DataFrame({"x": np.arange(5_000_000, dtype=np.float64)})  # 40 MB
    storage = ResultStorage(str(tmp_path / "results"))
    record = storage.write("run-1", frame, cache_key="k")
    path = Path(record.location)
    mac = signer(storage.key, path.name, record.format, "k", None)
    mac.update(path.read_bytes())
    assert record.signature == mac.hexdigest()  # every byte of the file, in order
    pd.testing.assert_frame_equal(storage.read(storage.lookup("k")), frame)
    with path.open("r+b") as f:
        f.seek(record.size // 3)
        byte = f.read(1)
        f.seek(record.size // 3)
        f.write(bytes([byte[0] ^ 0x80]))
    with pytest.raises(ResultStorageError, match="not signed by this store's key"):
        storage.read(storage.lookup("k"))


def test_a_pickle_dropped_into_the_folder_with_its_own_record_is_refused(tmp_path):
    storage = ResultStorage(str(tmp_path / "results"))
    storage.write("run-1", 1, cache_key="k")  # the folder and its cache exist
    marker = tmp_path / "the-pickle-ran"
    planted = tmp_path / "results" / "planted.pkl"
    planted.write_bytes(pickle.dumps(Evil(marker)))
    record = {"location": "planted.pkl", "format": "cloudpickle", "size": 1, "created": 0.0}
    (tmp_path / "results" / "run-2.json").write_text(json.dumps(record))
    found = storage.find("run-2")
    assert found is not None
    assert found.signature is None
    with pytest.raises(ResultStorageError, match="not signed by this store's key"):
        storage.read(found)
    assert not marker.exists()


@pytest.mark.parametrize(
    "planted", ["[]", '{"location": 5}', '{"location": "x.pkl", "format": "exe"}', "{"]
)
def test_a_garbled_cache_record_is_a_miss(tmp_path, planted):
    storage = ResultStorage(str(tmp_path / "results"))
    storage.write("run-1", 1, cache_key="k")
    (entry,) = (tmp_path / "results" / "cache").iterdir()
    entry.write_text(planted)
    assert storage.lookup("k") is None


def test_a_result_signed_with_another_key_is_refused(cluster, tmp_path):
    f = cached_flow(cluster, str(tmp_path / "results"))
    with dask.config.set({"daskflow.results-key": str(tmp_path / "mine.key")}):
        assert f(str(tmp_path)) == 49
        assert f(str(tmp_path)) == 49
        assert the_square_run(f).state.type is StateType.CACHED
    with dask.config.set({"daskflow.results-key": str(tmp_path / "foreign.key")}):
        assert f(str(tmp_path)) == 49
        assert the_square_run(f).state.type is StateType.COMPLETED
    assert attempts(tmp_path, "square-7") == 2
    assert (tmp_path / "mine.key").read_bytes() != (tmp_path / "foreign.key").read_bytes()


def test_a_signed_result_moved_to_another_name_is_refused(tmp_path):
    storage = ResultStorage(str(tmp_path / "results"))
    one = storage.write("run-1", "one", cache_key="k1")
    two = storage.write("run-2", "two", cache_key="k2")
    shutil.copy(two.location, one.location)  # signed by this key, but for another name
    with pytest.raises(ResultStorageError, match="not signed"):
        storage.read(storage.lookup("k1"))
    entries = tmp_path / "results" / "cache"
    record_of = {json.loads(p.read_text())["cache_key"]: p for p in entries.iterdir()}
    shutil.copy(record_of["k2"], record_of["k1"])  # another cache entry's record
    assert storage.lookup("k1") is None


def test_a_resume_runs_a_task_whose_stored_result_was_tampered_with(cluster, tmp_path):
    @flow(name="trusted-resume", cluster=cluster, result_storage=str(tmp_path / "results"))
    def f(folder: str) -> int:
        return gate(folder, step(folder, "a") + step(folder, "bb"))

    (tmp_path / "closed").touch()
    assert f(str(tmp_path), return_state=True).type is StateType.FAILED
    old = latest(f)
    stored = Path(old.task_runs[0].result_location)  # step "a": runs in creation order
    stored.write_bytes(stored.read_bytes() + b"\0")

    (tmp_path / "closed").unlink()
    assert f.resume(old.id) == 30
    states = [r.state.type for r in latest(f).task_runs]
    assert states == [StateType.COMPLETED, StateType.CACHED, StateType.COMPLETED]
    assert attempts(tmp_path, "a") == 2  # run again
    assert attempts(tmp_path, "bb") == 1  # reused


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_folders_files_and_the_key_are_owner_only(cluster, tmp_path):
    previous = os.umask(0o022)  # what most systems start with: everything world-readable
    try:
        root = tmp_path / "made" / "by" / "daskflow" / "results"
        f = cached_flow(cluster, str(root))
        assert f(str(tmp_path)) == 49
    finally:
        os.umask(previous)
    key = tmp_path / "made" / "by" / "daskflow" / "results.key"
    assert key_path(str(root)) == str(key)
    assert len(key.read_bytes()) == 32
    assert mode(key) == 0o600
    for folder in ("made", "made/by", "made/by/daskflow", "made/by/daskflow/results"):
        assert mode(tmp_path / folder) == 0o700, folder
    assert mode(root / "cache") == 0o700
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 3  # the value, its record, the cache entry
    assert {mode(p) for p in files} == {0o600}


def test_a_file_that_existed_is_made_owner_only_when_rewritten(tmp_path):
    storage = ResultStorage(str(tmp_path / "results"))
    storage.write("run-1", 1, cache_key="k")
    record = tmp_path / "results" / "run-1.json"
    record.chmod(0o644)
    storage.write("run-1", 2, cache_key="k")
    assert mode(record) == 0o600
    assert storage.read(storage.lookup("k")) == 2


def test_a_results_folder_removed_under_a_live_process_is_made_again(tmp_path):
    storage = ResultStorage(str(tmp_path / "results"))
    storage.write("run-1", 1, cache_key="k")
    shutil.rmtree(tmp_path / "results")
    storage.write("run-2", 2, cache_key="k")
    assert mode(tmp_path / "results") == mode(tmp_path / "results" / "cache") == 0o700
    assert storage.read(storage.lookup("k")) == 2


def test_a_moved_results_folder_still_hits_the_cache(cluster, tmp_path):
    first = tmp_path / "first" / "results"
    f = cached_flow(cluster)
    with dask.config.set({"daskflow.results": str(first)}):
        assert f(str(tmp_path)) == 49
    records = [json.loads(p.read_text()) for p in (first / "cache").iterdir()]
    assert [r["location"] for r in records] == [Path(the_square_run(f).result_location).name]

    renamed = tmp_path / "first" / "renamed"  # beside its key
    first.rename(renamed)
    with dask.config.set({"daskflow.results": str(renamed)}):
        assert f(str(tmp_path)) == 49
        assert the_square_run(f).state.type is StateType.CACHED
        assert the_square_run(f).result_location.startswith(str(renamed))

    elsewhere = tmp_path / "elsewhere"  # another parent folder: the key moves along
    shutil.move(tmp_path / "first", elsewhere)
    with dask.config.set({"daskflow.results": str(elsewhere / "renamed")}):
        assert f(str(tmp_path)) == 49
        assert the_square_run(f).state.type is StateType.CACHED
    assert attempts(tmp_path, "square-7") == 1


def test_a_cache_record_with_a_full_path_still_loads(tmp_path):
    """Cache records of older daskflow versions name their result by its full path."""
    storage = ResultStorage(str(tmp_path / "results"))
    record = storage.write("run-1", {"a": 1}, cache_key="k")
    (entry,) = (tmp_path / "results" / "cache").iterdir()
    kept = json.loads(entry.read_text())
    kept["location"] = record.location
    entry.write_text(json.dumps(kept))
    found = storage.lookup("k")
    assert found is not None
    assert found.location == record.location
    assert storage.read(found) == {"a": 1}


def test_the_key_is_created_once_and_kept_beside_the_results_folder(tmp_path):
    url = str(tmp_path / "store" / "results")
    assert key_path(url) == str(tmp_path / "store" / "results.key")
    assert key_path("s3://bucket/results") == os.path.expanduser("~/.daskflow/results.key")
    key = key_for(url)
    assert key == (tmp_path / "store" / "results.key").read_bytes()
    assert key_for(url) is key  # read once per process
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    with (
        dask.config.set({"daskflow.results-key": str(short)}),
        pytest.raises(ResultStorageError, match=r"short\.key: the results key has 3 bytes"),
    ):
        key_for(url)
