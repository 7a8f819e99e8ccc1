"""What each MLflow write means, as a journal event: one small describer per write method.

A describer receives a :class:`WriteContext` and the write method's own arguments, and returns
the event to append (or ``None`` when the call wrote nothing worth an event; or a list, when
one MLflow write changes several things, as deleting an experiment deletes its runs). Describers run
inside the write's transaction, just before it commits, so they can see rows MLflow just
created (a new run's id, an experiment's autoincremented id) and must not open sessions of
their own. The values a write overwrites (a tag's earlier value, a run's earlier status), what
MLflow itself forgets, come from the rows MLflow loaded in the same session to write them
(:meth:`WriteContext.before`), never from a query of the journal's own.

:data:`TRACKING_HOOKS` and :data:`REGISTRY_HOOKS` map store method names to hooks. Some
public MLflow methods are journaled through the private helper that owns their transaction
(:data:`JOURNALED_THROUGH`): ``log_batch`` is not one transaction in MLflow but up to four,
and each gets its own event, in its own transaction.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate

import sqlalchemy as sa
from mlflow.entities import RunStatus

if TYPE_CHECKING:
    from mlflow.entities import (
        DatasetInput,
        ExperimentTag,
        LoggedModelInput,
        LoggedModelOutput,
        LoggedModelParameter,
        LoggedModelTag,
        Metric,
        Param,
        RunTag,
    )
    from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag

from mlflow_prov.bulk_metrics import InsertedMetric
from mlflow_prov.compat import value_limits
from mlflow_prov.digests import stored_text
from mlflow_prov.environment import capture_environment
from mlflow_prov.identity import serving_request
from mlflow_prov.stored_rows import (
    LOGGED_MODEL_COLUMNS,
    RUN_COLUMNS,
    metric_rows_digest,
    model_metric_rows_digest,
)
from mlflow_prov.vocabulary import (
    CUT_FIELD,
    DATASET_CONTEXT_TAG,
    METRIC_DIGESTS_FIELD,
    MODEL_METRIC_ROWS_FIELD,
    EventKind,
    RunCreated,
    RunTagDeleted,
    RunUpdated,
    experiment_chain,
    logged_model_chain,
    registered_model_chain,
    run_chain,
)


@dataclass(frozen=True)
class Described:
    """An event ready to append: its chain, kind, scope ids and payload."""

    chain: str
    kind: str
    payload: Mapping[str, Any]  # the kind's type in vocabulary.PAYLOAD_TYPES
    experiment_id: str | None = None
    run_id: str | None = None


def overwritten_values(obj: Any) -> dict[str, Any]:
    """The column values a pending change of an ORM object overwrites, by attribute name:
    what MLflow loaded before it wrote (its history, before the flush resets it)."""
    state = sa.inspect(obj)
    found: dict[str, Any] = {}
    for column in state.mapper.column_attrs:
        deleted = state.attrs[column.key].history.deleted
        if deleted:
            found[column.key] = deleted[0]
    return found


class WriteContext:
    """What a describer may use: the write's session and the rows it created, changed (with
    the values it overwrote) or deleted, through the ORM, or ``inserted`` below it by
    :mod:`mlflow_prov.bulk_metrics`. Old values come from these rows, never from a query:
    MLflow loaded them to write them."""

    def __init__(self, store: Any, session: Any, new_objects: list[Any],
                 changed_objects: dict[Any, dict[str, Any]], deleted_objects: list[Any],
                 inserted: list[Any] | None = None) -> None:
        self.store = store
        self.session = session
        self.new_objects = new_objects
        self.inserted = inserted or []
        self.changed_objects = changed_objects
        self.deleted_objects = deleted_objects

    def created(self, model_class: type) -> Any | None:
        """The first row of ``model_class`` this transaction inserted (e.g. the new SqlRun)."""
        return next((o for o in self.new_objects if isinstance(o, model_class)), None)

    def changed(self, model_class: type) -> list[Any]:
        """Rows of ``model_class`` this transaction updated (e.g. runs deleted with their
        experiment)."""
        return [o for o in self.changed_objects if isinstance(o, model_class)]

    def before(self, model_class: type, column: str, **where: Any) -> Any:
        """The value ``column`` of the ``model_class`` row matching ``where`` held before this
        transaction: the overwritten value of a changed row, the value of a deleted one,
        ``None`` for a row it inserted, :data:`UNKNOWN` when it did not touch such a row."""
        def matches(obj: Any) -> bool:
            return isinstance(obj, model_class) and all(
                str(getattr(obj, name)) == str(value) for name, value in where.items())

        for obj, old in self.changed_objects.items():
            if matches(obj):
                return old.get(column, getattr(obj, column))
        for obj in self.deleted_objects:
            if matches(obj):
                return getattr(obj, column)
        if any(matches(obj) for obj in self.new_objects):
            return None
        return UNKNOWN

    def experiment_of_run(self, run_id: str | None) -> str | None:
        return self.store.experiment_of_run(self.session, run_id)

    def experiment_of_model(self, model_id: str) -> str | None:
        return self.store.experiment_of_logged_model(self.session, model_id)


UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()


DescribeResult = Described | list[Described] | None
# A describer: the write's context, then the hooked MLflow method's own arguments, by the
# names MLflow gives them (tests/unit/test_describers.py compares the two signatures).
Describer = Callable[Concatenate[WriteContext, ...], DescribeResult]


@dataclass(frozen=True)
class Hook:
    """How one MLflow write method is journaled: its describer.

    The call's arguments are bound once (:meth:`bind`) against MLflow's own signature, so a
    describer sees ``tag`` or ``key`` whether the caller passed it by position or by
    keyword, with MLflow's defaults filled in.
    """

    describe: Describer

    def bind(self, signature: inspect.Signature, store: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The call's arguments by MLflow's parameter names (``self`` left out), limited to
        those the describer declares; None when MLflow itself would refuse the call."""
        try:
            bound = signature.bind(store, *args, **kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        wanted = _parameter_names(self.describe)
        return {name: value for name, value in list(bound.arguments.items())[1:]
                if name in wanted}


@functools.cache
def _parameter_names(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(list(inspect.signature(function).parameters)[1:])


def _run_event(ctx: WriteContext, run_id: str, kind: str,
               payload: Mapping[str, Any]) -> Described:
    return Described(run_chain(run_id), kind, payload, ctx.experiment_of_run(run_id), run_id)


def _known(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the keys whose old value the write could not know."""
    return {key: value for key, value in values.items() if value is not UNKNOWN}


def _old_run_tags(ctx: WriteContext, run_id: str, keys: Iterable[str]) -> dict[str, Any]:
    from mlflow.store.tracking.dbmodels.models import SqlTag

    return _known({key: ctx.before(SqlTag, "value", run_uuid=run_id, key=key) for key in keys})


def _experiment_event(experiment_id: Any, kind: str, payload: dict[str, Any]) -> Described:
    experiment_id = str(experiment_id)
    return Described(experiment_chain(experiment_id), kind, payload, experiment_id)


def _model_event(ctx: WriteContext, model_id: str, kind: str, payload: dict[str, Any]) -> Described:
    return Described(logged_model_chain(model_id), kind, {"model_id": model_id, **payload},
                     ctx.experiment_of_model(model_id))


def _tag_dict(tags: Iterable[Any] | None) -> dict[str, str]:
    return {tag.key: tag.value for tag in tags or ()}


PARAM_LIMIT, TAG_LIMIT = value_limits()


def _as_stored(field: str, values: dict[str, Any], limit: int) -> dict[str, Any]:
    """Param or tag values as MLflow stores them (cut to ``limit``), plus the original length
    and SHA-256 of each cut one: the journal and MLflow then hold the same value, and a
    10 MB tag is not a 10 MB journal row."""
    stored: dict[str, Any] = {}
    cut: dict[str, Any] = {}
    remembered = getattr(_batch_originals, "cut", None) or {}
    for key, value in values.items():
        stored[key], original = stored_text(value, limit)
        if original is None:
            original = remembered.get((field, key))
        if original is not None:
            cut[key] = original
    return {field: stored, CUT_FIELD: cut} if cut else {field: stored}


_batch_originals = threading.local()


class RemembersCutValues:
    """Tracking-store mixin: ``log_batch`` cuts long param and tag values before the private
    helpers that journal them run, so it keeps each cut value's original length and SHA-256
    for their events (``log_param`` and ``set_tag`` see the original themselves)."""

    def log_batch(self, run_id, metrics, params, tags):
        cut = {}
        for field, items, limit in (("params", params, PARAM_LIMIT), ("tags", tags, TAG_LIMIT)):
            for item in items or ():
                original = stored_text(item.value, limit)[1]
                if original is not None:
                    cut[(field, item.key)] = original
        previous = getattr(_batch_originals, "cut", None)
        _batch_originals.cut = cut
        try:
            return super().log_batch(run_id, metrics, params, tags)
        finally:
            _batch_originals.cut = previous


# --- experiments ------------------------------------------------------------------------------

def experiment_created(ctx: WriteContext, name: str, artifact_location: str | None = None,
                       tags: list[ExperimentTag] | None = None) -> Described | None:
    from mlflow.store.tracking.dbmodels.models import SqlExperiment

    experiment = ctx.created(SqlExperiment)
    if experiment is None:
        return None
    return _experiment_event(experiment.experiment_id, EventKind.EXPERIMENT_CREATED, {
        "name": name, "artifact_location": experiment.artifact_location, "tags": _tag_dict(tags),
        "creation_time": experiment.creation_time})


def experiment_renamed(ctx: WriteContext, experiment_id: str, new_name: str) -> Described:
    from mlflow.store.tracking.dbmodels.models import SqlExperiment

    old = ctx.before(SqlExperiment, "name", experiment_id=experiment_id)
    return _experiment_event(experiment_id, EventKind.EXPERIMENT_RENAMED,
                             _known({"old_name": old, "new_name": new_name}))


def _cascade(ctx: WriteContext, experiment_id: str, kind: str, run_kind: str,
             lifecycle_stage: str) -> list[Described]:
    """MLflow deletes (restores) every run with its experiment: say so on each run's chain."""
    from mlflow.store.tracking.dbmodels.models import SqlRun

    runs = sorted((run for run in ctx.changed(SqlRun) if run.lifecycle_stage == lifecycle_stage),
                  key=lambda run: run.run_uuid)
    cause = {"cause": kind, "experiment_id": str(experiment_id)}
    return [_experiment_event(experiment_id, kind, {"run_ids": [run.run_uuid for run in runs]}),
            *(Described(run_chain(run.run_uuid), run_kind,
                        {**cause, "deleted_time": run.deleted_time}, str(experiment_id),
                        run.run_uuid) for run in runs)]


def experiment_deleted(ctx: WriteContext, experiment_id: str) -> list[Described]:
    return _cascade(ctx, experiment_id, EventKind.EXPERIMENT_DELETED, EventKind.RUN_DELETED,
                    "deleted")


def experiment_restored(ctx: WriteContext, experiment_id: str) -> list[Described]:
    return _cascade(ctx, experiment_id, EventKind.EXPERIMENT_RESTORED, EventKind.RUN_RESTORED,
                    "active")


def experiment_tag_set(ctx: WriteContext, experiment_id: str, tag: ExperimentTag) -> Described:
    from mlflow.store.tracking.dbmodels.models import SqlExperimentTag

    old = ctx.before(SqlExperimentTag, "value", experiment_id=experiment_id, key=tag.key)
    return _experiment_event(experiment_id, EventKind.EXPERIMENT_TAG_SET,
                             _known({"key": tag.key, "value": tag.value, "old_value": old}))


def experiment_tag_deleted(ctx: WriteContext, experiment_id: str, key: str) -> Described:
    from mlflow.store.tracking.dbmodels.models import SqlExperimentTag

    old = ctx.before(SqlExperimentTag, "value", experiment_id=experiment_id, key=key)
    return _experiment_event(experiment_id, EventKind.EXPERIMENT_TAG_DELETED,
                             _known({"key": key, "old_value": old}))


# --- runs -------------------------------------------------------------------------------------

def run_created(ctx: WriteContext, experiment_id: str, user_id: str | None,
                start_time: int | None, tags: list[RunTag] | None,
                run_name: str | None) -> Described | None:
    """The run's whole row as MLflow inserted it (``run``: what verify replays), its tags,
    and the environment. Behind ``mlflow server`` the environment here is the server's, not
    the one that trains: it is then left out (``None``) rather than recorded as the run's."""
    from mlflow.store.tracking.dbmodels.models import SqlRun

    run = ctx.created(SqlRun)
    if run is None:
        return None
    payload: RunCreated = {
        "run_name": run.name, "user_id": user_id, "start_time": start_time,
        "tags": _tag_dict(tags),
        "environment": None if serving_request() else capture_environment(),
        "run": {column: getattr(run, column) for column in RUN_COLUMNS}}
    return Described(run_chain(run.run_uuid), EventKind.RUN_CREATED, payload,
                     str(run.experiment_id), run.run_uuid)


def run_updated(ctx: WriteContext, run_id: str, run_status: int | None, end_time: int | None,
                run_name: str | None) -> Described:
    """Status, end time and name after the write, with the status and name it overwrote."""
    from mlflow.store.tracking.dbmodels.models import SqlRun

    changed = next((run for run in ctx.changed(SqlRun) if run.run_uuid == run_id), None)
    payload: RunUpdated
    if changed is None:  # nothing of the run row moved (an equal status, say)
        new_status = RunStatus.to_string(run_status) if run_status is not None else None
        payload = {"new_status": new_status, "end_time": end_time, "new_name": run_name or None}
    else:
        old = ctx.changed_objects[changed]
        payload = {"old_status": old.get("status", changed.status),
                   "new_status": changed.status, "end_time": changed.end_time,
                   "old_name": old.get("name", changed.name), "new_name": changed.name}
    return _run_event(ctx, run_id, EventKind.RUN_UPDATED, payload)


def run_deleted(ctx: WriteContext, run_id: str) -> Described:
    from mlflow.store.tracking.dbmodels.models import SqlRun

    deleted = next((run for run in ctx.changed(SqlRun) if run.run_uuid == run_id), None)
    return _run_event(ctx, run_id, EventKind.RUN_DELETED,
                      {} if deleted is None else {"deleted_time": deleted.deleted_time})


def run_restored(ctx: WriteContext, run_id: str) -> Described:
    return _run_event(ctx, run_id, EventKind.RUN_RESTORED, {})


def metrics_logged(ctx: WriteContext, run_id: str, metrics: list[Metric]) -> Described | None:
    """Keys, count and ranges, not values (MLflow has those), and per key the count and
    multiset digest of the rows MLflow inserted (duplicates it skipped are not counted), so
    verify can prove the values. The metric -> dataset link
    (``log_metric(..., dataset=...)``) is kept per key: MLflow's SQL stores keep it only on
    LoggedModel metrics, so for run metrics the journal is the one place it survives."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    if not metrics:
        return None
    steps = [m.step for m in metrics]
    times = [m.timestamp for m in metrics]
    payload: dict[str, Any] = {
        "keys": sorted({m.key for m in metrics}), "count": len(metrics),
        "step_min": min(steps), "step_max": max(steps),
        "time_min": min(times), "time_max": max(times),
        METRIC_DIGESTS_FIELD: metric_rows_digest(
            [row for row in (*ctx.new_objects, *ctx.inserted)
             if isinstance(row, SqlMetric | InsertedMetric) and row.run_uuid == run_id]),
    }
    linked: dict[tuple[str, str | None], set[str]] = {}
    for m in metrics:
        if m.dataset_name:
            linked.setdefault((m.dataset_name, m.dataset_digest), set()).add(m.key)
    if linked:
        payload["datasets"] = [{"name": name, "digest": digest, "keys": sorted(keys)}
                               for (name, digest), keys in sorted(linked.items())]
    model_ids = sorted({m.model_id for m in metrics if m.model_id})
    if model_ids:
        payload["model_ids"] = model_ids
    return _run_event(ctx, run_id, EventKind.RUN_METRICS_LOGGED, payload)


def model_metrics_logged(ctx: WriteContext, run_id: str, metrics: list[Metric],
                         experiment_id: str | None = None,
                         dataset_uuid: str | None = None) -> Described | None:
    """The LoggedModel metrics MLflow inserted, per model and key as a row count and multiset
    digest (``rows``), as for run metrics: what verify compares ``logged_model_metrics``
    with."""
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModelMetric

    linked = [m for m in metrics if getattr(m, "model_id", None)]
    if not linked:
        return None
    inserted = [row for row in ctx.new_objects if isinstance(row, SqlLoggedModelMetric)]
    return _run_event(ctx, run_id, EventKind.LOGGED_MODEL_METRICS_LOGGED, {
        "model_ids": sorted({m.model_id for m in linked}),
        "keys": sorted({m.key for m in linked}), "count": len(linked),
        MODEL_METRIC_ROWS_FIELD: model_metric_rows_digest(inserted)})


def param_logged(ctx: WriteContext, run_id: str, param: Param) -> Described:
    # MLflow writes a param only when its key is new (an equal value is no write, another
    # value an error)
    return _run_event(ctx, run_id, EventKind.RUN_PARAMS_LOGGED,
                      _as_stored("params", {param.key: param.value}, PARAM_LIMIT))


def params_logged(ctx: WriteContext, run_id: str, params: list[Param]) -> Described | None:
    if not params:
        return None
    return _run_event(ctx, run_id, EventKind.RUN_PARAMS_LOGGED,
                      _as_stored("params", _tag_dict(params), PARAM_LIMIT))


def tag_set(ctx: WriteContext, run_id: str, tag: RunTag) -> Described:
    return _run_event(ctx, run_id, EventKind.RUN_TAGS_SET, {
        **_as_stored("tags", {tag.key: tag.value}, TAG_LIMIT),
        "old": _old_run_tags(ctx, run_id, [tag.key])})


def tags_set(ctx: WriteContext, run_id: str, tags: list[RunTag]) -> Described | None:
    if not tags:
        return None
    return _run_event(ctx, run_id, EventKind.RUN_TAGS_SET,
                      {**_as_stored("tags", _tag_dict(tags), TAG_LIMIT),
                       "old": _old_run_tags(ctx, run_id, [t.key for t in tags])})


def tag_deleted(ctx: WriteContext, run_id: str, key: str) -> Described:
    old = _old_run_tags(ctx, run_id, [key])
    payload: RunTagDeleted = {"key": key}
    if key in old:
        payload["old_value"] = old[key]
    return _run_event(ctx, run_id, EventKind.RUN_TAG_DELETED, payload)


def _dataset_summary(dataset_input: Any) -> dict[str, Any]:
    dataset = dataset_input.dataset
    return {"name": dataset.name, "digest": dataset.digest, "source_type": dataset.source_type,
            "source": dataset.source,
            "context": _tag_dict(dataset_input.tags).get(DATASET_CONTEXT_TAG)}


def inputs_logged(ctx: WriteContext, run_id: str, datasets: list[DatasetInput] | None = None,
                  models: list[LoggedModelInput] | None = None) -> Described | None:
    if not datasets and not models:
        return None
    return _run_event(ctx, run_id, EventKind.RUN_INPUTS_LOGGED, {
        "datasets": [_dataset_summary(d) for d in datasets or ()],
        "models": [m.model_id for m in models or ()]})


def outputs_logged(ctx: WriteContext, run_id: str, models: list[LoggedModelOutput]) -> Described:
    return _run_event(ctx, run_id, EventKind.RUN_OUTPUTS_LOGGED,
                      {"models": [{"model_id": m.model_id, "step": m.step} for m in models or ()]})


def logged_model_recorded(ctx: WriteContext, run_id: str, mlflow_model: Any) -> Described:
    return _run_event(ctx, run_id, EventKind.RUN_LOGGED_MODEL_RECORDED, {
        "artifact_path": mlflow_model.artifact_path, "model_uuid": mlflow_model.model_uuid,
        "model_id": getattr(mlflow_model, "model_id", None),
        "flavors": sorted(mlflow_model.flavors)})


def traces_linked(ctx: WriteContext, trace_ids: list[str], run_id: str) -> Described:
    return _run_event(ctx, run_id, EventKind.RUN_TRACES_LINKED, {"trace_ids": list(trace_ids)})


def traces_unlinked(ctx: WriteContext, trace_ids: list[str], run_id: str) -> Described:
    return _run_event(ctx, run_id, EventKind.RUN_TRACES_UNLINKED, {"trace_ids": list(trace_ids)})


# --- logged models (MLflow 3) -----------------------------------------------------------------

def logged_model_created(ctx: WriteContext, experiment_id: str, name: str | None = None,
                         source_run_id: str | None = None,
                         tags: list[LoggedModelTag] | None = None,
                         params: list[LoggedModelParameter] | None = None,
                         model_type: str | None = None) -> Described | None:
    """The model's whole row as MLflow inserted it (``model``), its tags and params."""
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModel

    model = ctx.created(SqlLoggedModel)
    if model is None:
        return None
    return Described(logged_model_chain(model.model_id), EventKind.LOGGED_MODEL_CREATED, {
        "model_id": model.model_id, "name": model.name, "source_run_id": source_run_id,
        "model_type": model_type, "tags": _tag_dict(tags), "params": _tag_dict(params),
        "model": {column: getattr(model, column) for column in LOGGED_MODEL_COLUMNS},
    }, str(experiment_id), source_run_id)


def logged_model_finalized(ctx: WriteContext, model_id: str, status: Any) -> Described:
    """The status by name, and as MLflow stores it (``stored_status``, a number)."""
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModel

    changed = next((m for m in ctx.changed(SqlLoggedModel) if m.model_id == model_id), None)
    stored = {} if changed is None else {"stored_status": changed.status}
    return _model_event(ctx, model_id, EventKind.LOGGED_MODEL_FINALIZED,
                        {"status": getattr(status, "name", str(status)), **stored})


def logged_model_deleted(ctx: WriteContext, model_id: str) -> Described:
    return _model_event(ctx, model_id, EventKind.LOGGED_MODEL_DELETED, {})


def logged_model_tags_set(ctx: WriteContext, model_id: str,
                          tags: list[LoggedModelTag]) -> Described:
    return _model_event(ctx, model_id, EventKind.LOGGED_MODEL_TAGS_SET, {"tags": _tag_dict(tags)})


def logged_model_tag_deleted(ctx: WriteContext, model_id: str, key: str) -> Described:
    return _model_event(ctx, model_id, EventKind.LOGGED_MODEL_TAG_DELETED, {"key": key})


def logged_model_params_logged(ctx: WriteContext, model_id: str,
                               params: list[LoggedModelParameter]) -> Described:
    return _model_event(ctx, model_id, EventKind.LOGGED_MODEL_PARAMS_LOGGED,
                        {"params": _tag_dict(params)})


# --- model registry ---------------------------------------------------------------------------

def _registry_event(name: str, kind: str, payload: dict[str, Any], run_id: str | None = None,
                    experiment_id: str | None = None) -> Described:
    return Described(registered_model_chain(name), kind, {"name": name, **payload},
                     experiment_id, run_id)


def registered_model_created(ctx: WriteContext, name: str,
                             tags: list[RegisteredModelTag] | None = None,
                             description: str | None = None,
                             deployment_job_id: str | None = None) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_CREATED,
                           {"tags": _tag_dict(tags), "description": description})


def registered_model_updated(ctx: WriteContext, name: str, description: str | None,
                             deployment_job_id: str | None = None) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_UPDATED, {"description": description})


def registered_model_renamed(ctx: WriteContext, name: str, new_name: str) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_RENAMED, {"new_name": new_name})


