"""Fast read paths for MLflow's SQL stores: metric series and per-series summaries in a few
indexed queries, straight into numpy arrays.

Why: ``MlflowClient.get_metric_history`` builds one ORM object and one entity per point
(about 30 k points/s on a small machine), while a raw indexed read of the same rows runs at
0.7-1 M rows/s. An export reads every point of every series, so this is its cost.

What it reads: MLflow's ``metrics`` and ``latest_metrics`` tables, whose shape has not changed
since migration ``c48cb773bb87``. The store's schema version (the ``alembic_version`` table)
must be one of :data:`KNOWN_SCHEMAS`; on any other version, on ``http(s)://`` servers and on
any URI that is not a SQL store, :func:`open_reader` returns ``None`` and callers use the
client API. Values are returned exactly as ``get_metric_history`` returns them: NaN for
``is_nan`` rows, +/-inf as the +/-DBL_MAX MLflow stored, points in MLflow's order
(timestamp, step, value).

Read API (exporters may import it, as they import the journal's): :func:`open_reader`,
:class:`MetricReader`, :class:`RawSeries`, :class:`SeriesSummary`, :data:`KNOWN_SCHEMAS`,
:func:`refresh_statistics`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from mlflow_prov.digests import stored_integer
from mlflow_prov.memory_store import is_memory_database
from mlflow_prov.series_summaries import (
    CHANGED,
    SUMMARY_TABLE,
    UNACCOUNTED_KEYS_SQL,
    byte_ordered,
    has_marks,
)

# MLflow's migrations from the last one that touched ``metrics``/``latest_metrics``
# (c48cb773bb87) to the head of MLflow 3.17.2 (dc11669786a5): checked, same row shape.
KNOWN_SCHEMAS = frozenset({
    "dc11669786a5", "75868b020152", "b7e2c1a4d9f3", "17e22815139b", "1971f2d9a75b",
    "6f8d9c3b2a1e", "c3d9e7f1a2b4", "c1d2e3f4a5b6", "a8b9c0d1e2f3", "b7e4c1a90f23",
    "89d3d66ed43f", "da6fb0208061", "7d34483879f0", "ae8bbe7743c9", "a5b4c3d2e1f0",
    "c3d6457b6d8a", "76601a5f987d", "e1f2a3b4c5d6", "1b5f0d9ad7c1", "c8d9e0f1a2b3",
    "d0e1f2a3b4c5", "d3e4f5a6b7c8", "2c33131f4dae", "c9d4e5f6a7b8", "5d2d30f0abce",
    "b7c8d9e0f1a2", "1bd49d398cd23", "bf29a5ff90ea", "3da73c924c2f", "71994744cf8e",
    "534353b11cbc", "1a0cddfcaa16", "de4033877273", "a1b2c3d4e5f6", "770bee3ae1dd",
    "cbc13b556ace", "bda7b8c39065", "6953534de441", "400f98739977", "0584bdc529eb",
    "f5a4f2784254", "4465047574b1", "5b0e9adcef9c", "867495a8f9d4", "acf3f17fdcc7",
    "2d6e25af4d3e", "7f2a7d5fae7d", "3500859a5d39", "97727af70f4d", "cc1f77228345",
    "0c779009ac13", "bd07f7e963c5", "c48cb773bb87",
})
SQL_BACKENDS = ("sqlite", "postgresql", "mysql")
FETCH_ROWS = 20_000
_POINT = np.dtype([("timestamp", "<i8"), ("step", "<i8"), ("value", "<f8"), ("is_nan", "?")])
_KEYED_POINT = np.dtype([("key", object), *_POINT.descr])

# MLflow's own history order (``SqlAlchemyStore.get_metric_history``), keyed by run then key;
# ``is_nan`` last so that a NaN and a 0.0 logged at the same time and step come back in one
# stable order on every backend.
_SERIES_SQL = ("SELECT timestamp, step, value, is_nan FROM metrics "
               "WHERE run_uuid = {p} AND {key} = {p} ORDER BY timestamp, step, value, is_nan")
_RUN_SQL = ("SELECT {key}, timestamp, step, value, is_nan FROM metrics "
            "WHERE run_uuid = {p} ORDER BY {key}, timestamp, step, value, is_nan")
_SUMMARY_SQL = (
    "SELECT m.{key}, COUNT(*), MIN(m.step), MAX(m.step), MIN(m.timestamp), MAX(m.timestamp), "
    "MIN(CASE WHEN m.is_nan THEN NULL ELSE m.value END), "
    "MAX(CASE WHEN m.is_nan THEN NULL ELSE m.value END) "
    "FROM metrics m WHERE m.run_uuid = {p} GROUP BY m.{key} ORDER BY m.{key}")
# Kept by prov sqlite stores (mlflow_prov.series_summaries): no point is read. A series with
# rows not yet folded into its summary is left out, so the run is aggregated from its rows.
_STORED_SUMMARY_SQL = (
    "SELECT {key}, count, first_step, last_step, first_timestamp, last_timestamp, min_value, "
    "max_value FROM " + SUMMARY_TABLE + " WHERE run_uuid = {p} AND stale <> "
    + str(CHANGED) + " AND {key} NOT IN (" + UNACCOUNTED_KEYS_SQL + ") ORDER BY {key}")
_LATEST_SQL = ("SELECT {key}, value, is_nan, step, timestamp FROM latest_metrics "
               "WHERE run_uuid = {p}")
_LAST_POINT_SQL = ("SELECT value, is_nan, step, timestamp FROM metrics "
                   "WHERE run_uuid = {p} AND {key} = {p} "
                   "ORDER BY step DESC, timestamp DESC, value DESC LIMIT 1")


@dataclass(frozen=True, eq=False)
class RawSeries:
    """All points of one metric key of one run, in ``get_metric_history`` order, with values
    as MLflow returns them (NaN restored, infinities still +/-DBL_MAX)."""

    key: str
    steps: np.ndarray  # int64
    timestamps_ms: np.ndarray  # int64
    values: np.ndarray  # float64


@dataclass(frozen=True)
class SeriesSummary:
    """One key's aggregates, computed by the database without reading its points.

    ``min``/``max`` skip NaN (NaN when every value is NaN); ``last*`` is the point MLflow's
    ``latest_metrics`` holds (largest step, then timestamp, then value). Values are raw:
    +/-DBL_MAX for infinities, as in :class:`RawSeries`.
    """

    key: str
    count: int
    first_step: int
    last_step: int
    first_timestamp_ms: int
    last_timestamp_ms: int
    min: float
    max: float
    last: float
    last_step_logged: int
    last_timestamp_logged_ms: int


class MetricReader:
    """Reads one SQL store's metric rows through a raw DB-API connection (stdlib sqlite3 for
    sqlite, the SQLAlchemy engine's driver connection for PostgreSQL and MySQL)."""

    def __init__(self, connect: Any, paramstyle: str, quote: str = '"') -> None:
        self._connect = connect
        self._p = "?" if paramstyle == "qmark" else "%s"
        self._key = f"{quote}key{quote}"  # a reserved word on MySQL
        self._sqlite = paramstyle == "qmark"  # stdlib sqlite3: the only qmark driver here
        self._local = threading.local()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on this thread's connection; the read transaction ends with the block, so
        no snapshot or lock outlives a call (PostgreSQL would hold one open otherwise)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            connection.rollback()

    def _sql(self, template: str) -> str:
        return template.format(p=self._p, key=self._key)

    def series(self, run_id: str, key: str) -> RawSeries:
        """One key's history: the same rows, in the same order, as ``get_metric_history``."""
        with self._cursor() as cursor:
            cursor.execute(self._sql(_SERIES_SQL), (run_id, key))
            points = _points(cursor.fetchall())
        return _raw_series(key, points)

    def run_series(self, run_id: str) -> Iterator[RawSeries]:
        """Every key of a run from one query, one series at a time (memory: one series).

        Keys come in the database's collation order; a series ends where the key column
        changes, so points logged while the export reads cannot shift one series into another.
        """
        with self._cursor() as cursor:
            cursor.execute(self._sql(_RUN_SQL), (run_id,))
            key: str | None = None
            parts: list[np.ndarray] = []
            while rows := cursor.fetchmany(FETCH_ROWS):
                chunk = np.array(list(rows), dtype=_KEYED_POINT)
                keys = chunk["key"]
                starts = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(chunk)]
                for start, end in zip(starts, starts[1:], strict=False):
                    if keys[start] != key and parts:
                        yield _raw_series(str(key), np.concatenate(parts))
                        parts = []
                    key = keys[start]
                    parts.append(chunk[start:end])
            if parts:
                yield _raw_series(str(key), np.concatenate(parts))

    def summaries(self, run_id: str) -> list[SeriesSummary]:
        """Per-key count, step/time range, NaN-free min/max and MLflow's latest value, from
        SQL aggregates: the cost grows with the number of series, not of points read here."""
        with self._cursor() as cursor:
            aggregates = self._stored_summaries(cursor, run_id)
            if aggregates is None:
                cursor.execute(self._sql(_SUMMARY_SQL), (run_id,))
                aggregates = cursor.fetchall()
            cursor.execute(self._sql(_LATEST_SQL), (run_id,))
            latest = {row[0]: row[1:] for row in cursor.fetchall()}
            for key in [row[0] for row in aggregates if row[0] not in latest]:
                cursor.execute(self._sql(_LAST_POINT_SQL), (run_id, key))
                latest[key] = cursor.fetchone()
        result = []
        for key, count, step0, step1, time0, time1, low, high in aggregates:
            value, is_nan, step, timestamp = latest[key]
            result.append(SeriesSummary(
                key=key, count=int(count), first_step=stored_integer(step0),
                last_step=stored_integer(step1), first_timestamp_ms=stored_integer(time0),
                last_timestamp_ms=stored_integer(time1),
                min=_number(low), max=_number(high),
                last=float("nan") if is_nan else float(value),
                last_step_logged=stored_integer(step),
                last_timestamp_logged_ms=stored_integer(timestamp)))
        return result

    def _stored_summaries(self, cursor: Any, run_id: str) -> list[tuple] | None:
        """The kept summaries of every key of the run, or None when the store keeps
        none or one of the run's keys has none (stale, or logged before they existed)."""
        if not self._sqlite:
            return None
        if not has_marks(cursor):
            return None
        cursor.execute(self._sql(_STORED_SUMMARY_SQL), (run_id, run_id, run_id))
        stored = cursor.fetchall()
        if any(byte_ordered(*row[2:6]) for row in stored):
            return None  # a numpy step kept as a BLOB: its MIN/MAX are byte order, not number
        cursor.execute(self._sql("SELECT COUNT(*) FROM latest_metrics WHERE run_uuid = {p}"),
                       (run_id,))
        return stored if len(stored) == cursor.fetchone()[0] else None

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _points(rows: Any) -> np.ndarray:
    """Rows (a list, or a tuple from PyMySQL, which numpy would read as one record) as points."""
    return np.array(list(rows), dtype=_POINT) if rows else np.empty(0, dtype=_POINT)


