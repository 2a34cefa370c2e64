"""Run loggers, at Prefect 3's module path (``prefect.logging``)."""

from daskflow.api.logger import get_run_logger

__all__ = ["get_run_logger"]
