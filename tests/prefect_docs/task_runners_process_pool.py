# page: https://docs.prefect.io/v3/concepts/task-runners
# stdout: ^elevator stops on floor 1$
# stdout: ^10 floors, in worker processes: True, at most 3 of them: True$
import os
import time

from daskflow import flow, task
from daskflow.futures import wait
from daskflow.task_runners import ProcessPoolTaskRunner


@task
def stop_at_floor(floor):
    print(f"elevator moving to floor {floor}")
    time.sleep(floor / 20)  # Prefect's page sleeps `floor` seconds
    print(f"elevator stops on floor {floor}")
    return os.getpid()


@flow(task_runner=ProcessPoolTaskRunner(max_workers=3))
def elevator():
    floors = []
    for floor in range(10, 0, -1):
        floors.append(stop_at_floor.submit(floor))
    wait(floors)  # wait for the sequence of futures to complete
    return [f.result() for f in floors]


pids = elevator()
print(
    f"{len(pids)} floors, in worker processes: {os.getpid() not in pids}, "
    f"at most 3 of them: {len(set(pids)) <= 3}"
)
