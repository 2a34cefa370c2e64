# page: https://docs.prefect.io/v3/advanced/transactions
# stdout: ^data.txt holds: 'some data'$
# stderr: Data file has already been written. Exiting early.
# stdout: ^data.txt exists after the second run: False$
import os
import uuid

from daskflow import flow, task
from daskflow.transactions import transaction

KEY = f"download-and-write-data-{uuid.uuid4()}"  # a key of its own for each run of this script


@task
def download_data():
    """Imagine this downloads some data from an API"""
    return "some data"


@task
def write_data(data: str):
    """This writes the data to a file"""
    with open("data.txt", "w") as f:
        f.write(data)


@flow(log_prints=True)
def pipeline():
    with transaction(key=KEY) as txn:
        if txn.is_committed():
            print("Data file has already been written. Exiting early.")
            return
        data = download_data()
        write_data(data)


pipeline()
with open("data.txt") as f:
    print("data.txt holds:", repr(f.read()))
os.unlink("data.txt")
pipeline()  # the transaction committed: the flow exits early
print("data.txt exists after the second run:", os.path.exists("data.txt"))
