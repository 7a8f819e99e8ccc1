"""The one place that reads MLflow's own run tables with SQL: for ``mlflow-prov verify`` when
it reconciles MLflow's rows with the journal, and the metric-row digests written with each
metrics event.

Why SQL rather than the client API: verify compares *every* stored row of a run (100,000
metric points and more) with the journal; ``get_metric_history`` builds an object per point
and would make verify minutes long. One query per table per run reads them at database speed.

Why one module: MLflow's table layout is MLflow's business. Everything here names the columns
it reads, and :func:`open_store` refuses a schema version (``alembic_version``) it does not
know with a one-line message instead of reading a layout it was not checked against.

Read API (exporters may import it, as they import the journal's): :func:`open_store`,
:func:`read_runs`, :func:`read_run_rows`, :func:`read_experiment_rows`,
:class:`RunRows`, :data:`RUN_COLUMNS`, :data:`EXPERIMENT_COLUMNS`, :class:`UnknownSchemaError`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import (
    metric_row_hash,
    multiset_digest,
)
from mlflow_prov.fast_read import KNOWN_SCHEMAS
from mlflow_prov.vocabulary import DATASET_CONTEXT_TAG

# The run row's columns, in the order their digest covers them.
RUN_COLUMNS = ("run_uuid", "experiment_id", "name", "user_id", "status", "start_time",
               "end_time", "deleted_time", "lifecycle_stage", "source_type", "source_name",
               "entry_point_name", "source_version", "artifact_uri")

# The LoggedModel row's columns a model's first event records and verify compares (not the
# last-update time, which MLflow moves on every write to the model).
LOGGED_MODEL_COLUMNS = ("model_id", "experiment_id", "name", "artifact_location",
                        "creation_timestamp_ms", "status", "lifecycle_stage", "model_type",
                        "source_run_id", "status_message")

# The experiment row's columns covered by its digest: not ``last_update_time``, which MLflow
# moves on writes the journal records elsewhere.
EXPERIMENT_COLUMNS = ("experiment_id", "name", "artifact_location", "lifecycle_stage",
                      "creation_time")
_METRIC_COLUMNS = ("key", "value", "timestamp", "step", "is_nan")
_METRIC_FIELDS = frozenset(_METRIC_COLUMNS)
# Lightweight table clauses: SQLAlchemy quotes ``key`` and ``timestamp`` as each dialect needs
# (``key`` is reserved on MySQL), without importing MLflow's ORM models.
_runs = sa.table("runs", *map(sa.column, RUN_COLUMNS))
_tags = sa.table("tags", sa.column("run_uuid"), sa.column("key"), sa.column("value"))
_params = sa.table("params", sa.column("run_uuid"), sa.column("key"), sa.column("value"))
_metrics = sa.table("metrics", sa.column("run_uuid"), *map(sa.column, _METRIC_COLUMNS))
_latest = sa.table("latest_metrics", sa.column("run_uuid"), *map(sa.column, _METRIC_COLUMNS))
_RUN_ID: sa.BindParameter[str] = sa.bindparam("run_id")
# Bound under the same name as a run id: :func:`_fetch` binds one id per query.
_EXPERIMENT_ID: sa.BindParameter[int] = sa.bindparam("run_id")
_experiments = sa.table("experiments", *map(sa.column, EXPERIMENT_COLUMNS))
_experiment_tags = sa.table("experiment_tags", sa.column("experiment_id"), sa.column("key"),
                            sa.column("value"))
_EXPERIMENT_SQL = (sa.select(*(_experiments.c[name] for name in EXPERIMENT_COLUMNS))
                   .where(_experiments.c.experiment_id == _EXPERIMENT_ID))
_EXPERIMENT_TAGS_SQL = (sa.select(_experiment_tags.c.key, _experiment_tags.c.value)
                        .where(_experiment_tags.c.experiment_id == _EXPERIMENT_ID))
_RUN_SQL = sa.select(*(_runs.c[name] for name in RUN_COLUMNS)).where(_runs.c.run_uuid == _RUN_ID)
_TAGS_SQL = sa.select(_tags.c.key, _tags.c.value).where(_tags.c.run_uuid == _RUN_ID)
_PARAMS_SQL = sa.select(_params.c.key, _params.c.value).where(_params.c.run_uuid == _RUN_ID)
_METRICS_SQL = (sa.select(*(_metrics.c[name] for name in _METRIC_COLUMNS))
                .where(_metrics.c.run_uuid == _RUN_ID))
_KEY_METRICS_SQL = _METRICS_SQL.where(_metrics.c.key == sa.bindparam("key"))
_NEWEST_METRIC_SQL = (_KEY_METRICS_SQL.order_by(_metrics.c.step.desc(),
                                                _metrics.c.timestamp.desc(),
                                                _metrics.c.value.desc()).limit(2))
_LATEST_SQL = (sa.select(*(_latest.c[name] for name in _METRIC_COLUMNS))
               .where(_latest.c.run_uuid == _RUN_ID))


class UnknownSchemaError(RuntimeError):
    """The store's MLflow schema version is not one this module was checked against."""


