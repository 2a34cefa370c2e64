# page: https://docs.prefect.io/v3/concepts/states
# exit: 1
# stdout: ^toggle_task\(fail=True\) gave Failed\('I was instructed to fail\.'\)$
# stderr: Finished in state Failed\('\d/\d states failed\.'\)$
# stderr: FailedRunError: I was instructed to fail\.$
from daskflow import flow, task
from daskflow.states import Completed, Failed


@task
def toggle_task(fail: bool):
    if fail:
        return Failed(message="I was instructed to fail.")
    else:
        return Completed(message="I was instructed to succeed.")


@flow
def example():
    # this run will be set to a `Failed` state
    state_one = toggle_task(fail=True)
    print(f"toggle_task(fail=True) gave {state_one}")
    # this run will be set to a `Completed` state
    state_two = toggle_task(fail=False)
    # similarly, the flow run will fail because we return a `Failed` state
    return state_one, state_two


example()
