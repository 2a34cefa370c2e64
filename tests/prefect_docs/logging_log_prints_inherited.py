# page: https://docs.prefect.io/v3/how-to-guides/workflows/add-logging
# stderr: Flow run 'my_flow-\w+' - we're logging print statements from a flow$
# stderr: Task run 'my_task' - we're logging print statements from a task$
# stdout: ^not logging print statements in this task$
from daskflow import flow, task


@task
def my_task():
    print("we're logging print statements from a task")


@task(log_prints=False)
def my_quiet_task():
    print("not logging print statements in this task")


@flow(log_prints=True)
def my_flow():
    print("we're logging print statements from a flow")
    my_task()
    my_quiet_task()


my_flow()
