"""Describers for artifact manifests and ``mlflow gc``'s permanent deletions.

A run's end (a LoggedModel's finalization) is described as MLflow's event preceded, where
the store could read the artifact root, by the manifest :mod:`mlflow_prov.artifact_records`
read before the write began: both commit in the write's transaction. The manifest comes
first so that the status change stays the chain's last event: a tail cut together with its
head row then still leaves MLflow's run row disagreeing with the journal.

``mlflow gc`` deletes rows through ``_hard_delete_run``, ``_hard_delete_experiment`` and
``_hard_delete_logged_model`` (docs/internals.md, "sqlite and SQL details"). Each leaves a
tombstone as the last event of the object's chain, in the transaction that deletes the rows,
so ``verify`` can tell a purge from rows removed behind MLflow's back, and the chain itself
stays whole and verifiable.

:mod:`mlflow_prov.events` imports this module for its hook table, so this one reaches back
into it only inside the functions (no import cycle at load time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlflow_prov.artifact_records import pending_manifest
from mlflow_prov.vocabulary import (
    EventKind,
    PurgedPayload,
    experiment_chain,
    logged_model_chain,
    run_chain,
)

if TYPE_CHECKING:
    from mlflow_prov.events import Described, WriteContext


def run_updated_and_artifacts(ctx: WriteContext, run_id: str, run_status: int | None,
                              end_time: int | None, run_name: str | None) -> list[Described]:
    """``update_run_info``: the manifest when the run ended, then the run's update."""
    from mlflow_prov.events import run_updated

    event = run_updated(ctx, run_id, run_status, end_time, run_name)
    return [*_manifest(event, EventKind.RUN_ARTIFACTS_RECORDED), event]


def logged_model_finalized_and_artifacts(ctx: WriteContext, model_id: str,
                                         status: Any) -> list[Described]:
    """``finalize_logged_model``: the model's files' manifest, then its status."""
    from mlflow_prov.events import logged_model_finalized

    event = logged_model_finalized(ctx, model_id, status)
    return [*_manifest(event, EventKind.LOGGED_MODEL_ARTIFACTS_RECORDED), event]


def _manifest(event: Described, kind: str) -> list[Described]:
    found = pending_manifest(event.chain)
    if found is None:
        return []
    return [_described(event.chain, kind, dict(found), event.experiment_id,
                             event.run_id)]


def _described(*fields: Any) -> Described:
    from mlflow_prov.events import Described

    return Described(*fields)


def _purged(method: str) -> dict[str, Any]:
    payload: PurgedPayload = {"purged_by": method}
    return dict(payload)


def run_purged(ctx: WriteContext, run_id: str) -> Described:
    """The run's experiment comes from the run row MLflow loaded before its bulk delete (it
    stays in the session: MLflow deletes without synchronising it)."""
    return _described(run_chain(run_id), EventKind.RUN_PURGED,
                      _purged("_hard_delete_run"), ctx.experiment_of_run(run_id), run_id)


def experiment_purged(ctx: WriteContext, experiment_id: str) -> Described:
    experiment_id = str(experiment_id)
    return _described(experiment_chain(experiment_id), EventKind.EXPERIMENT_PURGED,
                      _purged("_hard_delete_experiment"), experiment_id)


def logged_model_purged(ctx: WriteContext, model_id: str) -> Described:
    """The model's experiment comes from the row MLflow deleted through the session."""
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModel

    deleted = next((obj for obj in ctx.deleted_objects
                    if isinstance(obj, SqlLoggedModel) and obj.model_id == model_id), None)
    return _described(logged_model_chain(model_id), EventKind.LOGGED_MODEL_PURGED,
                      {"model_id": model_id, **_purged("_hard_delete_logged_model")},
                      None if deleted is None else str(deleted.experiment_id))
