"""Trust in stored results: a per-store key, signatures, owner-only files.

A pickle runs code when it is loaded, so a result file is only loaded when
this store wrote it. Each result is signed when it is written and checked
before it is read, with HMAC-SHA256 under a key of 32 random bytes:

- **The key** lives in a file *beside* the result storage, never in it (whoever
  can write the results folder must not be able to read the key):
  ``daskflow.results-key`` names it; when null, it is ``results.key`` in the
  folder holding a local results folder (``~/.daskflow/results`` ->
  ``~/.daskflow/results.key``) and ``~/.daskflow/results.key`` for an fsspec
  URL (``s3://...``). It is created on first use (``secrets.token_bytes``,
  mode 0600, in a folder daskflow creates 0700) and read once per process.
  Moving a results folder to another parent folder: move its key with it, or
  point ``daskflow.results-key`` at the key.
- **How it reaches workers**: the client reads the key when it resolves a
  task's :class:`~daskflow.engine.caching.ResultPolicy`, and the policy, sent
  with each task run's call, carries it. Workers never look for the key file:
  a remote worker checks and signs with the client's key (it already runs the
  client's code, so it is in the same trust domain).
- **What is signed**: the value file's bytes, in both formats: a tampered
  Parquet file can change values, and parsing a hostile one is not free of
  risk either (pyarrow < 14.0.1 unpickled extension types: CVE-2023-47248).
  It costs one SHA-256 pass over the file; a big frame is hashed by a thread
  following the writer (:func:`signing_appends`). The file's name, format,
  cache key and expiry are signed with it, so a signed result moved to
  another name or cache entry is refused too. The signature is *detached*:
  the result's record holds it (``signature``, hex), so value files stay
  plain cloudpickle and Parquet, readable by any Parquet reader.
- **Checking**: the whole file is read (or memory-mapped) once, its signature
  checked, and only then those same bytes are unpickled or parsed. A missing
  or wrong signature is a :class:`~daskflow.errors.ResultStorageError`.

Local folders and files daskflow creates for results (the results folder,
``cache/``, the key's folder, values, records, the key) are owner-only
(:mod:`daskflow.owner_only`), written whole and renamed into place. fsspec
remote storage keeps its own permissions.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any

from daskflow.errors import ResultStorageError
from daskflow.owner_only import private_folder, write_private

__all__ = [
    "check",
    "is_local",
    "key_for",
    "key_path",
    "on_local_disk",
    "signer",
    "signing_appends",
]

KEY_BYTES = 32
_MIN_KEY_BYTES = 16
_CHUNK = 4 << 20

_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


# -- the key ---------------------------------------------------------------------
def is_local(url: str) -> bool:
    """Whether a result storage URL is a folder of this machine."""
    return "://" not in url or url.startswith(("file://", "local://"))


def on_local_disk(fs: Any) -> bool:
    """Whether an fsspec filesystem is this machine's own."""
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


def key_path(url: str) -> str:
    """Where the key of the result storage at ``url`` is kept (see the module docstring)."""
    from daskflow import config

    configured = config.get("results-key", None)
    if configured:
        return os.path.abspath(os.path.expanduser(str(configured)))
    if not is_local(url):
        return os.path.expanduser(os.path.join("~", ".daskflow", "results.key"))
    folder = os.path.abspath(os.path.expanduser(url.split("://", 1)[-1]))
    return os.path.join(os.path.dirname(folder), "results.key")


def key_for(url: str) -> bytes:
    """The signing key of the result storage at ``url``: read once, created if absent."""
    path = key_path(url)
    key = _keys.get(path)
    if key is None:
        with _keys_lock:
            key = _keys.get(path)
            if key is None:
                key = _keys[path] = _read_or_create(path)
    return key


def _read_or_create(path: str) -> bytes:
    try:
        try:
            with open(path, "rb") as f:
                key = f.read()
        except FileNotFoundError:
            key = _create(path)
    except OSError as exc:
        raise ResultStorageError(path, f"could not read or create the results key ({exc})") from exc
    if len(key) < _MIN_KEY_BYTES:
        raise ResultStorageError(
            path, f"the results key has {len(key)} bytes (it should hold {KEY_BYTES} random bytes)"
        )
    return key


def _create(path: str) -> bytes:
    """Write a new key; another process creating it at once wins or loses whole."""
    private_folder(os.path.dirname(path))
    key = secrets.token_bytes(KEY_BYTES)
    temporary = f"{path}.{secrets.token_hex(6)}.key"
    write_private(temporary, key)
    try:
        os.link(temporary, path)  # atomic, and never replaces a key another process made
    except FileExistsError:
        with open(path, "rb") as f:
            key = f.read()
    finally:
        os.unlink(temporary)
    return key


def signer(key: bytes, name: str, fmt: str, cache_key: str | None, expires: float | None) -> Any:
    """An HMAC to feed a value file's bytes into, bound to what the record says of it.

    ``name`` is the file's name (no folder: a moved folder keeps its signatures).
    """
    about = json.dumps(["daskflow-result-1", name, fmt, cache_key, expires])
    return hmac.new(key, about.encode() + b"\0", hashlib.sha256)


def check(mac: Any, data: bytes | memoryview, signature: str | None, location: str) -> None:
    """Raise unless ``data`` (the file's whole content) carries ``signature``."""
    if not signature:
        raise ResultStorageError(location, "not signed by this store's key: refused")
    mac.update(data)
    if not hmac.compare_digest(mac.hexdigest(), signature):
        raise ResultStorageError(
            location, "not signed by this store's key (tampered or foreign): refused"
        )


@contextlib.contextmanager
def signing_appends(path: str, mac: Any) -> Iterator[None]:
    """Feed ``mac`` the bytes appended to file ``path`` while the block writes it.

    A Parquet writer only appends (Arrow output streams cannot seek), so a
    thread can hash what is already on disk while the writer encodes the
    rest: on a big frame the signature costs little more wall time than the
    write. The bytes hashed are checked to be the whole file at the end.
    """
    done = threading.Event()
    failure: list[BaseException] = []
    hashed = 0

    def follow() -> None:
        nonlocal hashed
        chunk = bytearray(_CHUNK)
        view = memoryview(chunk)
        try:
            with open(path, "rb", buffering=0) as f:
                finished = False
                while True:
                    n = f.readinto(chunk)
                    if n:
                        mac.update(view[:n])
                        hashed += n
                    elif finished:
                        return
                    else:
                        finished = done.wait(0.01)
        except BaseException as exc:  # handed to the writing thread
            failure.append(exc)

    follower = threading.Thread(target=follow, name="daskflow-sign", daemon=True)
    follower.start()
    try:
        yield
    finally:
        done.set()
        follower.join()
    if failure:
        raise failure[0]
    if hashed != os.path.getsize(path):
        raise OSError(f"{path} changed while it was being signed")
