"""Facts about the run this code runs in, as Prefect's ``prefect.runtime`` gives them.

``from daskflow.runtime import flow_run, task_run`` (or ``daskflow.runtime.flow_run``):

- ``flow_run.id``, ``.name``, ``.flow_name``, ``.parameters``,
  ``.scheduled_start_time``, ``.parent_flow_run_id``;
- ``task_run.id``, ``.name``, ``.task_name``, ``.attempt`` (1 on the first
  attempt; ``.run_count`` is the same), ``.tags``, ``.parameters``.

They work in task runs (also on remote workers, and for each element of a
batched or fused chunk) and in flow functions. Outside a run every attribute
is None, and so are ``task_run``'s in a flow function (outside its tasks).
Reading them costs nothing until asked; a task on a worker process reads a
flow run's name, parameters and start time from the facts its flow's process
shipped once per flow run (:mod:`daskflow.engine.flow_facts`).
"""

from daskflow.runtime import flow_run, task_run

__all__ = ["flow_run", "task_run"]
