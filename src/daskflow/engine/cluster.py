"""Where flows run: resolving the ``cluster`` option to a Dask client.

In order, the first that applies:

1. ``"sync"``: no Dask at all; everything in the calling thread.
2. A ``distributed.Client``: used as it is.
3. A cluster object (anything with ``scheduler_address``: ``LocalCluster``,
   dask-jobqueue, dask-kubernetes): a client for it, made once and reused.
4. An address ``"tcp://host:8786"``: a client for it, made once and reused;
   unreachable within ``daskflow.connect-timeout`` is a
   :class:`~daskflow.errors.ClusterConnectionError` naming the address.
5. ``"local"`` or nothing: the active client if the user made one
   (``distributed.default_client()``), else the embedded ``LocalCluster``,
   started on first use with ``daskflow.local-cluster`` options, reused for the
   life of the process and closed at exit. Every socket it opens (scheduler,
   nannies, workers, the dashboard with the panel) listens on 127.0.0.1
   unless those options name an address (``host``, ``dashboard_address``).
   Its worker processes do not run the ``__main__`` script again
   (:mod:`daskflow.engine.script_main`), so a script that calls a flow with
   no ``if __name__ == "__main__":`` guard works as written.

daskflow closes only what it created.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from daskflow import config
from daskflow.engine import script_main
from daskflow.errors import ClusterConnectionError, ConfigurationError

__all__ = ["SYNC", "loopback_defaults", "pool_client", "resolve_client"]

logger = logging.getLogger("daskflow.cluster")

SYNC = "sync"

_lock = threading.RLock()
_clients: dict[Any, Any] = {}
_embedded: dict[str, Any] = {}
_pools: dict[tuple[int, bool], tuple[Any, Any]] = {}  # (workers, processes) -> cluster, client


def resolve_client(cluster: Any) -> Any:
    """The ``distributed.Client`` flows should use, or :data:`SYNC`.

    Parameters
    ----------
    cluster
        The flow's ``cluster`` option (None: the ``daskflow.cluster`` config).
    """
    if cluster is None:
        cluster = config.get("cluster", "local")
    if isinstance(cluster, Mapping):  # flow runs make theirs (FlowOptions.cluster_for_run)
        raise ConfigurationError(
            "cluster",
            dict(cluster),
            "'local', 'sync' or an address for a task run outside a flow: a {class, kwargs, "
            "adapt} mapping makes a cluster for each flow run, so call the task in a flow",
        )
    if isinstance(cluster, str):
        name = cluster.strip()
        if name.lower() == SYNC:
            return SYNC
        if name.lower() in ("local", ""):
            return _active_client() or _embedded_client()
        if "://" in name or ":" in name:
            return _client_for_address(name)
        raise ConfigurationError(
            "cluster",
            cluster,
            "'local', 'sync', an address like 'tcp://host:8786', "
            "a distributed.Client or a Dask cluster object",
        )
    from distributed import Client

    if isinstance(cluster, Client):
        return cluster
    if hasattr(cluster, "scheduler_address"):
        with _lock:
            client = _clients.get(id(cluster))
            if client is None or client.status in ("closing", "closed"):
                client = _clients[id(cluster)] = Client(cluster, set_as_default=False)
            return client
    raise ConfigurationError(
        "cluster", cluster, "'local', 'sync', an address, a distributed.Client or a cluster object"
    )


def _active_client() -> Any:
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return None
    return client if client.status == "running" else None


def _client_for_address(address: str) -> Any:
    from distributed import Client

    from daskflow.engine import quiet

    timeout = config.get_seconds("connect-timeout")
    with _lock:
        client = _clients.get(address)
        if client is not None and client.status == "running":
            return client
        if client is not None:  # its scheduler went away: stop its reconnect attempts
            with contextlib.suppress(Exception):
                client.close()
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterConnectionError(address, timeout, exc) from None
        # when that cluster closes before this process ends (the flow ran), the client
        # would log its failed reconnect attempts: nothing the user needs to read
        quiet.quiet_lost_scheduler(client)
        _clients[address] = client
        return client


def _embedded_client() -> Any:
    with _lock:
        client = _embedded.get("client")
        if client is not None and client.status == "running":
            return client
        from distributed import Client, LocalCluster

        from daskflow.engine import quiet, warm_worker

        script_main.install()  # its worker processes do not run the user's script again
        options = loopback_defaults(dict(config.get("local-cluster") or {}))
        # Ctrl-C reaches the workers too, and this process closes them: each worker starts
        # with the plugin that makes them ignore it (no round trip to register it), and
        # with the one that imports what runs task runs while the flow starts
        options["plugins"] = {
            *options.get("plugins", ()),
            quiet.QuietWorker(),
            warm_worker.WarmWorker(),
        }
        cluster = LocalCluster(**options)
        client = Client(cluster, set_as_default=False)
        _embedded.update(cluster=cluster, client=client)
        # registered now, after distributed's own exit handler: ours runs first (atexit
        # runs the last registered first), so the cluster closes quietly (close_embedded)
        atexit.register(close_embedded)
        logger.info("daskflow: started a local Dask cluster, dashboard at %s", _link(client))
        return client


def pool_client(workers: int, processes: bool) -> Any:
    """A client of a local cluster of ``workers`` threads or processes, made once.

    What ``ThreadPoolTaskRunner(max_workers=N)`` (one in-process worker of N
    threads) and ``ProcessPoolTaskRunner(max_workers=N)`` (N worker
    processes of one thread) run on (:mod:`daskflow.task_runners`): started on
    first use, reused for the life of the process by flows asking for the
    same, closed with the embedded cluster. Its sockets listen on 127.0.0.1,
    and worker processes start as the embedded cluster's do (no guard-less
    script run again, Ctrl-C left to this process).
    """
    with _lock:
        found = _pools.get((workers, processes))
        if found is not None and found[1].status == "running":
            return found[1]
        from distributed import Client, LocalCluster

        from daskflow.engine import quiet, warm_worker

        if processes:
            script_main.install()
            options = loopback_defaults({"n_workers": workers, "threads_per_worker": 1})
            options["plugins"] = {quiet.QuietWorker(), warm_worker.WarmWorker()}
        else:
            options = loopback_defaults(
                {"n_workers": 1, "threads_per_worker": workers, "processes": False}
            )
        cluster = LocalCluster(**options)
        client = Client(cluster, set_as_default=False)
        _pools[(workers, processes)] = (cluster, client)
        # after distributed's own exit handler for this cluster, so ours runs first and
        # closes it quietly (as for the embedded cluster)
        atexit.register(close_embedded)
        return client


def loopback_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``daskflow.local-cluster`` options with every socket on 127.0.0.1 unless set.

    ``LocalCluster`` already binds the scheduler, nannies and workers to
    127.0.0.1 when given no ``host`` or ``interface``, but its dashboard
    defaults to ``":8787"`` (all interfaces; here 127.0.0.1, on 8787 or,
    when another dashboard holds it, any free port, without Dask's warning
    about it), and in-process workers
    (``processes=False``) open their HTTP server (``/metrics``, ``/health``)
    on all interfaces. Addresses the user configured are kept as given.
    """
    options = dict(options)
    # Dask's port, or any free one when it is taken (distributed would warn and do that)
    options.setdefault("dashboard_address", f"127.0.0.1:{_free_or_any(8787)}")
    in_process = options.get("processes") is False
    if in_process and not {"host", "interface", "worker_dashboard_address"} & options.keys():
        # inproc workers have no host to bind; this also serves their (small) pages
        options["worker_dashboard_address"] = "127.0.0.1:0"
    return options


