# page: https://docs.prefect.io/v3/how-to-guides/workflows/write-and-run
# stdout: ^0\n1\n2\n3\n4\n5\n6\n7\n8\n9$
# stderr: Flow run 'generator-\w+' - flow run \w+ started
from daskflow import flow


@flow
def generator():
    for i in range(10):  # noqa: UP028 (as Prefect's page writes it)
        yield i


for val in generator():
    print(val)