def registered_model_deleted(ctx: WriteContext, name: str) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_DELETED, {})


def registered_model_tag_set(ctx: WriteContext, name: str, tag: RegisteredModelTag) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_TAG_SET,
                           {"key": tag.key, "value": tag.value})


def registered_model_tag_deleted(ctx: WriteContext, name: str, key: str) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_TAG_DELETED, {"key": key})


def model_version_created(ctx: WriteContext, name: str, source: str, run_id: str | None = None,
                          tags: list[ModelVersionTag] | None = None,
                          run_link: str | None = None,
                          description: str | None = None, local_model_path: str | None = None,
                          model_id: str | None = None) -> Described:
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

    version = ctx.created(SqlModelVersion)
    return _registry_event(name, EventKind.MODEL_VERSION_CREATED, {
        "version": version.version if version is not None else None, "source": source,
        "run_id": run_id, "model_id": model_id, "tags": _tag_dict(tags),
        "description": description,
    }, run_id, ctx.experiment_of_run(run_id))


def model_version_updated(ctx: WriteContext, name: str, version: str | int,
                          description: str | None) -> Described:
    return _registry_event(name, EventKind.MODEL_VERSION_UPDATED,
                           {"version": int(version), "description": description})


def model_version_stage_transitioned(ctx: WriteContext, name: str, version: str | int,
                                     stage: str, archive_existing_versions: bool) -> Described:
    return _registry_event(name, EventKind.MODEL_VERSION_STAGE_TRANSITIONED, {
        "version": int(version), "stage": stage, "archive_existing_versions":
        bool(archive_existing_versions)})


