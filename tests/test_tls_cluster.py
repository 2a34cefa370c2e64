"""A cluster that speaks TLS: scheduler and worker processes with certificates made here.

``Security.temporary()`` makes a CA and certificates with the ``cryptography``
package; the cluster's processes listen on ``tls://`` only, so a flow reaches
them with the matching ``distributed.Security`` or not at all.
"""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster

import daskflow
from daskflow import flow, task
from daskflow.states import StateType

pytest.importorskip("cryptography")


@task
def where(i: int) -> str:
    from distributed import get_worker

    return get_worker().address


@flow
def spread(n: int = 4) -> list[str]:
    return [f.result() for f in where.map(range(n))]


def test_a_flow_runs_on_a_tls_cluster_given_its_security():
    from distributed.security import Security

    security = Security.temporary()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            protocol="tls://",
            host="127.0.0.1",
            security=security,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster, security=security) as client,
    ):
        assert cluster.scheduler_address.startswith("tls://")
        state = spread.with_options(cluster=client)(return_state=True)

        assert state.type is StateType.COMPLETED
        assert all(a.startswith("tls://127.0.0.1:") for a in state.result())
        [run] = daskflow.runs(flow="spread", limit=1)
        assert run.state.type is StateType.COMPLETED
        assert {t.worker for t in run.task_runs} <= set(state.result())
