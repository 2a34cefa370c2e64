"""Prefect's task runners, accepted for migration: each says where a flow's tasks run.

daskflow's own way is ``@flow(cluster=...)``. A Prefect flow written with
``@flow(task_runner=...)`` runs unchanged, its task runner mapped onto a
cluster:

- :class:`ThreadPoolTaskRunner` (``max_workers=N``), and Prefect 2's
  :class:`ConcurrentTaskRunner`: an in-process Dask cluster of N threads,
  started on first use, reused for the life of the process by flows asking
  for the same N, and closed at exit;
- :class:`ProcessPoolTaskRunner` (``max_workers=N``): a local Dask cluster
  of N worker processes of one thread each, made once per process likewise;
- :class:`SequentialTaskRunner` (Prefect 2): ``cluster="sync"``;
- :class:`DaskTaskRunner` (prefect-dask's, here in ``daskflow.task_runners``):
  ``cluster=`` a cluster object, ``address=`` a scheduler address, or
  ``cluster_class=`` (a class or a dotted name) with ``cluster_kwargs``: a
  cluster made for each flow run and closed when it ends, as prefect-dask
  does, scaled with ``cluster.adapt(**adapt_kwargs)`` when those are given.
  With none of these it is the default cluster (``"local"``).

Each runner's :meth:`TaskRunner.cluster_for_run` is entered once per flow
run, before anything runs; nothing here is on a task run's path.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from daskflow.errors import ConfigurationError

__all__ = [
    "ConcurrentTaskRunner",
    "DaskTaskRunner",
    "ProcessPoolTaskRunner",
    "SequentialTaskRunner",
    "TaskRunner",
    "ThreadPoolTaskRunner",
]


class TaskRunner:
    """What ``@flow(task_runner=...)`` takes: a recipe for the flow run's cluster."""

    @contextlib.contextmanager
    def cluster_for_run(self) -> Iterator[Any]:
        """For one flow run: a value the ``cluster`` option takes, valid until the block ends."""
        yield "local"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SequentialTaskRunner(TaskRunner):
    """Prefect 2's sequential runner: every task in the flow's thread (``cluster="sync"``)."""

    @contextlib.contextmanager
    def cluster_for_run(self) -> Iterator[Any]:
        yield "sync"


class ThreadPoolTaskRunner(TaskRunner):
    """Tasks on ``max_workers`` threads of an in-process Dask cluster.

    Parameters
    ----------
    max_workers
        How many task runs at a time (default: ``min(32, CPUs + 4)``, as
        Python's ``ThreadPoolExecutor``).

    Examples
    --------
    >>> from daskflow import flow
    >>> @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    ... def pair() -> int:
    ...     return 2
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigurationError("max_workers", max_workers, "a whole number >= 1")
        self.max_workers = max_workers

    @contextlib.contextmanager
    def cluster_for_run(self) -> Iterator[Any]:
        from daskflow.engine.cluster import pool_client

        yield pool_client(self.max_workers, processes=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers})"


class ConcurrentTaskRunner(ThreadPoolTaskRunner):
    """Prefect 2's name for :class:`ThreadPoolTaskRunner`."""


