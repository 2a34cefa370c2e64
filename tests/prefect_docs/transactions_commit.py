# page: https://docs.prefect.io/v3/advanced/transactions
# stdout: ^committing a record now using the task's cache key!$
# stdout: ^side-effect.txt holds: 'hello\\nworld'$
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


@write_file.on_commit
def confirmation(transaction):
    print("committing a record now using the task's cache key!")


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


pipeline(contents="hello\nworld")
with open("side-effect.txt") as f:
    print("side-effect.txt holds:", repr(f.read()))
