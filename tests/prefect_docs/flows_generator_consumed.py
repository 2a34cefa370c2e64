# page: https://docs.prefect.io/v3/concepts/flows
# stdout: ^Generator consumed!\nreturned: \[1, 2, 3\]$
# stdout: ^yielded: <generator object gen at \w+>\nGenerator consumed!\n\[1, 2, 3\]$
from daskflow import flow


def gen():
    yield from [1, 2, 3]
    print("Generator consumed!")


@flow
def f():
    return gen()


# a generator returned from a flow is consumed: its values come back as a list
print(f"returned: {f()}")  # prints 'Generator consumed!'


@flow
def g():
    yield gen()


# a generator yielded from a generator flow is handed over as it is
generator = next(g())
print(f"yielded: {generator}")
print(list(generator))  # prints 'Generator consumed!'