class ProcessPoolTaskRunner(ThreadPoolTaskRunner):
    """Tasks on ``max_workers`` processes of a local Dask cluster (one thread each).

    Parameters
    ----------
    max_workers
        How many worker processes (default: the number of CPUs).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers if max_workers is not None else os.cpu_count() or 1)

    @contextlib.contextmanager
    def cluster_for_run(self) -> Iterator[Any]:
        from daskflow.engine.cluster import pool_client

        yield pool_client(self.max_workers, processes=True)


class DaskTaskRunner(TaskRunner):
    """prefect-dask's task runner: a Dask cluster given, reached, or made per flow run.

    Parameters
    ----------
    cluster
        A running cluster object (``LocalCluster``, dask-jobqueue, ...).
    address
        The address of a running scheduler, e.g. ``"tcp://host:8786"``.
    cluster_class
        A cluster class, or its dotted name (``"dask_jobqueue.SLURMCluster"``):
        one is made for each flow run with ``cluster_kwargs`` and closed
        when the run ends.
    cluster_kwargs
        Arguments of ``cluster_class``.
    adapt_kwargs
        Arguments of ``cluster.adapt(...)`` for a cluster made here
        (``{"minimum": 1, "maximum": 10}``); without them it does not adapt.
    client_kwargs
        Arguments of the ``distributed.Client`` made for a cluster made here
        or an address.

    Examples
    --------
    >>> runner = DaskTaskRunner(
    ...     cluster_class="distributed.LocalCluster",
    ...     cluster_kwargs={"n_workers": 1, "processes": False},
    ...     adapt_kwargs={"minimum": 1, "maximum": 4},
    ... )
    """

    def __init__(
        self,
        cluster: Any = None,
        address: str | None = None,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if address is not None and (cluster is not None or cluster_class or cluster_kwargs):
            raise ConfigurationError(
                "DaskTaskRunner(address=...)",
                address,
                "an address alone: not together with cluster, cluster_class or cluster_kwargs",
            )
        if cluster is not None and (cluster_class or cluster_kwargs):
            raise ConfigurationError(
                "DaskTaskRunner(cluster=...)",
                cluster,
                "a cluster object alone: not together with cluster_class or cluster_kwargs",
            )
        client_kwargs = dict(client_kwargs or {})
        if "asynchronous" in client_kwargs:
            raise ConfigurationError(
                "client_kwargs", client_kwargs, "Client arguments without 'asynchronous'"
            )
        self.cluster = cluster
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.client_kwargs = client_kwargs
        self._resolved = _resolve_class(cluster_class) if cluster_class is not None else None

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> DaskTaskRunner:
        """The runner a ``daskflow.cluster`` mapping names (SPEC §3).

        ``{"class": "dask_jobqueue.SLURMCluster", "kwargs": {...}, "adapt":
        {"minimum": 0, "maximum": 50}}``; ``class`` defaults to
        ``distributed.LocalCluster``, and ``client`` holds ``Client`` arguments.

        Raises
        ------
        ConfigurationError
            A key other than these four.

        Examples
        --------
        >>> DaskTaskRunner.from_mapping({"kwargs": {"n_workers": 2}, "adapt": {"maximum": 4}})
        DaskTaskRunner(cluster_class='distributed.LocalCluster', cluster_kwargs={'n_workers': 2}, \
adapt_kwargs={'maximum': 4})
        """
        unknown = set(mapping) - {"class", "kwargs", "adapt", "client"}
        if unknown:
            raise ConfigurationError(
                "cluster",
                dict(mapping),
                "a mapping of 'class' (a cluster class or its dotted name), 'kwargs', 'adapt' "
                f"and 'client', not {', '.join(map(repr, sorted(unknown)))}",
            )
        return cls(
            cluster_class=mapping.get("class") or "distributed.LocalCluster",
            cluster_kwargs=dict(mapping.get("kwargs") or {}),
            adapt_kwargs=dict(mapping.get("adapt") or {}),
            client_kwargs=dict(mapping.get("client") or {}),
        )

    @contextlib.contextmanager
    def cluster_for_run(self) -> Iterator[Any]:
        if self.cluster is not None:
            yield self.cluster
        elif self.address is not None:
            if not self.client_kwargs:
                yield self.address  # a client made once per address and reused
                return
            with _client(self.address, self.client_kwargs) as client:
                yield client
        elif self._resolved is not None or self.cluster_kwargs or self.adapt_kwargs:
            yield from self._temporary_cluster()
        else:
            yield "local"

    def _temporary_cluster(self) -> Iterator[Any]:
        """A cluster for one flow run, closed (client first) when it ends."""
        from distributed import LocalCluster

        from daskflow.engine import script_main
        from daskflow.engine.cluster import loopback_defaults

        script_main.install()  # its worker processes do not run a guard-less script again
        cluster_class = self._resolved if self._resolved is not None else LocalCluster
        kwargs = self.cluster_kwargs
        if isinstance(cluster_class, type) and issubclass(cluster_class, LocalCluster):
            kwargs = loopback_defaults(kwargs)  # its sockets on 127.0.0.1, as the embedded one's
        with contextlib.ExitStack() as stack:
            try:
                cluster = cluster_class(**kwargs)
            except TypeError as exc:
                raise ConfigurationError(
                    "cluster_kwargs", self.cluster_kwargs, f"arguments of {cluster_class} ({exc})"
                ) from None
            stack.callback(_close_quietly, cluster)
            if self.adapt_kwargs:
                cluster.adapt(**self.adapt_kwargs)
            yield stack.enter_context(_client(cluster, self.client_kwargs))

    def __repr__(self) -> str:
        given = {
            "cluster": self.cluster,
            "address": self.address,
            "cluster_class": self.cluster_class,
            "cluster_kwargs": self.cluster_kwargs or None,
            "adapt_kwargs": self.adapt_kwargs or None,
        }
        shown = ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None)
        return f"DaskTaskRunner({shown})"


def _resolve_class(cluster_class: Any) -> Any:
    """The class a ``cluster_class`` names: a class (or factory) as it is, or a dotted name."""
    if callable(cluster_class):
        return cluster_class
    expected = "a cluster class or its dotted name, like 'dask_jobqueue.SLURMCluster'"
    if not isinstance(cluster_class, str) or "." not in cluster_class:
        raise ConfigurationError("cluster_class", cluster_class, expected)
    module_name, _, name = cluster_class.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError("cluster_class", cluster_class, f"{expected} ({exc})") from None
    if not callable(found):
        raise ConfigurationError("cluster_class", cluster_class, expected)
    return found


@contextlib.contextmanager
def _client(target: Any, client_kwargs: dict[str, Any]) -> Iterator[Any]:
    from distributed import Client

    client = Client(target, **{"set_as_default": False, **client_kwargs})
    try:
        yield client
    finally:
        client.close()


def _close_quietly(cluster: Any) -> None:
    from daskflow.engine import quiet

    # its workers go with it, and results the client released go with them: expected
    with quiet.dropping("distributed.scheduler", "Removing worker", "broadcast to"):
        cluster.close()
