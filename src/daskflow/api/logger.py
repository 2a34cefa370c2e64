"""``get_run_logger()``, where the API has always offered it.

It lives at the engine (:mod:`daskflow.engine.run_logs`), beside the handler
that turns its records into run log events, so engine code that logs against
a run (caching, limits) needs nothing from the API layer.
"""

from daskflow.engine.run_logs import get_run_logger

__all__ = ["get_run_logger"]