def model_version_deleted(ctx: WriteContext, name: str, version: str | int) -> Described:
    return _registry_event(name, EventKind.MODEL_VERSION_DELETED, {"version": int(version)})


def model_version_tag_set(ctx: WriteContext, name: str, version: str | int,
                          tag: ModelVersionTag) -> Described:
    return _registry_event(name, EventKind.MODEL_VERSION_TAG_SET,
                           {"version": int(version), "key": tag.key, "value": tag.value})


def model_version_tag_deleted(ctx: WriteContext, name: str, version: str | int,
                              key: str) -> Described:
    return _registry_event(name, EventKind.MODEL_VERSION_TAG_DELETED,
                           {"version": int(version), "key": key})


def alias_set(ctx: WriteContext, name: str, alias: str, version: str | int) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_ALIAS_SET,
                           {"alias": alias, "version": int(version)})


def alias_deleted(ctx: WriteContext, name: str, alias: str) -> Described:
    return _registry_event(name, EventKind.REGISTERED_MODEL_ALIAS_DELETED, {"alias": alias})


TRACKING_HOOKS: dict[str, Hook] = {
    "create_experiment": Hook(experiment_created),
    "rename_experiment": Hook(experiment_renamed),
    "delete_experiment": Hook(experiment_deleted),
    "restore_experiment": Hook(experiment_restored),
    "set_experiment_tag": Hook(experiment_tag_set),
    "delete_experiment_tag": Hook(experiment_tag_deleted),
    "create_run": Hook(run_created),
    "update_run_info": Hook(run_updated),
    "delete_run": Hook(run_deleted),
    "restore_run": Hook(run_restored),
    "_log_metrics": Hook(metrics_logged),
    "_log_model_metrics": Hook(model_metrics_logged),
    "log_param": Hook(param_logged),
    "_log_params": Hook(params_logged),
    "set_tag": Hook(tag_set),
    "_set_tags": Hook(tags_set),
    "delete_tag": Hook(tag_deleted),
    "log_inputs": Hook(inputs_logged),
    "log_outputs": Hook(outputs_logged),
    "record_logged_model": Hook(logged_model_recorded),
    "link_traces_to_run": Hook(traces_linked),
    "unlink_traces_from_run": Hook(traces_unlinked),
    "create_logged_model": Hook(logged_model_created),
    "finalize_logged_model": Hook(logged_model_finalized),
    "delete_logged_model": Hook(logged_model_deleted),
    "set_logged_model_tags": Hook(logged_model_tags_set),
    "delete_logged_model_tag": Hook(logged_model_tag_deleted),
    "log_logged_model_params": Hook(logged_model_params_logged),
}

