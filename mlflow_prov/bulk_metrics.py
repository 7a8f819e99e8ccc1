"""MLflow's ``_log_metrics`` as two multi-row statements: the bulk path of ``log_batch``,
``log_metric`` and the async logging queue on sqlite and PostgreSQL.

Why: MLflow builds one ORM object per metric, flushes them through SQLAlchemy's unit of work
and then reads, locks and updates ``latest_metrics`` key by key; most of a batch's time is that
Python, not the database. Here the same rows go in as one multi-row ``INSERT`` into
``metrics`` and one multi-row upsert of ``latest_metrics``, on the write's own session (so the
journal event still commits with them, :mod:`mlflow_prov.store`).

What MLflow does, kept exactly (``SqlAlchemyStore._log_metrics_once``; the contract in
:mod:`mlflow_prov.compat` fails when MLflow changes it):

- every metric is checked by MLflow's own validator, named ``metrics[i]`` unless it is the only
  one, before the run is looked up, so the same call fails with the same message (once:
  ``log_batch`` has checked the very same list, the same way, before it calls
  ``_log_metrics``, and MLflow's second pass over it could not fail);
- metrics equal to an earlier one in the call are dropped; NaN is stored as 0 with ``is_nan``,
  +/-inf as +/-DBL_MAX (the store's ``sanitize_metric_value``);
- the run is looked up and refused (missing, deleted) as MLflow's writes do;
- ``latest_metrics`` takes, per key, the row with the largest ``(step, timestamp, value)``,
  and replaces the stored row only when that is strictly larger (ties keep the older row);
- a row that is already stored (its primary key) makes the insert fail: the transaction is
  rolled back and MLflow's own path runs instead, which skips the stored rows.

MySQL and other databases take MLflow's own path.
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

from mlflow_prov.compat import active_run_row, deadlock_retry, validate_metric

INSERTED_ROWS = "mlflow_prov.inserted_rows"  # session.info: rows written below the ORM
BULK_DIALECTS = frozenset({"sqlite", "postgresql"})
MAX_ROWS_PER_STATEMENT = 1000  # MLflow's MAX_METRICS_PER_BATCH: one statement per log_batch
_COLUMNS = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass
class InsertedMetric:
    """One ``metrics`` row as written here, with ``SqlMetric``'s attribute names (what the
    journal's metric digests read, :func:`mlflow_prov.stored_rows.metric_rows_digest`)."""

    key: str
    value: Any
    timestamp: Any
    step: Any
    is_nan: bool
    run_uuid: str

    def values(self) -> tuple[Any, ...]:
        return self.key, self.value, self.timestamp, self.step, self.is_nan, self.run_uuid

    def order(self) -> tuple[Any, Any, Any]:
        """What MLflow compares to choose the latest value of a key."""
        return self.step, self.timestamp, self.value


_checked = threading.local()  # the metrics list log_batch has validated, on this thread


class BulkMetrics:
    """Tracking-store mixin: ``_log_metrics`` in two statements (see the module docstring)."""

    engine: sa.engine.Engine
    ManagedSessionMaker: Callable[..., AbstractContextManager[Any]]

    def log_batch(self, run_id, metrics, params, tags):
        """MLflow's ``log_batch``, noting the metrics list it validates before it calls
        ``_log_metrics`` with it (so that list is not validated a second time)."""
        previous = getattr(_checked, "metrics", None)
        _checked.metrics = metrics
        try:
            return super().log_batch(run_id, metrics, params, tags)
        finally:
            _checked.metrics = previous

    def _log_metrics(self, run_id, metrics):
        if not _bulk_capable(self.engine.dialect):
            return super()._log_metrics(run_id, metrics)
        if deadlock_retry(self, self._log_metrics_in_bulk, run_id, metrics):
            return None
        return super()._log_metrics(run_id, metrics)  # a row already stored: MLflow skips it

    def _log_metrics_in_bulk(self, run_id: str, metrics: list[Any]) -> bool:
        """Insert the metrics; False, with nothing written, when one is already stored (or,
        on PostgreSQL, a step or timestamp is not an integer: MLflow's path rounds it)."""
        rows = _validated_rows(self, run_id, metrics)
        if self.engine.dialect.name == "postgresql" and not all(map(_integral_order, rows)):
            return False
        with self.ManagedSessionMaker(read_only=False) as session:
            active_run_row(self, session, run_id)
            connection = session.connection()
            per_statement = _rows_per_statement(connection)
            try:
                for start in range(0, len(rows), per_statement):
                    chunk = rows[start:start + per_statement]
                    connection.exec_driver_sql(*_insert_metrics(connection.dialect, chunk))
                    connection.exec_driver_sql(*_raise_latest(connection.dialect, chunk))
            except sa.exc.IntegrityError:
                session.rollback()
                return False
            session.info.setdefault(INSERTED_ROWS, []).extend(rows)
        return True


