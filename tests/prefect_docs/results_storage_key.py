# page: https://docs.prefect.io/v3/advanced/results
# stdout: ^stored: \['hello-bar\.pickle', 'hello-foo\.pickle', 'hello-world\.pickle'\]$
# stdout: ^second flow run: \['CACHED', 'CACHED', 'CACHED'\]$
import os

import daskflow
from daskflow import flow, task


@task(result_storage_key="hello-{parameters[name]}.pickle")
def hello_world(name: str = "world"):
    return f"hello {name}"


@flow
def my_flow():
    hello_world()
    hello_world(name="foo")
    hello_world(name="bar")


my_flow()
stored = sorted(f for f in os.listdir(os.environ["DASKFLOW_RESULTS"]) if f.startswith("hello-"))
print(f"stored: {stored}")

# "If a result exists at a given storage key in the storage location, the task will
# load it without running."
my_flow()
run = daskflow.runs(flow="my_flow", limit=1)[0]
print(f"second flow run: {sorted(t.state.type.value for t in run.task_runs)}")
