"""When the user last looked at a run store's failures: the panel's "seen" mark.

The alerts banner names the flow runs that failed since the user last
looked, also those that failed while no page was open. "Last looked" is a
time, kept per run store in a small owner-only file that holds one number
(seconds since the epoch), written when the user dismisses the banner:

- beside a SQLite store: ``runs.db`` has ``runs.db.panel-seen``;
- for another store (PostgreSQL): ``$XDG_STATE_HOME/daskflow/`` (else
  ``~/.local/state/daskflow/``), ``panel-seen-<hash of the store's URL>``;
- an in-memory store keeps the mark in memory.

The mark is the panel's only write, and it is not the run store's: runs are
never changed. Without a mark yet (the first page opened on a store), the
banner names the failures of the last :data:`FIRST_LOOK` seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["FIRST_LOOK", "SeenMark"]

logger = logging.getLogger("daskflow.panel")

#: Without a mark, how far back (seconds) the banner looks: one day.
FIRST_LOOK = 86_400.0
_SUFFIX = ".panel-seen"


class SeenMark:
    """The time until which the user has seen a run store's failures.

    Parameters
    ----------
    path
        The file that keeps the mark; None keeps it in memory only.

    Examples
    --------
    >>> mark = SeenMark(None)
    >>> mark.read() is None
    True
    >>> mark.write(1234.5)
    >>> mark.read()
    1234.5
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._value: float | None = None

    @classmethod
    def for_store(cls, store: Any) -> SeenMark:
        """The mark of ``store`` (a :class:`~daskflow.store.base.RunStore`), where it belongs."""
        url = str(getattr(store, "url", "memory"))
        if url == "memory" or url.endswith(":memory:"):
            return cls(None)
        database = getattr(store, "where", None)
        if url.startswith("sqlite") and database:
            return cls(f"{database}{_SUFFIX}")
        state = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return cls(Path(state).expanduser() / "daskflow" / f"panel-seen-{digest}")

    def read(self) -> float | None:
        """The mark (seconds since the epoch), or None if the user never dismissed an alert."""
        if self.path is None:
            return self._value
        try:
            return float(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def write(self, seconds: float) -> None:
        """Set the mark (in an owner-only file, replaced whole); failures are logged, not raised."""
        self._value = seconds
        if self.path is None:
            return
        from daskflow.owner_only import private_folder, private_replacement

        try:
            private_folder(str(self.path.parent))
            with private_replacement(str(self.path)) as temporary:
                Path(temporary).write_text(f"{seconds!r}\n")
        except OSError:
            logger.warning("daskflow panel: could not keep the seen mark in %s", self.path)
