# page: https://docs.prefect.io/v3/how-to-guides/deployments/create-schedules
# stderr: Flow run '[\w-]+' - hi, Marvin!$
# stderr: Flow run '[\w-]+' - hi, Arthur!$
# stderr: serving flow greet every 0.5s with \{'name': 'Marvin'\}; every 0.7s
import os
import signal

from daskflow import flow
from daskflow.schedules import Interval

greeted = set()


@flow(log_prints=True)
def greet(greeting: str = "hello", name: str = "world"):
    print(f"{greeting}, {name}!")
    greeted.add(name)
    if greeted == {"Marvin", "Arthur"}:  # both schedules ran: stop serving, as Ctrl-C does
        os.kill(os.getpid(), signal.SIGTERM)


greet.serve(
    name="flowing",
    parameters={"greeting": "hi"},
    schedules=[
        Interval(0.5, parameters={"name": "Marvin"}),
        Interval(0.7, parameters={"name": "Arthur"}),
    ],
)