def _raw_series(key: str, points: np.ndarray) -> RawSeries:
    values = points["value"].copy()
    values[points["is_nan"]] = np.nan
    return RawSeries(key=key, steps=points["step"].copy(),
                     timestamps_ms=points["timestamp"].copy(), values=values)


_readers: dict[str, MetricReader] = {}
_readers_lock = threading.Lock()


def database_uri(tracking_uri: str | None) -> str | None:
    """The SQL database behind a tracking URI (``prov``, ``prov+…``, ``sqlite:``,
    ``postgresql:``, ``mysql:``), or ``None`` for anything else (``http(s):``, files)."""
    if not tracking_uri:
        return None
    scheme = urlsplit(tracking_uri).scheme.lower()
    if scheme.partition("+")[0] == "prov":
        from mlflow_prov.uri import parse_prov_uri

        return parse_prov_uri(tracking_uri).db_uri
    if scheme.partition("+")[0] in SQL_BACKENDS:
        return tracking_uri
    return None


def refresh_statistics(tracking_uri: str | None) -> bool:
    """Before a big read of a prov sqlite store: ``ANALYZE`` it if its planner statistics are
    missing or stale (:mod:`mlflow_prov.sqlite_stats`), so MLflow's own queries pick the
    right index too. Other stores are left alone; True if statistics were refreshed."""
    if not tracking_uri or urlsplit(tracking_uri).scheme.lower().partition("+")[0] != "prov":
        return False
    db_uri = database_uri(tracking_uri)
    if db_uri is None or not db_uri.startswith("sqlite:///") or is_memory_database(db_uri):
        return False
    from mlflow_prov.sqlite_stats import refresh_database

    return refresh_database(db_uri.removeprefix("sqlite:///"))


