# page: https://docs.prefect.io/v3/concepts/flows
# exit: 1
# stderr: ValueError: I am bad task$
# stderr: Flow run 'always_fails_flow-\w+' - Finished in state Failed\('.*I am bad task.*'\)$
from daskflow import flow, task


@task
def always_fails_task():
    raise ValueError("I am bad task")


@task
def always_succeeds_task():
    return "foo"


@flow
def always_succeeds_flow():
    return "bar"


@flow
def always_fails_flow():
    x = always_fails_task.submit()
    y = always_succeeds_task.submit()
    z = always_succeeds_flow()
    return x, y, z


always_fails_flow()
