"""Planner statistics for prov sqlite stores: ``ANALYZE`` when they are missing or stale.

Why: sqlite plans queries from ``sqlite_stat1``, which only ``ANALYZE`` writes, and MLflow
never runs it. Without statistics MLflow's history query (``WHERE run_uuid=? AND key=?``)
picks the primary-key index and scans the key across every run of the store: 3.56 ms per
call instead of 0.011 ms on a 1 M-point store, in the UI as in exports.

When: on opening a store, every :data:`CHECK_EVERY` metric rows a process writes, and before
an export; each time only if the ``metrics`` table holds at least :data:`MIN_ROWS` rows and
has grown :data:`GROWTH` times since the statistics were taken (two cheap indexed reads).
``ANALYZE`` reads every index once (about a second per million metric rows here); since it
runs only when the table has doubled, that is about 1 µs per row written. Sampled statistics
(``PRAGMA analysis_limit``) were tried and are not enough: with them sqlite still prefers the
primary key's covering index for MLflow's history query.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

MIN_ROWS = 10_000
GROWTH = 2
CHECK_EVERY = 20_000

_logger = logging.getLogger(__name__)


def stale(connection: sqlite3.Connection) -> bool:
    """Whether ``metrics`` is big enough for plans to matter and has outgrown its statistics."""
    rows = connection.execute("SELECT MAX(rowid) FROM metrics").fetchone()[0] or 0
    if rows < MIN_ROWS:
        return False
    has_stats = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_stat1'").fetchone()
    if not has_stats:
        return True
    stat = connection.execute(
        "SELECT stat FROM sqlite_stat1 WHERE tbl='metrics' AND idx IS NOT NULL").fetchone()
    analysed = int(stat[0].split()[0]) if stat else 0
    return rows > GROWTH * analysed


def refresh_if_stale(connection: sqlite3.Connection) -> bool:
    """``ANALYZE`` when :func:`stale`; True if it ran. A busy or read-only database
    is left as it is: statistics speed reads up, they never decide whether a write succeeds."""
    try:
        if not stale(connection):
            return False
        connection.execute("ANALYZE")
        connection.commit()
    except sqlite3.Error as error:  # locked, read-only file, no MLflow tables yet
        _logger.debug("sqlite statistics not refreshed: %s", error)
        return False
    return True


def refresh_database(path: str) -> bool:
    """:func:`refresh_if_stale` on the sqlite file at ``path`` through a connection of its own
    (exports call it before reading)."""
    connection = sqlite3.connect(path, timeout=5)
    try:
        return refresh_if_stale(connection)
    finally:
        connection.close()


class FreshStatistics:
    """Store mixin: counts metric rows written and refreshes statistics every
    :data:`CHECK_EVERY` of them, after MLflow's write has committed (never inside it)."""

    db_type: str
    engine: Any

    def _init_statistics(self) -> None:
        self._rows_since_check = 0
        self._statistics_lock = threading.Lock()
        if self.db_type == "sqlite":
            self._refresh_statistics()

    def _refresh_statistics(self) -> None:
        connection = self.engine.raw_connection()
        try:
            refresh_if_stale(connection.driver_connection)
        finally:
            connection.close()

    def _count_metric_rows(self, written: int) -> None:
        if self.db_type != "sqlite":
            return
        with self._statistics_lock:
            self._rows_since_check += written
            due = self._rows_since_check >= CHECK_EVERY
            if due:
                self._rows_since_check = 0
        if due:
            self._refresh_statistics()

    def log_batch(self, run_id, metrics, params, tags):
        result = super().log_batch(run_id, metrics, params, tags)
        self._count_metric_rows(len(metrics or ()))
        return result

    def log_metric(self, run_id, metric):
        result = super().log_metric(run_id, metric)
        self._count_metric_rows(1)
        return result
