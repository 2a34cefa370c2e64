"""The daskflow panel: live monitoring of flow runs in Bokeh.

One model (:class:`~daskflow.panel.model.PanelModel`, read from the run
store) and several views (:mod:`daskflow.panel.views`) make one page
(:func:`~daskflow.panel.document.make_document`), served by
``daskflow dashboard`` (:mod:`daskflow.panel.serve`) or at ``/daskflow`` on
the Dask dashboard (:mod:`daskflow.panel.plugin`). Read-only.
"""

from daskflow.panel.document import make_document
from daskflow.panel.model import PanelModel

__all__ = ["PanelModel", "make_document"]
