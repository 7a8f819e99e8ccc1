"""The one place that reads MLflow's own run tables with SQL: for the journal's digests at
write time, and for ``mlflow-prov verify`` when it reconciles MLflow's rows with the journal.

Why SQL rather than the client API: verify compares *every* stored row of a run (100,000
metric points and more) with the journal; ``get_metric_history`` builds an object per point
and would make verify minutes long. One query per table per run reads them at database speed.

Why one module: MLflow's table layout is MLflow's business. Everything here names the columns
it reads, and :func:`open_store` refuses a schema version (``alembic_version``) it does not
know with a one-line message instead of reading a layout it was not checked against.

Read API (exporters may import it, as they import the journal's): :func:`open_store`,
:func:`read_runs`, :func:`read_run_rows`, :func:`read_experiment_rows`, :func:`run_state`,
:class:`RunRows`, :data:`RUN_COLUMNS`, :data:`EXPERIMENT_COLUMNS`, :class:`UnknownSchemaError`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import (
    metric_row_hash,
    moved_digest,
    multiset_digest,
    pairs_digest,
    record_digest,
)
from mlflow_prov.fast_read import KNOWN_SCHEMAS
from mlflow_prov.vocabulary import RUN_NAME_TAG, EventKind, experiment_chain, run_chain

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
# Events whose write cannot touch the run's row, tags or params record no state digest.
_NO_STATE = frozenset({EventKind.RUN_METRICS_LOGGED, EventKind.LOGGED_MODEL_METRICS_LOGGED,
                       # artifact records change no row (mlflow_prov/artifact_records.py)
                       EventKind.RUN_ARTIFACTS_RECORDED, EventKind.RUN_ARTIFACT_UPLOADED})


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


@dataclass(frozen=True)
class TouchedRows:
    """The tag and param keys one run write may have changed, and their rows before it (as
    ``{key: value}`` of the rows that existed, keys as the database returned them): enough
    to move the run's state digests without reading its other rows. Params have no old rows:
    MLflow writes a param only when its key is new. ``read_at_length``: the run chain's length
    when the old tag rows were read; they are trusted only if no other event came between."""

    tags: frozenset[str] = frozenset()
    old_tags: dict[str, str] = field(default_factory=dict)
    params: frozenset[str] = frozenset()
    read_at_length: int | None = None


def run_state(connection: sa.Connection, run_id: str) -> dict[str, str]:
    """Digests of the run's row, tags and params as they are now, inside ``connection``'s
    transaction: what a journal event records so verify can prove them later."""
    run = _fetch(connection, "run", run_id)
    return {
        "run": record_digest(run[0]) if run else "",
        "tags": pairs_digest(_fetch(connection, "tags", run_id)),
        "params": pairs_digest(_fetch(connection, "params", run_id)),
    }


def moved_run_state(connection: sa.Connection, run_id: str, previous: dict[str, str] | None,
                    length: int, touched: TouchedRows) -> dict[str, str]:
    """:func:`run_state` from the chain's previous state and the rows this write touched:
    tags and params are read only for the touched keys, the run row only when the run's
    name tag was among them (no other tag or param write changes it).

    Why it is also the safer digest: a tag edited behind MLflow's back stays outside the
    journal's state across later tag and param writes, so ``verify`` still finds it (a write
    that reads the rows whole, such as the run's end, absorbs it)."""
    stale = bool(touched.tags) and touched.read_at_length != length
    if stale or previous is None or not {"run", "tags", "params"} <= previous.keys():
        return run_state(connection, run_id)
    run_digest = previous["run"]
    if RUN_NAME_TAG in touched.tags:  # MLflow keeps the run's name in its row too
        run = _fetch(connection, "run", run_id)
        run_digest = record_digest(run[0]) if run else ""
    return {
        "run": run_digest,
        "tags": moved_digest(previous["tags"], touched.old_tags.items(),
                             keyed_rows(connection, "tags", run_id, touched.tags)),
        "params": moved_digest(previous["params"], (),
                               keyed_rows(connection, "params", run_id, touched.params)),
    }


_STATE_QUERIES = {"run": _RUN_SQL, "tags": _TAGS_SQL, "params": _PARAMS_SQL,
                  "experiment": _EXPERIMENT_SQL, "experiment_tags": _EXPERIMENT_TAGS_SQL,
                  "tag": _TAGS_SQL.where(_tags.c.key == sa.bindparam("key")),
                  "param": _PARAMS_SQL.where(_params.c.key == sa.bindparam("key"))}
_compiled: dict[tuple[str, str], tuple[str, list[str] | None]] = {}


def keyed_rows(connection: sa.Connection, table: str, run_id: str,
               keys: Collection[str]) -> list[tuple]:
    """The ``(key, value)`` rows of some keys of a run's tags or params, one indexed lookup
    per key, on the transaction's own cursor."""
    name = {"tags": "tag", "params": "param"}[table]
    return [row for key in sorted(keys) for row in _fetch(connection, name, run_id, key)]


def _fetch(connection: sa.Connection, name: str, run_id: str | int,
           key: str | None = None) -> list[tuple]:
    """One state query on the transaction's own DB-API cursor, compiled once per dialect:
    it runs on every run write, where SQLAlchemy's per-statement overhead (~0.1 ms) was
    most of the cost."""
    cache_key = (connection.dialect.name, name)
    compiled = _compiled.get(cache_key)
    if compiled is None:
        statement = _STATE_QUERIES[name].compile(dialect=connection.dialect)
        order = list(statement.positiontup) if statement.positiontup is not None else None
        compiled = _compiled[cache_key] = (statement.string, order)
    sql, order = compiled
    driver = connection.connection.driver_connection
    if driver is None:  # a pooled connection always has one; a detached proxy would not
        raise RuntimeError("the connection has no driver connection to read with")
    cursor = driver.cursor()
    named: dict[str, Any] = {"run_id": run_id, "key": key}
    try:
        cursor.execute(sql, tuple(named[name] for name in order) if order is not None
                       else named)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def experiment_state(connection: sa.Connection, experiment_id: str) -> dict[str, str]:
    """Digests of the experiment's row (:data:`EXPERIMENT_COLUMNS`) and tags as they are now."""
    number = int(experiment_id)
    row = _fetch(connection, "experiment", number)
    return {"experiment": record_digest(row[0]) if row else "",
            "tags": pairs_digest(_fetch(connection, "experiment_tags", number))}


def state_recorder(chain: str, kind: str, run_id: str | None,
                   experiment_id: str | None = None, touched: TouchedRows | None = None
                   ) -> Callable[[sa.Connection, dict[str, str] | None, int],
                                 dict[str, str]] | None:
    """The state digest to add to an event: a run's row, tags and params on its chain (moved
    from the previous state when the write says which rows it ``touched``), an experiment's
    row and tags on its chain; ``None`` for events that cannot change them (metric writes
    carry their own row digests) and for other chains."""
    if run_id and chain == run_chain(run_id):
        if kind in _NO_STATE:
            return None
        if touched is not None:
            return lambda connection, previous, length: moved_run_state(
                connection, run_id, previous, length, touched)
        return lambda connection, _previous, _length: run_state(connection, run_id)
    if experiment_id and experiment_id.isdigit() and chain == experiment_chain(experiment_id):
        return lambda connection, _previous, _length: experiment_state(connection,
                                                                       experiment_id)
    return None


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
