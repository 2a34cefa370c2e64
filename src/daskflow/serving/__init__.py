"""Serving flows: schedules, and the process that starts flow runs on them."""

from daskflow.serving.schedules import CronSchedule, IntervalSchedule, schedule_for
from daskflow.serving.serve import serve

__all__ = ["CronSchedule", "IntervalSchedule", "schedule_for", "serve"]
