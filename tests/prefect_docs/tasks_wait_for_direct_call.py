# page: https://docs.prefect.io/v3/how-to-guides/workflows/run-work-concurrently
# stdout: ^task_c started after task_a and task_b ended: True$
# stdout: ^task_d started after task_c ended: True$
import daskflow
from daskflow import flow, task


@task
def task_a():
    pass


@task
def task_b():
    pass


@task
def task_c():
    pass


@task
def task_d():
    pass


@flow
def my_flow():
    a = task_a.submit()
    b = task_b.submit()
    # Wait for task_a and task_b to complete
    c = task_c.submit(wait_for=[a, b])
    # task_d will wait for task_c to complete
    # Note: If waiting for one task it must still be in a list.
    d = task_d(wait_for=[c])  # noqa: F841  (as on the page)


my_flow()

# what the run history recorded
runs = {r.task_name: r for r in daskflow.runs(flow="my_flow", limit=1)[0].task_runs}
c_after = runs["task_c"].start_time >= max(runs["task_a"].end_time, runs["task_b"].end_time)
print(f"task_c started after task_a and task_b ended: {c_after}")
print(f"task_d started after task_c ended: {runs['task_d'].start_time >= runs['task_c'].end_time}")
