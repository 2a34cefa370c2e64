# page: https://docs.prefect.io/v3/concepts/flows
# stdout: ^returned: None$
# stderr: Finished in state Completed\('I am happy with this result'\)$
from daskflow import flow, task
from daskflow.states import Completed, Failed


@task
def always_fails_task():
    raise ValueError("I fail successfully")


@task
def always_succeeds_task():
    print("I'm fail safe!")
    return "success"


@flow
def always_succeeds_flow():
    x = always_fails_task.submit()  # noqa: F841  (as on the page: never looked at)
    y = always_succeeds_task.submit()
    if y.result() == "success":
        return Completed(message="I am happy with this result")
    else:
        return Failed(message="How did this happen!?")


print(f"returned: {always_succeeds_flow()}")
