# page: https://docs.prefect.io/v3/advanced/transactions
# exit: 1
# stdout: ^side-effect.txt exists after the flow: False$
# stderr: Running rollback hook 'del_file'
# stderr: ValueError: Not enough data!
import os

from daskflow import flow, task
from daskflow.transactions import transaction


@task
def write_file(contents: str):
    "Writes to a file."
    with open("side-effect.txt", "w") as f:
        f.write(contents)


@write_file.on_rollback
def del_file(transaction):
    "Deletes file."
    os.unlink("side-effect.txt")


@task
def quality_test():
    "Checks contents of file."
    with open("side-effect.txt") as f:
        data = f.readlines()

    if len(data) < 2:
        raise ValueError("Not enough data!")


@flow
def pipeline(contents: str):
    with transaction():
        write_file(contents)
        quality_test()


try:
    pipeline(contents="hello world")
finally:
    print("side-effect.txt exists after the flow:", os.path.exists("side-effect.txt"))
