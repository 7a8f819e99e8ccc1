"""Objects ``mlflow gc`` purged: their rows are gone on purpose, and their chain says so.

``mlflow gc`` deletes a run's (an experiment's) rows permanently; the prov store journals a
tombstone (``run.purged``, ``experiment.purged``) in the same transaction
(:mod:`mlflow_prov.events_artifacts`). A chain that ends in one is a purge, not rows removed
behind MLflow's back: verify checks the chain like any other and does not ask MLflow for
the rows. Rows removed any other way have no tombstone and are still reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlflow_prov.vocabulary import PURGE_KINDS


def purged(events: Sequence[Any]) -> bool:
    """Whether a chain's events (in write order) end with a purge's tombstone."""
    return bool(events) and events[-1].kind in PURGE_KINDS
