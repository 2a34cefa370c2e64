# page: https://docs.prefect.io/v3/concepts/states
# exit: 1
# stderr: Finished in state Failed\('TypeError: can only concatenate str \(not "int"\) to str'\)$
# stderr: TypeError: can only concatenate str \(not "int"\) to str$
from daskflow import flow, task


@task
def add_one(x):
    return x + 1


@flow
def my_flow():
    state = add_one("1", return_state=True)
    # If `state` were returned from the flow function, the run would be marked as `FAILED`
    return state


my_flow()
