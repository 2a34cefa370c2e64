"""Result storage: task results as files in a folder or any fsspec location.

Layout under the storage root (a local folder by default,
``~/.daskflow/results``; any fsspec URL such as ``s3://bucket/results``)::

    <task_run_id>.parquet | .pkl   the value (see :mod:`.serializers`)
    <task_run_id>.json             its record: format, size, times, cache key
    cache/<sha256 of key>.json     a cache entry: a copy of the record

The record is written after the value, so a record always names a complete
file; a cache entry is written last. Readers go through the record, never
guess a file name: a result is found by its task run id (a worker that lost
a result reloads it; a resumed flow run reuses it) or by its cache key.

Nothing here talks to the run store: workers on a remote cluster read and
write results directly, and the store records each result's location.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from daskflow.errors import ResultStorageError
from daskflow.results.serializers import FORMATS, dump, format_for, load

__all__ = ["ResultStorage", "StoredResult", "default_storage_url", "storage_for"]


@dataclass(frozen=True, slots=True)
class StoredResult:
    """Where a stored result lives and what it is.

    Attributes
    ----------
    location
        Full path or URL of the value's file.
    format
        How it was written (a key of :data:`~.serializers.FORMATS`).
    size
        Bytes on storage.
    created
        When it was written (seconds since the epoch).
    cache_key
        The cache key it was stored under, or None.
    expires
        When its cache entry stops being reused (epoch seconds), or None: never.
    """

    location: str
    format: str
    size: int
    created: float
    cache_key: str | None = None
    expires: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now or time.time()) >= self.expires

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredResult:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StoredResult:
        """A record from its dict (other keys, such as a run's ``collection``, ignored)."""
        known: dict[str, Any] = {name: values.get(name) for name in cls.__dataclass_fields__}
        return cls(**known)


def default_storage_url() -> str:
    """``daskflow.results`` from the configuration (env ``DASKFLOW_RESULTS``)."""
    from daskflow import config

    return str(os.environ.get("DASKFLOW_RESULTS") or config.get("results"))


class ResultStorage:
    """Reads and writes results under one root (see the module docstring).

    Parameters
    ----------
    url
        A local folder (``~`` is expanded) or any fsspec URL.

    Examples
    --------
    >>> storage = ResultStorage(tmp_path)                       # doctest: +SKIP
    >>> record = storage.write("run-1", {"a": 1}, cache_key="k")  # doctest: +SKIP
    >>> storage.read(storage.lookup("k"))                        # doctest: +SKIP
    {'a': 1}
    """

    def __init__(self, url: str) -> None:
        from fsspec.core import url_to_fs

        self.url = url
        expanded = os.path.expanduser(url) if "://" not in url else url
        try:
            self.fs, self.root = url_to_fs(expanded)
        except (ImportError, ValueError) as exc:  # unknown protocol, missing driver
            raise ResultStorageError(url, f"not a usable fsspec location ({exc})") from exc
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"ResultStorage({self.url!r})"

    # -- writing ---------------------------------------------------------------
    def write(
        self,
        name: str,
        value: Any,
        cache_key: str | None = None,
        expiration: float | None = None,
    ) -> StoredResult:
        """Store ``value`` as result ``name``; with ``cache_key``, as a cache entry too.

        ``expiration`` is the cache entry's lifetime in seconds (None: forever).
        """
        fmt = format_for(value)
        location = self._path(name + FORMATS[fmt])
        now = time.time()
        try:
            self._ensure_folder(self.root)
            size = dump(value, self.fs, location, fmt)
            record = StoredResult(
                self._url_of(location),
                fmt,
                size,
                now,
                cache_key,
                None if expiration is None else now + expiration,
            )
            self._write_text(self._path(name + ".json"), record.to_json())
            if cache_key is not None:
                self._ensure_folder(self._path("cache"))
                self._write_text(self._cache_path(cache_key), record.to_json())
        except OSError as exc:
            raise ResultStorageError(self.url, f"could not write result {name} ({exc})") from exc
        return record

    # -- reading ---------------------------------------------------------------
    def find(self, name: str) -> StoredResult | None:
        """The record of result ``name``, or None when it was never completely written."""
        return self._read_record(self._path(name + ".json"))

    def lookup(self, cache_key: str, now: float | None = None) -> StoredResult | None:
        """The live cache entry for ``cache_key``: None when absent, expired or gone."""
        record = self._read_record(self._cache_path(cache_key))
        if record is None or record.expired(now):
            return None
        if not self.fs.exists(self._fs_path(record.location)):
            return None  # the value was deleted under the entry: treat as a miss
        return record

    def read(self, record: StoredResult) -> Any:
        """The value a record names (wherever it is: records hold full locations)."""
        from fsspec.core import url_to_fs

        try:
            fs, path = url_to_fs(record.location)
            return load(fs, path, record.format)
        except (OSError, EOFError, ValueError) as exc:
            raise ResultStorageError(
                record.location, f"could not read the stored result ({exc})"
            ) from exc

    # -- paths -----------------------------------------------------------------
    def _path(self, relative: str) -> str:
        return f"{self.root.rstrip('/')}/{relative}"

    def _cache_path(self, cache_key: str) -> str:
        digest = hashlib.sha256(cache_key.encode()).hexdigest()[:40]
        return self._path(f"cache/{digest}.json")

    def _url_of(self, path: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return path if protocol in ("file", "local") else f"{protocol}://{path}"

    def _fs_path(self, location: str) -> str:
        """A location of this storage as a path of its filesystem."""
        return location.split("://", 1)[1] if "://" in location else location

    def _ensure_folder(self, path: str) -> None:
        if path not in self._made:
            self.fs.makedirs(path, exist_ok=True)
            self._made.add(path)

    def _write_text(self, path: str, text: str) -> None:
        with self.fs.open(path, "w") as f:
            f.write(text)

    def _read_record(self, path: str) -> StoredResult | None:
        try:
            with self.fs.open(path, "r") as f:
                return StoredResult.from_json(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # a torn or foreign file: as good as absent


_storages: dict[str, ResultStorage] = {}
_storages_lock = threading.Lock()


def storage_for(url: str | None = None) -> ResultStorage:
    """The process's :class:`ResultStorage` for ``url`` (default: the configured one)."""
    url = url or default_storage_url()
    storage = _storages.get(url)
    if storage is None:
        with _storages_lock:
            storage = _storages.get(url)
            if storage is None:
                storage = _storages[url] = ResultStorage(url)
    return storage
