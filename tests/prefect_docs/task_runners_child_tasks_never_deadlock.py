# page: https://docs.prefect.io/v3/concepts/task-runners
# stdout: ^\[6, 15, 24\]$
from daskflow import flow, task


@task
def child(x: int) -> int:
    return x


@task
def parent(start: int) -> int:
    # a child task submitted from within a task, and waited on with .result():
    # the parent gives its worker thread back while it waits, so even parents
    # filling every thread of the cluster leave room for their children
    children = [child.submit(start + i) for i in range(3)]
    return sum(c.result() for c in children)


@flow
def parents_wait_for_children() -> list[int]:
    return parent.map([1, 4, 7]).result()


print(parents_wait_for_children())
