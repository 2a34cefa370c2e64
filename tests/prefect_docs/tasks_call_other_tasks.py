# page: https://docs.prefect.io/v3/concepts/tasks
# stdout: ^total: 2 \+ 12 \+ \[2, 3, 4\] = 23$
# stderr: Task run 'add_one' - adding one to 11$
# stderr: Task run 'add_one-2' - adding one to 3$
from daskflow import flow, task


@task(log_prints=True)
def add_one(x: int) -> int:
    print(f"adding one to {x}")
    return x + 1


@task
def add_many(x: int) -> int:
    # "Like flows, tasks are free to call other tasks": call, submit and map
    direct = add_one(x)
    submitted = add_one.submit(x + 10).result()
    mapped = add_one.map([x, x + 1, x + 2]).result()
    print(f"total: {direct} + {submitted} + {mapped} = {direct + submitted + sum(mapped)}")
    return direct + submitted + sum(mapped)


@flow
def nested_tasks() -> int:
    return add_many(1)


nested_tasks()
