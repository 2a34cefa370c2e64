# page: https://docs.prefect.io/v3/concepts/states
# stdout: ^the task run failed: True$
# stderr: Finished in state Completed\(\)$
from daskflow import flow, task


@task
def add_one(x):
    return x + 1


@flow
def my_flow():
    # avoided raising an exception via `return_state=True`
    state = add_one("1", return_state=True)
    assert state.is_failed()
    print(f"the task run failed: {state.is_failed()}")

    # the flow function returns successfully!
    return


my_flow()