def _validated_rows(store: Any, run_id: str, metrics: list[Any]) -> list[InsertedMetric]:
    rows = []
    seen: set[Any] = set()
    single = len(metrics) == 1
    checked = metrics is getattr(_checked, "metrics", None)
    for index, metric in enumerate(metrics):
        if not checked:
            validate_metric(metric.key, metric.value, metric.timestamp, metric.step,
                            "" if single else f"metrics[{index}]")
        if metric not in seen:
            is_nan, value = store.sanitize_metric_value(metric.value)
            rows.append(InsertedMetric(metric.key, value, metric.timestamp, metric.step,
                                       is_nan, run_id))
        seen.add(metric)
    return rows


def _bulk_capable(dialect: sa.Dialect) -> bool:
    return dialect.name in BULK_DIALECTS and dialect.paramstyle in _PLACEHOLDERS


def _rows_per_statement(connection: sa.Connection) -> int:
    """As many rows as one statement may bind (old sqlite builds allow 999 parameters)."""
    driver = connection.connection.driver_connection
    getlimit = getattr(driver, "getlimit", None)
    if connection.dialect.name != "sqlite" or getlimit is None:
        return MAX_ROWS_PER_STATEMENT
    import sqlite3

    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(MAX_ROWS_PER_STATEMENT, limit // len(_COLUMNS)))


def _integral_order(row: InsertedMetric) -> bool:
    return isinstance(row.step, numbers.Integral) and isinstance(row.timestamp, numbers.Integral)


def _column_list() -> str:
    return ", ".join('"key"' if name == "key" else name for name in _COLUMNS)


def _rows_source(dialect: sa.Dialect, rows: list[InsertedMetric]
                 ) -> tuple[str, tuple[Any, ...]]:
    """The rows as an INSERT's source, and its parameters. PostgreSQL takes one array per
    column through ``unnest``: a short statement whatever the rows' number (psycopg parses a
    statement's placeholders in Python, tens of milliseconds for 6,000 of them), with each
    value as the column stores it. sqlite takes a multi-row ``VALUES``."""
    if dialect.name == "postgresql":
        arrays = ([row.key for row in rows], [float(row.value) for row in rows],
                  [int(row.timestamp) for row in rows], [int(row.step) for row in rows],
                  [bool(row.is_nan) for row in rows], [row.run_uuid for row in rows])
        return _UNNEST, arrays
    mark = _PLACEHOLDERS[dialect.paramstyle]
    row_marks = "(" + ", ".join([mark] * len(_COLUMNS)) + ")"
    return ("VALUES " + ", ".join([row_marks] * len(rows)),
            tuple(value for row in rows for value in row.values()))


_UNNEST = ("SELECT * FROM unnest(%s::varchar[], %s::float8[], %s::bigint[], %s::bigint[], "
           "%s::boolean[], %s::varchar[])")


def _insert_metrics(dialect: sa.Dialect, rows: list[InsertedMetric]
                    ) -> tuple[str, tuple[Any, ...]]:
    source, parameters = _rows_source(dialect, rows)
    return f"INSERT INTO {SqlMetric.__tablename__} ({_column_list()}) {source}", parameters


def _raise_latest(dialect: sa.Dialect, rows: list[InsertedMetric]
                  ) -> tuple[str, tuple[Any, ...]]:
    """One upsert of ``latest_metrics``: per key the batch's largest row (first one on a
    tie, as MLflow's loop keeps it), written over the stored row only when strictly larger.
    Keys go in sorted order, the order MLflow locks them in (no deadlock between writers)."""
    best: dict[str, InsertedMetric] = {}
    for row in rows:
        current = best.get(row.key)
        if current is None or row.order() > current.order():
            best[row.key] = row
    source, parameters = _rows_source(dialect, [best[key] for key in sorted(best)])
    table = SqlLatestMetric.__tablename__
    sql = (f"INSERT INTO {table} ({_column_list()}) {source} "
           f'ON CONFLICT ("key", run_uuid) DO UPDATE SET value = excluded.value, '
           "timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan "
           "WHERE (excluded.step, excluded.timestamp, excluded.value) > "
           f"({table}.step, {table}.timestamp, {table}.value)")
    return sql, parameters
