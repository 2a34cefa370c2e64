"""Limits taken from code, at Prefect 3's module paths.

``from daskflow.concurrency.sync import concurrency, rate_limit`` for plain
code, ``daskflow.concurrency.asyncio`` for ``async`` code. The names are the
limits of :func:`daskflow.concurrency_limit` (and config
``daskflow.concurrency-limits``), shared with task runs tagged with them.
"""
