"""Fill the ``--help`` blocks of ``docs/cli.md`` with what the CLI prints.

Each block follows a marker line ``<!-- help: runs list -->`` and is a
```` ```text ```` fence; this script runs ``daskflow runs list --help`` (80
columns) and writes its output into the fence. ``tests/test_docs.py`` checks
that the page and the CLI agree::

    python docs/make_cli_page.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "cli.md"

#: The commands whose help the page shows, in its order.
COMMANDS = [
    "",
    "run",
    "runs list",
    "runs show",
    "runs logs",
    "runs retry",
    "runs cancel",
    "artifacts list",
    "artifacts show",
    "serve",
    "deployments list",
    "deployments run",
    "dashboard",
    "task-runs list",
]

BLOCK = re.compile(r"^(<!-- help: (.*?) -->\n```text\n)(.*?)(^```$)", re.MULTILINE | re.DOTALL)


def help_text(command: str) -> str:
    """What ``daskflow COMMAND --help`` prints on an 80-column terminal."""
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "daskflow.cli", *command.split(), "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout


def main() -> None:
    text = PAGE.read_text(encoding="utf-8")
    found = [m.group(2).strip() for m in BLOCK.finditer(text)]
    if sorted(found) != sorted(COMMANDS):
        sys.exit(f"docs/cli.md has help blocks for {found}, expected {COMMANDS}")
    text = BLOCK.sub(lambda m: m.group(1) + help_text(m.group(2).strip()) + m.group(4), text)
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
