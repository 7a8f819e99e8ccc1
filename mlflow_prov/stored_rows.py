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

# The run row's columns, in the order their digest covers them.
RUN_COLUMNS = ("run_uuid", "experiment_id", "name", "user_id", "status", "start_time",
               "end_time", "deleted_time", "lifecycle_stage", "source_type", "source_name",
               "entry_point_name", "source_version", "artifact_uri")

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
