"""Files and folders only their owner can read: what daskflow creates on disk.

Run records, results, journals and keys hold parameters, errors, logs and
data, and the results folder holds pickles that are loaded back: nobody but
their owner should read (or plant) them. Everything daskflow creates is made
owner-only *as it is created* (``os.open``/``os.mkdir`` with a mode), never
by changing the process-wide umask, which other threads share. Folders and
files that already exist are left as the user made them.
"""

from __future__ import annotations

import os

__all__ = ["FILE_MODE", "FOLDER_MODE", "private_file", "private_folder"]

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
            continue  # another process made it at the same moment
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: str) -> bool:
    """Create an empty owner-only file at ``path`` unless one exists; True if created.

    Its folder is created owner-only too.
    """
    private_folder(os.path.dirname(os.path.abspath(path)))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True
