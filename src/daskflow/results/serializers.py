"""Writing one value to a file and reading it back, by the value's kind.

- a pandas ``DataFrame`` or a pyarrow ``Table`` is written as Parquet with
  pyarrow (columnar, compressed, readable by any Parquet reader);
- anything else is written with cloudpickle (functions, lambdas and classes
  defined in ``__main__`` included).

A format name travels with each stored result so the reader never guesses.
Both formats are signed the same way and checked before they are decoded
(see :mod:`.signing`): the reader hands the bytes it will decode to a check
first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from daskflow.owner_only import private_replacement, write_private
from daskflow.results.signing import on_local_disk, signing_appends

__all__ = ["FORMATS", "dump", "format_for", "load"]

#: A frame this big (bytes in memory) is signed by a thread while it is written.
_SIGN_WHILE_WRITING = 32 << 20

#: format name -> file suffix
FORMATS = {"parquet-pandas": ".parquet", "parquet-arrow": ".parquet", "cloudpickle": ".pkl"}


def format_for(value: Any) -> str:
    """The format a value is written in."""
    module = type(value).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return "parquet-pandas"
    elif module.startswith("pyarrow"):
        import pyarrow as pa

        if isinstance(value, pa.Table):
            return "parquet-arrow"
    return "cloudpickle"


def dump(value: Any, fs: Any, path: str, fmt: str, mac: Any) -> int:
    """Write ``value`` to ``path`` on ``fs`` in ``fmt``; returns the bytes written.

    Every byte written is fed to ``mac`` (see :mod:`.signing`). On a local
    filesystem the file is created readable by its owner only, and appears
    whole or not at all.
    """
    local = on_local_disk(fs)
    if fmt == "cloudpickle":
        import cloudpickle

        data = cloudpickle.dumps(value, protocol=5)
        mac.update(data)
        if local:
            write_private(path, data)
        else:
            with fs.open(path, "wb") as f:
                f.write(data)
        return len(data)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = value if fmt == "parquet-arrow" else pa.Table.from_pandas(value)
    if local:
        # pyarrow's own file: through a Python file object every page becomes a
        # bytes copy, which costs a third more on a 1 GB frame on a Dask worker
        with private_replacement(path) as temporary:
            if table.nbytes < _SIGN_WHILE_WRITING:
                pq.write_table(table, temporary)  # pyarrow truncates it and keeps its mode
                mac.update(pa.memory_map(temporary).read_buffer())  # from the page cache
            else:
                with signing_appends(temporary, mac):
                    pq.write_table(table, temporary)
            return os.path.getsize(temporary)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    buffer = sink.getvalue()
    mac.update(buffer)
    with fs.open(path, "wb") as f:
        f.write(buffer)
    return int(buffer.size)


def load(fs: Any, path: str, fmt: str, check: Callable[[Any], None]) -> Any:
    """Read a value written by :func:`dump`.

    The file is read whole once; ``check(data)`` (which raises to refuse it)
    sees those bytes before anything is unpickled or parsed, and they are
    what is decoded: the file cannot change between the check and the load.
    """
    local = on_local_disk(fs)
    if fmt == "cloudpickle":
        import cloudpickle

        with fs.open(path, "rb") as f:
            data = f.read()
        check(data)
        return cloudpickle.loads(data)
    import pyarrow as pa
    import pyarrow.parquet as pq

    if local:
        buffer = pa.memory_map(path).read_buffer()  # no copy; the mapping outlives a rename
    else:
        with fs.open(path, "rb") as f:
            buffer = pa.py_buffer(f.read())
    check(buffer)
    table = pq.read_table(pa.BufferReader(buffer))
    return table if fmt == "parquet-arrow" else table.to_pandas()
