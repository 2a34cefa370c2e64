"""Transactions: task runs grouped so that a failure undoes what the others did.

As in Prefect 3, ``with transaction():`` in a flow (or around task calls
outside one) groups the task runs called inside the block::

    with transaction() as txn:
        txn.set("filename", filename)
        write_file(filename, contents)   # @write_file.on_rollback deletes the file
        quality_test(filename)           # raises: the block fails

Model
-----
Every task run the block creates joins the transaction (the runner hands it
over as it registers the run: :mod:`daskflow.engine.enlist`). When the
block ends, the transaction waits for its task runs, then

- **rolls back** when the block raised or one of its task runs failed: the
  ``on_rollback`` hooks of the runs that completed run, newest run first,
  then those of the nested transactions that committed into it (newest
  first); an enclosing transaction rolls back too;
- **commits** otherwise: nested transactions first, then the ``on_commit``
  hooks of its runs in the order they were called. A nested transaction
  leaves its commit to the one around it.

Hooks are ``fn(transaction)`` and run **on the client**, in the thread that
ends the block: only the client knows the block's outcome, and the values
set with :meth:`Transaction.set` live there. Workers see nothing of
transactions, and a flow without one pays a context-variable read per task
run. A hook that raises is logged (a commit hook's failure rolls the
transaction back, as in Prefect).

``transaction(key="...")`` makes the block idempotent: committing writes a
small record under that key in the result storage, and
:meth:`Transaction.is_committed` is True when the block opens and a record
exists (``overwrite=True`` ignores it).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from daskflow.engine.enlist import open_transaction

__all__ = ["Transaction", "TransactionState", "get_transaction", "transaction"]

logger = logging.getLogger("daskflow.transactions")

_NOT_SET: Any = object()


class TransactionState(enum.Enum):
    """Where a transaction is in its life (Prefect's names)."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"  # a nested transaction that ended well: its parent commits it
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class Transaction:
    """One ``with transaction():`` block: its task runs, values, and outcome.

    Attributes
    ----------
    key
        The idempotency key, or None.
    state
        A :class:`TransactionState`.
    children
        Nested transactions that ended well inside this one.
    """

    def __init__(self, key: str | None = None, overwrite: bool = False) -> None:
        self.key = key
        self.overwrite = overwrite
        self.state = TransactionState.PENDING
        self.children: list[Transaction] = []
        self.parent: Transaction | None = None
        self._values: dict[str, Any] = {}
        self._runs: list[tuple[Any, Any]] = []  # (runner, task run), in creation order
        self._maps: list[tuple[Any, Any]] = []  # (runner, MappedFuture) of unknown width
        self._storage: Any = None
        self._token: Any = None

    # -- values ----------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` for the rest of the block and its hooks."""
        self._values[name] = value

    def get(self, name: str, default: Any = _NOT_SET) -> Any:
        """The value set under ``name`` here, else in an enclosing transaction.

        Raises
        ------
        KeyError
            Nothing was set under ``name`` and no ``default`` was given.
        """
        if name in self._values:
            return self._values[name]
        if self.parent is not None:
            return self.parent.get(name, default)
        if default is _NOT_SET:
            raise KeyError(f"no value was set under {name!r} in this transaction")
        return default

    # -- state -------------------------------------------------------------------
    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def __repr__(self) -> str:
        key = f" {self.key!r}" if self.key else ""
        return f"<Transaction{key} {self.state.value}>"

    # -- the runner's side -------------------------------------------------------------
    def enlist(self, runner: Any, run: Any) -> None:
        """Called by the runner for each task run created inside the block."""
        self._runs.append((runner, run))

    def enlist_map(self, runner: Any, mapped: Any) -> None:
        """Called for a ``.map`` whose width is known only at run time: its runs come later."""
        self._maps.append((runner, mapped))

    # -- the block -----------------------------------------------------------------------
    def __enter__(self) -> Transaction:
        self.parent = get_transaction()
        self.state = TransactionState.ACTIVE
        if self.key is not None and not self.overwrite and self._record_exists():
            self.state = TransactionState.COMMITTED
        self._token = open_transaction.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        open_transaction.reset(self._token)
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.rollback()  # Ctrl-C, SystemExit: roll back what ended, wait for nothing
            return
        try:
            failed = not self._settle() or exc_type is not None
        except BaseException:  # the flow run's deadline passed while waiting
            self.rollback()
            raise
        parent = self.parent
        if failed:
            self.rollback()
            if parent is not None:
                parent.rollback()
        elif parent is not None:
            if self.state is TransactionState.ACTIVE:
                self.state = TransactionState.STAGED
                parent.children.append(self)
        else:
            self.commit()

    def _settle(self) -> bool:
        """Wait for the block's task runs; True when none of them failed."""
        if self._maps:  # the runs of maps that expanded since (some may be here already)
            known = {id(run) for _, run in self._runs}
            for runner, mapped in self._maps:
                for future in mapped._all():
                    if id(future._run) not in known:
                        self._runs.append((runner, future._run))
            self._maps.clear()
        by_runner: dict[int, tuple[Any, list[Any]]] = {}
        for runner, run in self._runs:
            by_runner.setdefault(id(runner), (runner, []))[1].append(run)
        ok = True
        for runner, runs in by_runner.values():
            runner.wait(runs)
            for run in runs:
                state = runner.final_state(run)
                if state is None or state.is_failed() or not state.is_final():
                    ok = False
        return ok

    def _completed(self) -> list[Any]:
        """The tasks of the runs that completed (COMPLETED or CACHED), in creation order."""
        done = []
        for runner, run in self._runs:
            state = runner.final_state(run)
            if state is not None and state.is_completed():
                done.append(run.task)
        return done

    # -- outcomes ------------------------------------------------------------------------
    def commit(self) -> bool:
        """Commit: nested transactions, then each completed run's ``on_commit`` hooks.

        Returns False when the transaction had already ended (committed or
        rolled back); a hook that raises rolls it back.
        """
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            return False
        for child in self.children:
            child.state = TransactionState.ACTIVE
            if not child.commit():
                self.rollback()
                return False
        for task in self._completed():
            for hook in task.options.on_commit:
                if not self._run_hook(hook, "commit"):
                    self.rollback()
                    return False
        if self.key is not None:
            self._write_record()
        self.state = TransactionState.COMMITTED
        return True

    def rollback(self) -> bool:
        """Roll back: the ``on_rollback`` hooks of completed runs, newest first, then children.

        Returns False when the transaction had already ended.
        """
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            return False
        self.state = TransactionState.ROLLED_BACK
        for task in reversed(self._completed()):
            for hook in reversed(task.options.on_rollback):
                self._run_hook(hook, "rollback")
        for child in reversed(self.children):
            child.state = TransactionState.ACTIVE
            child.rollback()
        return True

    def _run_hook(self, hook: Callable[[Any], object], kind: str) -> bool:
        """Call ``hook(self)``; log it (on the flow run's log when in one). False if it raised."""
        log = _logger()
        name = getattr(hook, "__name__", repr(hook))
        log.info("Running %s hook %r", kind, name)
        try:
            hook(self)
        except Exception:
            log.exception("An error was encountered while running %s hook %r", kind, name)
            return False
        log.info("%s hook %r finished running successfully", kind.capitalize(), name)
        return True

    # -- the idempotency record ----------------------------------------------------------
    def _storage_of(self) -> Any:
        if self._storage is None:
            from daskflow.engine.current import current_runner
            from daskflow.results.storage import storage_for

            runner = current_runner()
            self._storage = storage_for(runner.result_storage if runner is not None else None)
        return self._storage

    def _record_name(self) -> tuple[str, str]:
        assert self.key is not None
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:40]
        return f"transaction-{digest}", f"transaction:{self.key}"

    def _record_exists(self) -> bool:
        _, cache_key = self._record_name()
        return self._storage_of().lookup(cache_key) is not None

    def _write_record(self) -> None:
        name, cache_key = self._record_name()
        self._storage_of().write(name, {"transaction": self.key}, cache_key=cache_key)


