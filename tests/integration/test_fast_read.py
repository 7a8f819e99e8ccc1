"""The fast SQL read path returns exactly what MLflow's ``get_metric_history`` returns.

Every series of a run with awkward points (NaN, +/-inf, duplicate steps, equal timestamps,
out-of-order logging, a point logged twice) is read both ways, on sqlite (plain and prov),
PostgreSQL and MySQL, and compared element for element, in order. Summaries are compared with
what the points and MLflow's ``latest_metrics`` say.
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient
from mlflow.entities import Metric

from mlflow_prov import fast_read, series_summaries

T0 = 1_700_000_000_000
AWKWARD = [  # (value, timestamp, step)
    (1.0, T0 + 5, 3), (math.nan, T0 + 5, 3), (math.inf, T0 + 5, 3), (-math.inf, T0 + 1, 7),
    (2.5, T0 + 1, 7), (2.5, T0 + 1, 8), (-1.0, T0, 0), (0.5, T0 + 9, 1), (0.25, T0 + 9, 1),
    (math.nan, T0 + 2, 2), (7.0, T0 + 3, -4), (3.0, T0 + 5, 3),
]


def _log_awkward_run(uri: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("fast-read")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(run_id, metrics=[Metric("awkward", v, t, s) for v, t, s in AWKWARD])
    for value, timestamp, step in reversed(AWKWARD[:4]):  # again, one call each
        client.log_metric(run_id, "awkward", value, timestamp, step)
    client.log_metric(run_id, "only_nan", math.nan, T0, 0)
    client.log_metric(run_id, "only_nan", math.nan, T0 + 1, 0)
    client.log_batch(run_id, metrics=[Metric("long", float(i % 17) / 3, T0 + i // 4, i // 2)
                                      for i in range(2500)])
    for key in ("B", "a", "train/loss"):
        client.log_metric(run_id, key, 1.5, T0, 1)
    return client, run_id


@pytest.fixture(params=["sqlite_uri", "prov_uri",  # the database servers: slow
                        pytest.param("prov_postgres_uri", marks=pytest.mark.slow),
                        pytest.param("prov_mysql_uri", marks=pytest.mark.slow)])
def store_uri(request: pytest.FixtureRequest) -> str:
    """One fresh store per backend, plain MLflow sqlite included."""
    return request.getfixturevalue(request.param)


def _assert_same(series: fast_read.RawSeries, history: list[Metric]) -> None:
    expected_values = np.array([m.value for m in history], dtype=np.float64)
    assert series.steps.tolist() == [m.step for m in history], series.key
    assert series.timestamps_ms.tolist() == [m.timestamp for m in history], series.key
    np.testing.assert_array_equal(series.values, expected_values, err_msg=series.key)


def test_every_series_equals_get_metric_history(store_uri):
    client, run_id = _log_awkward_run(store_uri)
    reader = fast_read.open_reader(store_uri)
    assert reader is not None, f"no fast path for {store_uri}"
    keys = sorted(client.get_run(run_id).data.metrics)
    by_run = {series.key: series for series in reader.run_series(run_id)}
    assert sorted(by_run) == keys
    for key in keys:
        history = client.get_metric_history(run_id, key)
        _assert_same(reader.series(run_id, key), history)
        _assert_same(by_run[key], history)


def test_summaries_match_the_points_and_latest_metrics(store_uri):
    client, run_id = _log_awkward_run(store_uri)
    latest = client.get_run(run_id).data.metrics
    summaries = {s.key: s for s in fast_read.open_reader(store_uri).summaries(run_id)}
    assert sorted(summaries) == sorted(latest)
    for key, summary in summaries.items():
        history = client.get_metric_history(run_id, key)
        numbers = [m.value for m in history if not math.isnan(m.value)]
        assert summary.count == len(history)
        assert (summary.first_step, summary.last_step) == (min(m.step for m in history),
                                                           max(m.step for m in history))
        assert summary.first_timestamp_ms == min(m.timestamp for m in history)
        assert summary.last_timestamp_ms == max(m.timestamp for m in history)
        if numbers:
            assert (summary.min, summary.max) == (min(numbers), max(numbers))
        else:
            assert math.isnan(summary.min) and math.isnan(summary.max)
        assert summary.last == latest[key] or (math.isnan(summary.last)
                                               and math.isnan(latest[key]))


def test_no_fast_path_where_the_client_api_must_answer(tmp_path, sqlite_uri):
    assert fast_read.open_reader("http://127.0.0.1:5000") is None
    assert fast_read.open_reader(f"file://{tmp_path}/mlruns") is None
    assert fast_read.open_reader(f"sqlite:///{tmp_path / 'missing.db'}") is None
    MlflowClient(tracking_uri=sqlite_uri).create_experiment("schema")
    path = sqlite_uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    assert fast_read.open_reader(sqlite_uri) is None, "an unknown schema must fall back"


def _stored_and_aggregated(uri: str, run_id: str) -> tuple[list | None, list]:
    reader = fast_read.open_reader(uri)
    with reader._cursor() as cursor:
        stored = reader._stored_summaries(cursor, run_id)
        cursor.execute(reader._sql(fast_read._SUMMARY_SQL), (run_id,))
        aggregated = cursor.fetchall()
    return stored, aggregated


def test_prov_sqlite_keeps_summaries_that_equal_the_aggregates(prov_uri, tmp_path):
    _client, run_id = _log_awkward_run(prov_uri)
    stored, aggregated = _stored_and_aggregated(prov_uri, run_id)
    assert stored is not None, "a prov sqlite store keeps per-series summaries"
    assert repr(stored) == repr(aggregated)  # repr: NaN-free, None for all-NaN series
    with sqlite3.connect(tmp_path / "runs" / "mlflow.db") as connection:
        connection.execute("DELETE FROM metrics WHERE key = 'long' AND step < 10")
    stored, _ = _stored_and_aggregated(prov_uri, run_id)
    assert stored is None, "a series with deleted points is aggregated again"
    by_key = {s.key: s for s in fast_read.open_reader(prov_uri).summaries(run_id)}
    assert by_key["long"].count == 2500 - 20


def test_a_plain_store_opened_as_prov_is_back_filled(sqlite_uri):
    _client, run_id = _log_awkward_run(sqlite_uri)
    prov_uri = "prov+" + sqlite_uri
    MlflowClient(tracking_uri=prov_uri).get_run(run_id)  # opens the store: installs
    stored, aggregated = _stored_and_aggregated(prov_uri, run_id)
    assert stored is not None and repr(stored) == repr(aggregated)


def test_summaries_are_rebuilt_when_their_triggers_are_gone(prov_uri, tmp_path):
    _client, run_id = _log_awkward_run(prov_uri)
    with sqlite3.connect(tmp_path / "runs" / "mlflow.db") as connection:
        connection.execute(f"DROP TRIGGER {series_summaries.SUMMARY_TABLE}_delete")
        connection.execute("DELETE FROM metrics WHERE key = 'long' AND step >= 100")
    assert series_summaries.install(sa.create_engine(f"sqlite:///{tmp_path}/runs/mlflow.db"))
    stored, aggregated = _stored_and_aggregated(prov_uri, run_id)
    assert stored is not None and repr(stored) == repr(aggregated)


def _catch_up_steps(database: str, run_id: str) -> int:
    """sqlite virtual-machine steps one catch-up of the run's summaries takes (rows read)."""
    engine = sa.create_engine(f"sqlite:///{database}")
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    try:
        with engine.connect() as connection:
            connection.connection.driver_connection.set_progress_handler(count, 1)
            series_summaries.catch_up(connection, run_id)
            connection.rollback()
    finally:
        engine.dispose()
    return steps[0]


def test_catching_up_reads_only_the_rows_above_the_mark(prov_uri, tmp_path):
    """The statement that keeps the summaries costs the same on a run of 1,000 points as on
    one of 4,000, once ANALYZE has taught sqlite that one run is most of the table (then it
    would rather read the run's rows through the (run, key, step) index)."""
    client = MlflowClient(tracking_uri=prov_uri)
    run_id = client.create_run(client.create_experiment("marks")).info.run_id
    database = str(tmp_path / "runs" / "mlflow.db")
    steps = []
    for batches in (1, 3):
        for batch in range(batches):
            client.log_batch(run_id, metrics=[Metric(f"k{i % 5}", i / 3, T0 + batch, i)
                                              for i in range(1000)])
        with sqlite3.connect(database) as connection:
            connection.execute("ANALYZE")
        steps.append(_catch_up_steps(database, run_id))
    assert steps[0] == steps[1], steps