@dataclass(frozen=True)
class RunRows:
    """Every row MLflow holds for one run, as stored (metric rows as
    ``(key, value, timestamp, step, is_nan)``)."""

    run: dict[str, Any] | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int, int, bool]]
    latest_metrics: list[tuple[str, float, int, int, bool]]


def metric_rows_digest(rows: list[Any]) -> dict[str, list[Any]]:
    """Per key: ``[row count, multiset digest]`` of metric rows (objects with MLflow's
    ``SqlMetric`` attributes). Values are read from each object's ``__dict__``: the rows were
    just built, so all are loaded there, and an ORM attribute read costs several times more
    (this runs for every metric MLflow stores)."""
    hashes: dict[str, list[int]] = {}
    for row in rows:
        values = vars(row)
        if not _METRIC_FIELDS <= values.keys():  # not built with every column: ask the ORM
            values = {name: getattr(row, name) for name in _METRIC_FIELDS}
        key = values["key"]
        hashes.setdefault(key, []).append(metric_row_hash(
            key, values["value"], values["timestamp"], values["step"], values["is_nan"]))
    return {key: [len(found), multiset_digest(found)] for key, found in sorted(hashes.items())}


def model_metric_rows_digest(rows: list[Any]) -> dict[str, dict[str, list[Any]]]:
    """Per model and key: ``[row count, multiset digest]`` of LoggedModel metric rows (objects
    with MLflow's ``SqlLoggedModelMetric`` attributes), hashed like run metric rows."""
    hashes: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        hashes.setdefault(row.model_id, {}).setdefault(row.metric_name, []).append(
            _model_metric_hash(row.metric_name, row.metric_value, row.metric_timestamp_ms,
                               row.metric_step))
    return {model: {key: [len(found), multiset_digest(found)]
                    for key, found in sorted(keys.items())}
            for model, keys in sorted(hashes.items())}


def _model_metric_hash(key: str, value: float | None, timestamp: int, step: int) -> int:
    """A LoggedModel metric row's hash: MLflow stores a NaN there as it is (no ``is_nan``
    column), which :func:`metric_row_hash` takes as a NaN flag."""
    if value is None or math.isnan(value):
        return metric_row_hash(key, 0.0, timestamp, step, True)
    return metric_row_hash(key, value, timestamp, step, False)


@contextmanager
def open_store(tracking_uri: str) -> Iterator[sa.Connection]:
    """A read connection to a prov store's database, after checking MLflow's schema version.

    Raises :class:`UnknownSchemaError` naming the version found and the fix.
    """
    from mlflow_prov.journal import _engine_for

    with _engine_for(tracking_uri).connect() as connection:
        try:
            versions = set(connection.execute(
                sa.text("SELECT version_num FROM alembic_version")).scalars())
        except sa.exc.SQLAlchemyError as error:
            raise UnknownSchemaError(f"{tracking_uri}: no MLflow schema version found "
                                     "(is this an MLflow store?)") from error
        if not versions or not versions <= KNOWN_SCHEMAS:
            raise UnknownSchemaError(
                f"{tracking_uri}: MLflow schema {', '.join(sorted(versions)) or '(none)'} is "
                "not one mlflow-prov was checked against; upgrade mlflow-prov "
                "(or run `mlflow db upgrade` on the store)")
        yield connection


