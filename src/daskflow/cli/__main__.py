"""``python -m daskflow.cli``: the ``daskflow`` command."""

from daskflow.cli import main

main()
