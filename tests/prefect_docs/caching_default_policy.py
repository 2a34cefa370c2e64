# page: https://docs.prefect.io/v3/concepts/caching
# stdout: ^first flow run: \['CACHED', 'COMPLETED', 'COMPLETED'\]$
# stdout: ^second flow run: \['CACHED', 'COMPLETED', 'COMPLETED'\]$
# stdout: ^the same call again: Cached
import daskflow
from daskflow import flow, task


@task(persist_result=True)  # caching requires result persistence
def add_one(x: int) -> int:
    return x + 1


@flow
def my_flow():
    add_one(1)
    # the same task with the same inputs within one flow run: cached
    again = add_one(1, return_state=True)
    add_one(2)
    print(f"the same call again: {again}")


for which in ("first", "second"):  # a new flow run runs it again (its id is in the key)
    my_flow()
    run = daskflow.runs(flow="my_flow", limit=1)[0]
    print(f"{which} flow run: {sorted(t.state.type.value for t in run.task_runs)}")
