"""Result storage: task results as files in a folder or any fsspec location.

Layout under the storage root (a local folder by default,
``~/.daskflow/results``; any fsspec URL such as ``s3://bucket/results``)::

    <task_run_id>.parquet | .pkl   the value (see :mod:`.serializers`)
    <task_run_id>.json             its record: format, size, times, cache key, signature
    cache/<sha256 of key>.json     a cache entry: a copy of the record

The record is written after the value, so a record always names a complete
file; a cache entry is written last. Readers go through the record, never
guess a file name: a result is found by its task run id (a worker that lost
a result reloads it; a resumed flow run reuses it) or by its cache key.

Records kept in the storage name their value relative to the root
(``<task_run_id>.pkl``), so the folder can be moved or mounted elsewhere;
records handed out (:meth:`ResultStorage.write`, :meth:`~ResultStorage.find`,
:meth:`~ResultStorage.lookup`, and so the run store) carry the full location.
Records of older daskflow versions hold full locations: they still load
(a value missing there is looked for under the root by its file name).

Every value is signed with the store's key and checked before it is loaded
(:mod:`.signing`): a tampered, foreign or unsigned file is refused with a
:class:`~daskflow.errors.ResultStorageError`. Local folders and files are
created owner-only (0700 / 0600).

Nothing here talks to the run store: workers on a remote cluster read and
write results directly, and the store records each result's location.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from daskflow.errors import ResultStorageError
from daskflow.owner_only import private_folder, write_private
from daskflow.results.serializers import FORMATS, dump, format_for, load
from daskflow.results.signing import check, key_for, on_local_disk, signer

__all__ = ["ResultStorage", "StoredResult", "default_storage_url", "storage_for"]


@dataclass(frozen=True, slots=True)
class StoredResult:
    """Where a stored result lives and what it is.

    Attributes
    ----------
    location
        Full path or URL of the value's file (in the records kept in the
        storage: its path relative to the storage root).
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
    signature
        HMAC-SHA256 (hex) of the value's file under the store's key, or None:
        not signed (written by an older daskflow), so never loaded.
    """

    location: str
    format: str
    size: int
    created: float
    cache_key: str | None = None
    expires: float | None = None
    signature: str | None = None

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
    """``daskflow.results`` from the configuration (env ``DASKFLOW_RESULTS`` lands there)."""
    from daskflow import config

    return str(config.get("results"))


class ResultStorage:
    """Reads and writes results under one root (see the module docstring).

    Parameters
    ----------
    url
        A local folder (``~`` is expanded) or any fsspec URL.
    key
        The key results are signed with; None: the store's own key file
        (:func:`~daskflow.results.signing.key_for`), read on first use.

    Examples
    --------
    >>> storage = ResultStorage(tmp_path)                       # doctest: +SKIP
    >>> record = storage.write("run-1", {"a": 1}, cache_key="k")  # doctest: +SKIP
    >>> storage.read(storage.lookup("k"))                        # doctest: +SKIP
    {'a': 1}
    """

    def __init__(self, url: str, key: bytes | None = None) -> None:
        from fsspec.core import url_to_fs

        self.url = url
        expanded = os.path.expanduser(url) if "://" not in url else url
        try:
            self.fs, self.root = url_to_fs(expanded)
        except (ImportError, ValueError) as exc:  # unknown protocol, missing driver
            raise ResultStorageError(url, f"not a usable fsspec location ({exc})") from exc
        self.local = on_local_disk(self.fs)
        self._key = key
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"ResultStorage({self.url!r})"

    @property
    def key(self) -> bytes:
        """The key this storage signs and checks results with."""
        if self._key is None:
            self._key = key_for(self.url)
        return self._key

    # -- writing ---------------------------------------------------------------
    def write(
        self,
        name: str,
        value: Any,
        cache_key: str | None = None,
        expiration: float | None = None,
        file_name: str | None = None,
    ) -> StoredResult:
        """Store ``value`` as result ``name``; with ``cache_key``, as a cache entry too.

        ``expiration`` is the cache entry's lifetime in seconds (None: forever).
        ``file_name``: the value's file, relative to the root (a task's
        ``result_storage_key``), instead of ``name`` and the format's suffix.
        """
        fmt = format_for(value)
        file_name = file_name or name + FORMATS[fmt]
        location = self._path(file_name)
        now = time.time()
        expires = None if expiration is None else now + expiration
        mac = signer(self.key, posixpath.basename(file_name), fmt, cache_key, expires)
        try:
            self._ensure_folder(self.root)
            if "/" in file_name:
                self._ensure_folder(posixpath.dirname(location))
            try:
                size = dump(value, self.fs, location, fmt, mac)
            except FileNotFoundError:  # the folder was moved or removed since we made it
                self._made.clear()
                self._ensure_folder(self.root)
                mac = signer(self.key, posixpath.basename(file_name), fmt, cache_key, expires)
                size = dump(value, self.fs, location, fmt, mac)
            kept = StoredResult(file_name, fmt, size, now, cache_key, expires, mac.hexdigest())
            self._write_text(self._path(name + ".json"), kept.to_json())
            if cache_key is not None:
                self._ensure_folder(self._path("cache"))
                self._write_text(self._cache_path(cache_key), kept.to_json())
        except OSError as exc:
            raise ResultStorageError(self.url, f"could not write result {name} ({exc})") from exc
        return replace(kept, location=self._url_of(location))

    # -- reading ---------------------------------------------------------------
    def find(self, name: str) -> StoredResult | None:
        """The record of result ``name``, or None when it was never completely written."""
        return self._read_record(self._path(name + ".json"))

    def lookup(self, cache_key: str, now: float | None = None) -> StoredResult | None:
        """The live cache entry for ``cache_key``: None when absent, expired or gone."""
        record = self._read_record(self._cache_path(cache_key))
        if record is None or record.cache_key != cache_key or record.expired(now):
            return None
        if self.fs.exists(self._fs_path(record.location)):
            return record
        moved = self._moved(record.location)
        if moved is None:
            return None  # the value was deleted under the entry: treat as a miss
        return replace(record, location=moved)

    def read(self, record: StoredResult) -> Any:
        """The value a record names, once its signature is checked.

        Raises
        ------
        ResultStorageError
            The file is not signed by this store's key (tampered, foreign, or
            written by an older daskflow), or cannot be read.
        """
        from fsspec.core import url_to_fs

        location = record.location
        if not _is_full(location):
            location = self._url_of(self._path(location))
        try:
            try:
                fs, path = url_to_fs(location)
                return self._load(fs, path, record, location)
            except FileNotFoundError:
                moved = self._moved(location)
                if moved is None:
                    raise
                location = moved
                return self._load(self.fs, self._fs_path(moved), record, location)
        except ResultStorageError:
            raise
        except (OSError, EOFError, ValueError) as exc:
            raise ResultStorageError(location, f"could not read the stored result ({exc})") from exc

    def _load(self, fs: Any, path: str, record: StoredResult, location: str) -> Any:
        name = posixpath.basename(path)
        mac = signer(self.key, name, record.format, record.cache_key, record.expires)
        return load(
            fs, path, record.format, lambda data: check(mac, data, record.signature, location)
        )

    def _moved(self, location: str) -> str | None:
        """Where a full location's file is under this root, if it was moved here."""
        candidate = self._path(posixpath.basename(self._fs_path(location)))
        if self._url_of(candidate) == location or not self.fs.exists(candidate):
            return None
        return self._url_of(candidate)

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
            if self.local:
                private_folder(path)
            else:
                self.fs.makedirs(path, exist_ok=True)
            self._made.add(path)

    def _write_text(self, path: str, text: str) -> None:
        if self.local:
            write_private(path, text.encode())
        else:
            with self.fs.open(path, "w") as f:
                f.write(text)

    def _read_record(self, path: str) -> StoredResult | None:
        try:
            with self.fs.open(path, "r") as f:
                record = StoredResult.from_json(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, AttributeError):
            return None  # a torn or foreign file: as good as absent
        if not _well_formed(record):
            return None
        if _is_full(record.location):
            return record  # written by an older daskflow
        return replace(record, location=self._url_of(self._path(record.location)))


def _well_formed(record: StoredResult) -> bool:
    """Whether a record read from storage has the types daskflow writes (else: ignored)."""
    return (
        isinstance(record.location, str)
        and bool(record.location)
        and isinstance(record.format, str)
        and record.format in FORMATS
        and isinstance(record.cache_key, str | None)
        and isinstance(record.expires, int | float | None)
        and isinstance(record.signature, str | None)
    )


def _is_full(location: str) -> bool:
    """Whether a record's location is a full path or URL (not relative to a root)."""
    return "://" in location or location.startswith("/") or os.path.isabs(location)


_storages: dict[tuple[str, bytes | None], ResultStorage] = {}
_storages_lock = threading.Lock()


def storage_for(url: str | None = None, key: bytes | None = None) -> ResultStorage:
    """The process's :class:`ResultStorage` for ``url`` (default: the configured one).

    ``key``: the key to sign and check with (a worker gets the client's in the
    task's result policy); None: the store's key file.
    """
    url = url or default_storage_url()
    storage = _storages.get((url, key))
    if storage is None:
        with _storages_lock:
            storage = _storages.get((url, key))
            if storage is None:
                storage = _storages[(url, key)] = ResultStorage(url, key)
    return storage
