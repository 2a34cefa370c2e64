# page: https://docs.prefect.io/v3/concepts/task-runners
# stdout: ^elevator moving to floor 10$
# stdout: ^elevator stops on floor 1$
# stdout: ^10 floors, on 3 threads$
import time

from daskflow import flow, task
from daskflow.futures import wait
from daskflow.task_runners import ThreadPoolTaskRunner


@task
def stop_at_floor(floor):
    print(f"elevator moving to floor {floor}")
    time.sleep(floor / 20)  # Prefect's page sleeps `floor` seconds
    print(f"elevator stops on floor {floor}")
    from distributed import get_worker

    return get_worker().state.nthreads


@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def elevator():
    floors = []
    for floor in range(10, 0, -1):
        floors.append(stop_at_floor.submit(floor))
    wait(floors)  # wait for the sequence of futures to complete
    return [f.result() for f in floors]


threads = elevator()
print(f"{len(threads)} floors, on {threads[0]} threads")