REGISTRY_HOOKS: dict[str, Hook] = {
    "create_registered_model": Hook(registered_model_created),
    "update_registered_model": Hook(registered_model_updated),
    "rename_registered_model": Hook(registered_model_renamed),
    "delete_registered_model": Hook(registered_model_deleted),
    "set_registered_model_tag": Hook(registered_model_tag_set),
    "delete_registered_model_tag": Hook(registered_model_tag_deleted),
    "create_model_version": Hook(model_version_created),
    "update_model_version": Hook(model_version_updated),
    "transition_model_version_stage": Hook(model_version_stage_transitioned),
    "delete_model_version": Hook(model_version_deleted),
    "set_model_version_tag": Hook(model_version_tag_set),
    "delete_model_version_tag": Hook(model_version_tag_deleted),
    "set_registered_model_alias": Hook(alias_set),
    "delete_registered_model_alias": Hook(alias_deleted),
}

JOURNALED_THROUGH: dict[str, tuple[str, ...]] = {
    "log_metric": ("_log_metrics", "_log_model_metrics"),
    "log_batch": ("_log_params", "_log_metrics", "_log_model_metrics", "_set_tags"),
    "log_metric_async": ("_log_metrics",),
    "log_param_async": ("_log_params",),
    "set_tag_async": ("_set_tags",),
    "log_batch_async": ("_log_params", "_log_metrics", "_set_tags"),
    "copy_model_version": ("create_model_version",),
}
