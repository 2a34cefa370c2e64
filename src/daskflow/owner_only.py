"""Files and folders only their owner can read: what daskflow creates on disk.

Run records, results, journals and keys hold parameters, errors, logs and
data, and the results folder holds pickles that are loaded back: nobody but
their owner should read (or plant) them. Everything daskflow creates is made
owner-only *as it is created*: folders ``os.mkdir(path, 0o700)``, files
``os.open(..., 0o600)`` then ``fchmod`` (the umask only ever takes bits
off), never by changing the process-wide umask, which other threads share.
Files that are rewritten are written whole into a new owner-only file and
renamed into place, so a reader sees the old content or the new, never half.
Folders and files that already exist are left as the user made them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "new_private_file",
    "private_folder",
    "private_replacement",
    "write_private",
]

#: Mode of the folders daskflow creates: rwx for the owner only.
FOLDER_MODE = 0o700
#: Mode of the files daskflow creates: rw for the owner only.
FILE_MODE = 0o600


def private_folder(path: str) -> str:
    """Create ``path`` and its missing parents, each owner-only; returns ``path``.

    Examples
    --------
    >>> private_folder("/tmp/daskflow-doc/a/b")  # doctest: +SKIP
    '/tmp/daskflow-doc/a/b'
    """
    path = os.path.abspath(os.path.expanduser(path))
    missing: list[str] = []
    head = path
    while not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            continue  # made by another process or thread meanwhile: not ours to change
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    return path


def new_private_file(path: str) -> bool:
    """Create an empty owner-only file at ``path`` unless one exists; True if created.

    Its missing folders are created owner-only too.
    """
    private_folder(os.path.dirname(os.path.abspath(path)))
    try:
        fd = _open_new(path)
    except FileExistsError:
        return False
    os.close(fd)
    return True


@contextlib.contextmanager
def private_replacement(path: str) -> Iterator[str]:
    """A new owner-only file to write ``path``'s content into; it becomes ``path`` at the end.

    The content appears at ``path`` whole or not at all (``os.replace``), and a
    reader holding the previous file (a memory-mapped Parquet file) keeps it.
    """
    temporary = f"{path}.{secrets.token_hex(6)}.tmp"
    os.close(_open_new(temporary))
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_private(path: str, data: bytes | memoryview) -> None:
    """Write ``data`` as file ``path``, owner-only, whole or not at all."""
    with private_replacement(path) as temporary:
        fd = os.open(temporary, os.O_WRONLY)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _open_new(path: str) -> int:
    """A new file at ``path`` (never an existing one), mode exactly 0600, open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd
