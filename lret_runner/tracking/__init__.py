"""Tracking: the only package that imports MLflow (lazily, inside functions).

- :mod:`.store`: where the store is, creating it once, a client that waits out SQLite locks;
- :mod:`.vocabulary`: tag names, the batch protocol, the metric registry;
- :mod:`.trackers`: the :class:`Tracker` protocol, :class:`MlflowTracker`, :class:`NullTracker`;
- :mod:`.sessions`: sessions as MLflow experiments;
- :mod:`.queries`: the read side, typed records built from runs.
"""

from lret_runner.tracking.queries import Queries, RunSummary
from lret_runner.tracking.store import default_uri
from lret_runner.tracking.trackers import (
    MlflowTracker,
    NullTracker,
    Tracker,
    make_tracker,
    store_uri,
)

__all__ = [
    "MlflowTracker",
    "NullTracker",
    "Queries",
    "RunSummary",
    "Tracker",
    "default_uri",
    "make_tracker",
    "store_uri",
]
