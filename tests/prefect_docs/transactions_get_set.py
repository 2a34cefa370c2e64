# page: https://docs.prefect.io/v3/advanced/transactions
# exit: 1
# stdout: ^data.txt exists after the flow: False$
# stderr: Running rollback hook 'del_file'
# stderr: ValueError: Not enough data!
import os

from daskflow import flow, task
from daskflow.transactions import transaction


@task
def write_file(filename: str, contents: str):
    "Writes to a file."
    with open(filename, "w") as f:
        f.write(contents)


@write_file.on_rollback
def del_file(txn):
    "Deletes file."
    os.unlink(txn.get("filename"))


@task
def quality_test(filename):
    "Checks contents of file."
    with open(filename) as f:
        data = f.readlines()

    if len(data) < 2:
        raise ValueError("Not enough data!")


@flow
def pipeline(filename: str, contents: str):
    with transaction() as txn:
        txn.set("filename", filename)
        write_file(filename, contents)
        quality_test(filename)


try:
    pipeline(filename="data.txt", contents="hello world")
finally:
    print("data.txt exists after the flow:", os.path.exists("data.txt"))