def _free_or_any(port: int) -> int:
    """``port`` if nothing listens on it on 127.0.0.1, else 0 (any free port)."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _link(client: Any) -> str:
    from daskflow.panel.plugin import dashboard_link  # where an in-process one answers

    return dashboard_link(client)


def close_embedded() -> None:
    """Close the embedded cluster if daskflow started one (also runs at exit)."""
    with _lock:
        client = _embedded.pop("client", None)
        cluster = _embedded.pop("cluster", None)
        others = list(_clients.values())
        _clients.clear()
        pools = list(_pools.values())
        _pools.clear()
    if not others and not pools and client is None and cluster is None:
        return
    from daskflow.engine import quiet

    at_exit = not threading.main_thread().is_alive()  # Python is running atexit callbacks
    # At exit, Ctrl-C does nothing more: this only closes what daskflow made, and
    # interrupted it would print "Exception ignored in atexit callback" and a traceback.
    # The client goes before its cluster: it releases the results (and scattered
    # arguments) it still holds, and the scheduler's warning that removing a worker
    # lost some is not shown while the cluster closes: they are dropped on purpose; so
    # is a message to the workers still on its way (a cancellation told to them), whose
    # failure to reach a closing worker the scheduler logs as an error.
    # A task of a cancelled flow run may still run in a worker thread (Python cannot
    # stop it): its worker does not close within the nanny's timeout and is killed,
    # as it should be, so the nanny's warning about that is not shown either.
    with (
        quiet.interrupts_ignored() if at_exit else contextlib.nullcontext(),
        quiet.dropping("distributed.scheduler", "Removing worker", "broadcast to"),
        quiet.dropping("distributed.nanny", "Worker process still alive after"),
    ):
        for client_of in others:
            with contextlib.suppress(Exception):  # already gone at interpreter exit
                client_of.close()
        for pool_cluster, client_of_pool in pools:
            with contextlib.suppress(Exception):
                client_of_pool.close()
                pool_cluster.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


atexit.register(close_embedded)  # clients made for addresses and cluster objects too
