"""A Griffe extension for the documentation site: Sphinx roles as code spans.

daskflow's docstrings are numpydoc, read in Python's ``help()`` and in
Jupyter, and name other objects with Sphinx roles (``:func:`task```,
``:class:`~daskflow.states.State```). mkdocstrings renders Markdown, where a
role would show as its raw text, so this extension rewrites each role into a
code span before rendering: ``:func:`~a.b.c``` becomes ```c```, any other
``:role:`target``` becomes ```target```. An RST literal-block marker ``::``
at the end of a line becomes ``:``. The docstrings themselves are not changed.

mkdocs.yml loads it with ``extensions: [docs/griffe_sphinx_roles.py]``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`<]*?)(?:\s*<([^>`]+)>)?`")


def _span(match: re.Match[str]) -> str:
    short, text, target = match.group(1), match.group(2).strip(), match.group(3)
    if target:  # :func:`the task decorator <daskflow.task>`
        return f"{text} (`{target}`)"
    if short:
        text = text.rsplit(".", 1)[-1]
    return f"`{text}`"


def rewrite(text: str) -> str:
    """``text`` with every Sphinx role as a Markdown code span."""
    text = ROLE.sub(_span, text)
    text = re.sub(r"\s+::$", "", text, flags=re.MULTILINE)
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
