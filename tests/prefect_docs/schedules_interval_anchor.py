# page: https://docs.prefect.io/v3/how-to-guides/deployments/create-schedules
# stderr: serving flow my_flow every 10m
# stdout: ^next run at \d\d:\d0:00 in America/Chicago, SCHEDULED$
# stderr: stopped serving my_flow
import os
import signal
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import daskflow
from daskflow import flow
from daskflow.schedules import Interval


@flow
def my_flow():
    print("flowing")


def stop_once_scheduled():
    """Show the run serve scheduled, then stop serving, as Ctrl-C does in a terminal."""
    while not (scheduled := daskflow.runs(flow="my_flow", state="SCHEDULED")):
        time.sleep(0.2)
    when = scheduled[0].scheduled_time.astimezone(ZoneInfo("America/Chicago"))
    print(f"next run at {when:%H:%M:%S} in America/Chicago, {scheduled[0].state.type.value}")
    os.kill(os.getpid(), signal.SIGTERM)


threading.Thread(target=stop_once_scheduled, daemon=True).start()

my_flow.serve(
    name="flowing",
    schedule=Interval(
        timedelta(minutes=10), anchor_date=datetime(2026, 1, 1, 0, 0), timezone="America/Chicago"
    ),
)
