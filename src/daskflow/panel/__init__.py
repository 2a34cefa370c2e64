"""The daskflow panel: live monitoring of flow runs in Bokeh.

One model (:class:`~daskflow.panel.model.PanelModel`, read from the run
store) and several views (:mod:`daskflow.panel.views`) make one page
(:func:`~daskflow.panel.document.make_document`), served by
``daskflow dashboard`` (:mod:`daskflow.panel.serve`) or at ``/daskflow`` on
the Dask dashboard (:mod:`daskflow.panel.plugin`). Read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daskflow.panel.document import make_document
    from daskflow.panel.model import PanelModel

__all__ = ["PanelModel", "make_document"]


def __getattr__(name: str) -> Any:
    # imported on first use: mounting the panel on the embedded cluster's dashboard
    # (daskflow.panel.plugin) needs neither until a browser opens the page
    if name == "PanelModel":
        from daskflow.panel.model import PanelModel

        return PanelModel
    if name == "make_document":
        from daskflow.panel.document import make_document

        return make_document
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
