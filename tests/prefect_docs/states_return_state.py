# page: https://docs.prefect.io/v3/concepts/states
# stdout: ^completed: True, result: 2$
# stderr: Finished in state Completed\(\)$
from daskflow import flow, task


@task
def add_one(x):
    return x + 1


@flow
def my_flow():
    result = add_one(1)
    assert isinstance(result, int) and result == 2  # noqa: PT018  (as on the page)

    state = add_one(1, return_state=True)
    assert state.is_completed() is True
    assert state.result() == 2
    print(f"completed: {state.is_completed()}, result: {state.result()}")


my_flow()