def open_reader(tracking_uri: str | None) -> MetricReader | None:
    """A reader for the store behind ``tracking_uri``, or ``None`` when the fast path does not
    apply (not a SQL store, no MLflow tables, or a schema version not in
    :data:`KNOWN_SCHEMAS`): the caller then reads through ``MlflowClient``. Cached per
    database, so an export opens one connection per thread however many runs it reads."""
    db_uri = database_uri(tracking_uri)
    if db_uri is None:
        return None
    with _readers_lock:
        reader = _readers.get(db_uri)
        if reader is None:
            reader = _build_reader(db_uri)
            if reader is not None:  # a store created later gets its reader then
                _readers[db_uri] = reader
        return reader


def _build_reader(db_uri: str) -> MetricReader | None:
    import sqlalchemy as sa

    url = sa.engine.make_url(db_uri)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or is_memory_database(db_uri):
            return None
        path = url.database

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

        reader = MetricReader(connect, "qmark")
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
        quote = "`" if url.get_backend_name() == "mysql" else '"'
        reader = MetricReader(lambda: engine.raw_connection(), "format", quote)
    return reader if _schema_known(reader) else None


def _schema_known(reader: MetricReader) -> bool:
    """Whether the store's MLflow schema is one whose metric tables this module reads."""
    try:
        with reader._cursor() as cursor:
            cursor.execute("SELECT version_num FROM alembic_version")
            versions = {row[0] for row in cursor.fetchall()}
    except Exception:  # no table, no file, refused, any driver: the client API reports it
        reader.close()
        return False
    if versions and versions <= KNOWN_SCHEMAS:
        return True
    reader.close()
    return False
