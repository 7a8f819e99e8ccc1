"""Prov sqlite stores get planner statistics: after large writes, on opening, before exports.

What a user notices: MLflow's history query on a big store uses the run's index (milliseconds
per call) instead of scanning the key across the whole store.
"""

from __future__ import annotations

import sqlite3

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from mlflow_prov import fast_read, sqlite_stats
from mlflow_prov.store import ProvTrackingStore

HISTORY_QUERY = ("EXPLAIN QUERY PLAN SELECT * FROM metrics WHERE run_uuid = 'r' AND key = 'k' "
                 "ORDER BY timestamp, step, value")


def _fill(uri: str, rows: int, runs: int = 10) -> None:
    """``rows`` metric rows over ``runs`` runs, 20 keys each, in batches of 1000."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("stats")
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(runs)]
    for offset in range(0, rows, 1000):
        client.log_batch(run_ids[offset // 1000 % runs],
                         metrics=[Metric(f"m{i % 20}", 0.5, i, i)
                                  for i in range(offset, offset + 1000)])


def _database(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "runs" / "mlflow.db")


def _plan(connection: sqlite3.Connection) -> str:
    return " ".join(row[-1] for row in connection.execute(HISTORY_QUERY))


@pytest.mark.slow  # writes 20,000 metric rows
def test_large_writes_leave_statistics_and_the_history_query_uses_the_run_index(
        tmp_path, prov_uri):
    _fill(prov_uri, sqlite_stats.CHECK_EVERY)
    with _database(tmp_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl='metrics'"
                                  ).fetchone()[0] > 0
        assert "index_metrics_run_uuid_key_step" in _plan(connection)
        assert not sqlite_stats.stale(connection)


@pytest.mark.slow  # writes 10,000 metric rows
def test_opening_a_store_without_statistics_analyses_it(tmp_path, prov_uri):
    _fill(prov_uri, sqlite_stats.MIN_ROWS)  # fewer rows than a check after writes needs
    with _database(tmp_path) as connection:
        assert sqlite_stats.stale(connection)
    ProvTrackingStore(prov_uri)
    with _database(tmp_path) as connection:
        assert not sqlite_stats.stale(connection)


@pytest.mark.slow  # writes 10,000 metric rows into each of two stores
def test_an_export_refreshes_stale_statistics_but_leaves_plain_stores_alone(
        tmp_path, prov_uri, sqlite_uri):
    _fill(prov_uri, sqlite_stats.MIN_ROWS)
    assert fast_read.refresh_statistics(prov_uri)
    assert not fast_read.refresh_statistics(prov_uri), "fresh statistics are kept"
    _fill(sqlite_uri, sqlite_stats.MIN_ROWS)
    assert not fast_read.refresh_statistics(sqlite_uri)
