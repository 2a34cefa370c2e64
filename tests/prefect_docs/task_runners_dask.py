# page: https://docs.prefect.io/v3/concepts/task-runners
# stdout: ^12 images in data/, on a cluster of its own: True$
# stdout: ^its cluster closed with the flow run: True$
from pathlib import Path

from distributed import get_client

from daskflow import flow, task
from daskflow.task_runners import DaskTaskRunner  # Prefect: from prefect_dask import DaskTaskRunner

clusters = []


@task
def download_image(year: int, month: int, directory: Path) -> Path:
    # Prefect's page downloads a NOAA image here; this example writes a small file instead
    file_path = directory / f"{year:04d}{month:02d}.png"
    file_path.write_bytes(b"\x89PNG")
    return file_path


@flow(task_runner=DaskTaskRunner(cluster_kwargs={"processes": False}))
def download_nino_34_plumes_from_year(year: int) -> list[Path]:
    clusters.append(get_client().cluster)  # the temporary cluster of this flow run
    # create a directory to hold images
    directory = Path("data")
    directory.mkdir(exist_ok=True)

    # download all images
    file_paths = []
    for month in range(1, 12 + 1):
        file_path = download_image.submit(year, month, directory)
        file_paths.append(file_path)
    return file_paths


paths = download_nino_34_plumes_from_year(2022)
own = clusters[0] is not None and clusters[0].scheduler_address.startswith("inproc://")
print(f"{len(paths)} images in data/, on a cluster of its own: {own}")
print("its cluster closed with the flow run:", clusters[0].status.name == "closed")