def read_runs(connection: sa.Connection, experiment_id: str | None = None,
              run_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Every run row (all lifecycle stages), optionally of one experiment or one run."""
    query = sa.select(*(_runs.c[name] for name in RUN_COLUMNS))
    if experiment_id is not None:
        query = query.where(_runs.c.experiment_id == int(experiment_id))
    if run_id is not None:
        query = query.where(_runs.c.run_uuid == run_id)
    rows = connection.execute(query).all()
    return {row.run_uuid: dict(row._mapping) for row in rows}


def read_experiment_rows(connection: sa.Connection,
                         experiment_id: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """One experiment's row (:data:`EXPERIMENT_COLUMNS`) and tags, or ``(None, {})``."""
    parameters = {"run_id": int(experiment_id)}
    row = connection.execute(_EXPERIMENT_SQL, parameters).first()
    tags = {key: value for key, value in connection.execute(_EXPERIMENT_TAGS_SQL, parameters)}
    return (dict(row._mapping) if row is not None else None), tags


@dataclass(frozen=True)
class LoggedModelRows:
    """One LoggedModel's row (:data:`LOGGED_MODEL_COLUMNS`), tags, params and metric rows as
    ``(key, value, timestamp, step)``."""

    model: dict[str, Any] | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float | None, int, int]]


_logged_models = sa.table("logged_models", *map(sa.column, LOGGED_MODEL_COLUMNS))
_logged_model_tags = sa.table("logged_model_tags", sa.column("model_id"),
                              sa.column("tag_key"), sa.column("tag_value"))
_logged_model_params = sa.table("logged_model_params", sa.column("model_id"),
                                sa.column("param_key"), sa.column("param_value"))
_logged_model_metrics = sa.table("logged_model_metrics", sa.column("model_id"),
                                 sa.column("metric_name"), sa.column("metric_value"),
                                 sa.column("metric_timestamp_ms"), sa.column("metric_step"))


def read_logged_model_rows(connection: sa.Connection, model_id: str) -> LoggedModelRows:
    """All of one LoggedModel's stored rows, one query per table."""
    where = {"model_id": model_id}
    model = connection.execute(
        sa.select(*(_logged_models.c[name] for name in LOGGED_MODEL_COLUMNS))
        .where(_logged_models.c.model_id == model_id)).first()
    tags = connection.execute(sa.select(_logged_model_tags.c.tag_key,
                                        _logged_model_tags.c.tag_value)
                              .where(_logged_model_tags.c.model_id == where["model_id"])).all()
    params = connection.execute(sa.select(_logged_model_params.c.param_key,
                                          _logged_model_params.c.param_value)
                                .where(_logged_model_params.c.model_id == model_id)).all()
    metric_columns = _logged_model_metrics.c
    metrics = connection.execute(sa.select(metric_columns.metric_name, metric_columns.metric_value,
                                           metric_columns.metric_timestamp_ms,
                                           metric_columns.metric_step)
                                 .where(metric_columns.model_id == model_id)).all()
    return LoggedModelRows(dict(model._mapping) if model is not None else None,
                           dict(tags), dict(params), [tuple(row) for row in metrics])


def model_metrics_digest(metrics: list[tuple[str, float | None, int, int]]
                         ) -> dict[str, list[Any]]:
    """Per key ``[row count, multiset digest]`` of a LoggedModel's stored metric rows, as
    :func:`model_metric_rows_digest` computed them at write time."""
    hashes: dict[str, list[int]] = {}
    for key, value, timestamp, step in metrics:
        hashes.setdefault(key, []).append(_model_metric_hash(key, value, timestamp, step))
    return {key: [len(found), multiset_digest(found)] for key, found in sorted(hashes.items())}


@dataclass(frozen=True)
class RegistryRows:
    """The model registry as stored: per registered model its description and tags, per
    version ``(name, version)`` its columns and tags, and the aliases."""

    models: dict[str, dict[str, Any]]
    model_tags: dict[str, dict[str, str]]
    versions: dict[tuple[str, int], dict[str, Any]]
    version_tags: dict[tuple[str, int], dict[str, str]]
    aliases: dict[tuple[str, str], int]


REGISTRY_VERSION_COLUMNS = ("name", "version", "description", "current_stage", "source",
                            "run_id")
_registered_models = sa.table("registered_models", sa.column("name"), sa.column("description"))
_registered_model_tags = sa.table("registered_model_tags", sa.column("name"), sa.column("key"),
                                  sa.column("value"))
_model_versions = sa.table("model_versions", *map(sa.column, REGISTRY_VERSION_COLUMNS))
_model_version_tags = sa.table("model_version_tags", sa.column("name"), sa.column("version"),
                               sa.column("key"), sa.column("value"))
_aliases = sa.table("registered_model_aliases", sa.column("name"), sa.column("alias"),
                    sa.column("version"))


