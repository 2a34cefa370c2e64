"""Futures of task runs, at Prefect 3's module path (``prefect.futures``)."""

from daskflow.api.futures import MappedFuture, TaskFuture, wait

__all__ = ["MappedFuture", "TaskFuture", "wait"]
