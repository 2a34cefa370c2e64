"""The ``daskflow`` command line (``daskflow --version``; more commands to come)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from daskflow._version import __version__

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``daskflow`` console script."""
    parser = argparse.ArgumentParser(
        prog="daskflow",
        description="daskflow: workflows in plain Python, run on Dask.",
    )
    parser.add_argument("--version", action="version", version=f"daskflow {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
