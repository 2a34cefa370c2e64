# page: https://docs.prefect.io/v3/get-started/quickstart
# stderr: Flow run 'hello_world-\w+' - Hello, Marvin!$
from daskflow import flow, task


@task
def create_message():
    return "Hello, Marvin!"


@flow(log_prints=True)
def hello_world():
    message = create_message()
    print(message)
    return message


hello_world()
