"""The export's fast path (SQL) and its client path (``get_metric_history``) agree.

Same run, same records: every series (points, order, context, source, decoded infinities) and
every summary (count, ranges, NaN-free min/max, MLflow's latest value) must be identical,
so a document does not depend on which path read the store.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from test_fast_read import AWKWARD, T0

from exporters import collect, fast_metrics
from exporters.options import ExportOptions
from exporters.privacy import Pseudonymizer

PREFIXES = ExportOptions().context_prefixes


@pytest.fixture(params=["prov_uri", pytest.param("prov_postgres_uri", marks=pytest.mark.slow)])
def run_record(request: pytest.FixtureRequest):
    """A run with awkward points, keys with context prefixes, and its exporter record."""
    uri = request.getfixturevalue(request.param)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("fast-export")
    run_id = client.create_run(experiment_id).info.run_id
    for key in ("train/loss", "val/acc", "system/cpu_utilization_percentage", "plain"):
        client.log_batch(run_id, metrics=[Metric(key, v, t, s) for v, t, s in AWKWARD])
    client.log_metric(run_id, "only_nan", math.nan, T0, 0)
    run = client.get_run(run_id)
    record = collect.run_record(client, run, options=ExportOptions(),
                                pseudonymize=Pseudonymizer(False), models=[], history=[])
    return client, record


def test_series_equal_the_client_path(run_record):
    client, record = run_record
    reader = fast_metrics.reader_for(client.tracking_uri)
    assert reader is not None
    slow = {s.key: s for key in record.metric_keys
            for s in collect.metric_series(client, record, key, PREFIXES)}
    fast = {s.key: s for s in fast_metrics.run_series(reader, record, PREFIXES)}
    assert sorted(fast) == sorted(slow)
    for key, expected in slow.items():
        got = fast[key]
        assert (got.context, got.source, got.dataset_digest, got.model_id) == (
            expected.context, expected.source, expected.dataset_digest, expected.model_id)
        np.testing.assert_array_equal(got.steps, expected.steps)
        np.testing.assert_array_equal(got.timestamps_ms, expected.timestamps_ms)
        np.testing.assert_array_equal(got.values, expected.values)
    assert np.isinf(fast["plain"].values).sum() == 2


def test_summaries_equal_the_client_path(run_record):
    client, record = run_record
    reader = fast_metrics.reader_for(client.tracking_uri)
    slow = [collect.summarise(s, None) for key in record.metric_keys
            for s in collect.metric_series(client, record, key, PREFIXES)]
    fast = fast_metrics.run_summaries(reader, record, PREFIXES)
    assert [s.key for s in fast] == [s.key for s in slow]
    for got, expected in zip(fast, slow, strict=True):
        assert repr(got) == repr(expected)  # repr: NaN fields compare equal as text
