"""The selected flow run's artifacts, as the panel reads them from the run store.

A run's artifacts (:mod:`daskflow.artifacts`) are shown as the CLI lists
them: the newest version of each key, and every artifact without a key (it
is only shown with its run), newest first, at most :data:`ARTIFACTS_SHOWN`.
Two bounded reads on the ``(flow_run_id, created)`` index: the newest of
each key (a window over the run's artifacts) and the run's newest artifacts,
from which the keyless ones are kept. They are read on every refresh while
the run goes (a progress artifact changes in place), and once after it
settled, like the rest of the run page (:mod:`daskflow.panel.model`).
"""

from __future__ import annotations

from daskflow.history.records import Artifact
from daskflow.panel.model import SETTLED_AFTER, PanelModel
from daskflow.store.base import ArtifactRow, RunStore

__all__ = ["ARTIFACTS_SHOWN", "RunArtifacts", "read_run_artifacts"]

#: Artifacts shown on a run's page, at most (the newest).
ARTIFACTS_SHOWN = 50


def read_run_artifacts(
    store: RunStore, flow_run_id: str, limit: int = ARTIFACTS_SHOWN
) -> tuple[list[Artifact], bool]:
    """A flow run's newest artifact of each key and its keyless ones, newest first.

    Returns
    -------
    (list of Artifact, bool)
        At most ``limit`` artifacts, and whether the run has more to show.
    """
    keyed = store.list_artifacts(flow_run_id=flow_run_id, latest=True, limit=limit + 1)
    newest = store.list_artifacts(flow_run_id=flow_run_id, limit=limit + 1)
    keyless = [row for row in newest if row.key is None]
    rows: list[ArtifactRow] = sorted(
        [*keyed, *keyless], key=lambda row: (row.created, row.id), reverse=True
    )
    more = len(rows) > limit or (len(newest) > limit and len(keyless) > 0)
    return [Artifact._from_row(row) for row in rows[:limit]], more


class RunArtifacts:
    """The artifacts of the panel model's selected run, kept up to date by :meth:`refresh`.

    Parameters
    ----------
    model
        The panel's model: its store, its selected ``run`` and its clock.

    Attributes
    ----------
    artifacts : list of Artifact
        What the artifacts tab shows, newest first.
    more : bool
        Whether the run has artifacts beyond those.
    """

    def __init__(self, model: PanelModel) -> None:
        self.model = model
        self.artifacts: list[Artifact] = []
        self.more = False
        self._of: str | None = None
        self._settled = False

    def refresh(self) -> None:
        """Read the selected run's artifacts (store reads: may run in a thread)."""
        run = self.model.run
        if run is None or run.id != self._of:
            self._of, self._settled = (None if run is None else run.id), False
            self.artifacts, self.more = [], False
        if run is None or self._settled:
            return
        settled = run.end_time is not None and self.model.clock() > run.end_time + SETTLED_AFTER
        self.artifacts, self.more = read_run_artifacts(self.model.store, run.id)
        self._settled = settled