def read_registry_rows(connection: sa.Connection) -> RegistryRows:
    """The whole model registry, one query per table (it holds models, not metric points)."""
    models = {row.name: dict(row._mapping) for row in connection.execute(
        sa.select(_registered_models.c.name, _registered_models.c.description))}
    model_tags: dict[str, dict[str, str]] = {}
    for name, key, value in connection.execute(sa.select(
            _registered_model_tags.c.name, _registered_model_tags.c.key,
            _registered_model_tags.c.value)):
        model_tags.setdefault(name, {})[key] = value
    versions = {(row.name, int(row.version)): dict(row._mapping) for row in connection.execute(
        sa.select(*(_model_versions.c[name] for name in REGISTRY_VERSION_COLUMNS)))}
    version_tags: dict[tuple[str, int], dict[str, str]] = {}
    for name, version, key, value in connection.execute(sa.select(
            _model_version_tags.c.name, _model_version_tags.c.version,
            _model_version_tags.c.key, _model_version_tags.c.value)):
        version_tags.setdefault((name, int(version)), {})[key] = value
    aliases = {(name, alias): int(version) for name, alias, version in connection.execute(
        sa.select(_aliases.c.name, _aliases.c.alias, _aliases.c.version))}
    return RegistryRows(models, model_tags, versions, version_tags, aliases)


_datasets = sa.table("datasets", sa.column("dataset_uuid"), sa.column("name"),
                     sa.column("digest"), sa.column("dataset_source_type"),
                     sa.column("dataset_source"))
_inputs = sa.table("inputs", sa.column("input_uuid"), sa.column("source_type"),
                   sa.column("source_id"), sa.column("destination_type"),
                   sa.column("destination_id"))
_input_tags = sa.table("input_tags", sa.column("input_uuid"), sa.column("name"),
                       sa.column("value"))
DatasetInput = tuple[str, str, str, str, str | None]  # name, digest, source type, source, context


def read_dataset_inputs(connection: sa.Connection, run_id: str) -> list[DatasetInput]:
    """The datasets a run's inputs link to, as ``(name, digest, source type, source,
    context tag)``, one query."""
    context = (sa.select(_input_tags.c.value)
               .where(_input_tags.c.input_uuid == _inputs.c.input_uuid,
                      _input_tags.c.name == DATASET_CONTEXT_TAG)
               .scalar_subquery())
    query = (sa.select(_datasets.c.name, _datasets.c.digest, _datasets.c.dataset_source_type,
                       _datasets.c.dataset_source, context)
             .select_from(_inputs.join(_datasets,
                                       _datasets.c.dataset_uuid == _inputs.c.source_id))
             .where(_inputs.c.destination_id == run_id, _inputs.c.source_type == "DATASET",
                    _inputs.c.destination_type == "RUN"))
    return sorted(tuple(row) for row in connection.execute(query))


def newest_metric_rows(connection: sa.Connection, run_id: str,
                       keys: Collection[str]) -> dict[str, list[tuple]]:
    """Per key, the metric rows ``latest_metrics`` may hold: those with the largest (step,
    timestamp, value), as MLflow picks it; one lookup on MLflow's (run, key, step) index per
    key. Two at most tie there (a NaN, stored as 0 with ``is_nan``, and a 0.0: the primary
    key keeps any other pair apart)."""
    newest = {}
    for key in sorted(keys):
        rows = [tuple(row) for row in connection.execute(
            _NEWEST_METRIC_SQL, {"run_id": run_id, "key": key})]
        if rows:
            newest[key] = [row for row in rows if row[1:4] == rows[0][1:4]]
    return newest


def read_run_rows(connection: sa.Connection, run_id: str,
                  metric_keys: Collection[str] | None = None) -> RunRows:
    """All of one run's stored rows, one query per table; with ``metric_keys``, the metric
    rows of those keys only (one query per key), so a check that knows which series changed
    reads no other point."""
    parameters = {"run_id": run_id}
    run = connection.execute(_RUN_SQL, parameters).first()
    if metric_keys is None:
        metrics = [tuple(row) for row in connection.execute(_METRICS_SQL, parameters)]
    else:
        metrics = [tuple(row) for key in sorted(metric_keys)
                   for row in connection.execute(_KEY_METRICS_SQL, {**parameters, "key": key})]
    return RunRows(
        run=dict(run._mapping) if run is not None else None,
        tags=dict(connection.execute(_TAGS_SQL, parameters).all()),
        params=dict(connection.execute(_PARAMS_SQL, parameters).all()),
        metrics=metrics,
        latest_metrics=[tuple(row) for row in connection.execute(_LATEST_SQL, parameters)])