def _logger() -> Any:
    from daskflow.engine.current import current_runner

    if current_runner() is None:
        return logger
    from daskflow.api.logger import get_run_logger

    return get_run_logger()


def get_transaction() -> Transaction | None:
    """The transaction open in this context (on the client), or None."""
    current = open_transaction.get()
    return current if isinstance(current, Transaction) else None


@contextlib.contextmanager
def transaction(key: str | None = None, *, overwrite: bool = False) -> Iterator[Transaction]:
    """Group the task runs called in the block: a failure rolls back what completed.

    Parameters
    ----------
    key
        Makes the block idempotent: committing records the key in the result
        storage, and :meth:`Transaction.is_committed` says so when a block
        with that key opens again.
    overwrite
        Ignore an existing record of ``key`` (the block runs and commits again).

    Examples
    --------
    >>> from daskflow import flow, task
    >>> from daskflow.transactions import transaction
    >>> @task
    ... def write(x: int) -> int:
    ...     return x
    >>> @write.on_rollback
    ... def undo(txn):
    ...     print("undo", txn.get("what"))
    >>> @flow(cluster="sync")
    ... def pipeline() -> None:
    ...     with transaction() as txn:
    ...         txn.set("what", "the write")
    ...         write(1)
    ...         raise ValueError("quality check failed")
    >>> pipeline(return_state=True).is_failed()
    undo the write
    True
    """
    with Transaction(key, overwrite) as txn:
        yield txn
