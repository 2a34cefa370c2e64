# page: https://docs.prefect.io/v3/examples/hello-world
# stderr: Flow run 'hello-\w+' - Hello, Marvin!$
# stderr: Flow run 'hello-\w+' - Hello, Zaphod!$
# stderr: Task run 'greet' - tags: \['test'\]$
from daskflow import flow, runtime, tags, task


@task
def greet(name: str) -> str:
    # the tags of the block the flow was called in reach its task runs
    print(f"tags: {sorted(runtime.task_run.tags)}")
    return f"Hello, {name}!"


@flow(log_prints=True)
def hello(name: str = "Marvin") -> None:
    """Log a friendly greeting."""
    print(greet(name))


# run the flow with default parameters
with tags("test"):  # This is a tag that we can use to filter the runs
    hello()  # Logs: "Hello, Marvin!"

    # run the flow with a different input
    hello("Marvin")  # Logs: "Hello, Marvin!"

    # run the flow multiple times for different people
    crew = ["Zaphod", "Trillian", "Ford"]

    for name in crew:
        hello(name)
