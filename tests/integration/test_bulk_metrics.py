"""The prov store's bulk metric path (``mlflow_prov.bulk_metrics``) answers exactly as MLflow.

The same awkward metric writes (duplicates inside a batch and of stored rows, NaN and +/-inf,
ties on step and timestamp that decide ``latest_metrics``, numpy numbers, invalid metrics at
some index, a finished and a deleted run, LoggedModel metrics) are played against plain MLflow
and a prov store; every outcome a user can see (errors word for word, histories, the run's
latest metrics, the LoggedModel's metrics) must be the same, and the prov store must still
verify, and still notice a value edited behind its back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from exporters.cli import main
from mlflow_prov.uri import parse_prov_uri

T0 = 1_700_000_000_000
KEYS = ("loss", "acc", "nan", "inf", "tie")

Write = Callable[[MlflowClient, dict[str, str]], Any]


def _batch(client: MlflowClient, ids: dict[str, str]) -> None:
    """1,000 metrics over a few keys, with duplicates, NaN/inf and ties."""
    metrics = [Metric(KEYS[i % 3], i / 7, T0 + i, i // 3) for i in range(990)]
    metrics += [Metric("loss", 1 / 7, T0 + 3, 1)] * 3  # equal to metrics[3]: dropped
    metrics += [Metric("nan", float("nan"), T0, 400), Metric("nan", 2.0, T0, 400),
                Metric("inf", float("inf"), T0, 401), Metric("inf", float("-inf"), T0, 401),
                Metric("tie", 0.5, T0, 9), Metric("tie", 0.25, T0, 9), Metric("tie", 0.5, T0, 9)]
    client.log_batch(ids["run"], metrics=metrics)


WRITES: dict[str, Write] = {
    "a batch of 1,000": _batch,
    "a stored row again, with new ones": lambda client, ids: client.log_batch(
        ids["run"], metrics=[Metric("loss", 0.0, T0, 0), Metric("loss", 9.0, T0 + 5000, 999)]),
    "latest kept on a smaller step": lambda client, ids: client.log_batch(
        ids["run"], metrics=[Metric("acc", 100.0, T0 + 9999, 3)]),
    "latest on an equal tuple keeps the older row": lambda client, ids: client.log_batch(
        ids["run"], metrics=[Metric("tie", 0.5, T0, 9)]),
    "a NaN tying the batch's 0.0 and then the stored 0.0": lambda client, ids: [
        client.log_batch(ids["run"], metrics=[Metric("zero", 0.0, T0, 5),
                                              Metric("zero", float("nan"), T0, 5),
                                              Metric("stored", 0.0, T0, 5)]),
        client.log_metric(ids["run"], "stored", float("nan"), timestamp=T0, step=5)],
    "NaN after a number at the same step": lambda client, ids: client.log_metric(
        ids["run"], "nan", float("nan"), timestamp=T0 + 1, step=400),
    "numpy numbers": lambda client, ids: client.log_batch(
        ids["run"], metrics=[Metric("np", np.float64(0.5), int(np.int64(T0)), 3),
                             Metric("np", np.float32(1.5), T0, 4)]),
    "one log_metric": lambda client, ids: client.log_metric(ids["run"], "single", -0.5,
                                                             timestamp=T0, step=1),
    "an invalid metric at index 2": lambda client, ids: client.log_batch(
        ids["run"], metrics=[Metric("ok", 1.0, T0, 0), Metric("ok", 2.0, T0, 1),
                             Metric("bad", "x", T0, 2)]),
    "a negative timestamp": lambda client, ids: client.log_metric(ids["run"], "t", 1.0,
                                                                  timestamp=-1),
    "an empty batch": lambda client, ids: client.log_batch(ids["run"], metrics=[]),
    "LoggedModel metrics": lambda client, ids: client.log_batch(
        ids["run"], metrics=[Metric("model_acc", 0.9, T0, 0, model_id=ids["model"]),
                             Metric("model_acc", 0.95, T0, 1, model_id=ids["model"])]),
    "a deleted run": lambda client, ids: client.log_batch(
        ids["deleted"], metrics=[Metric("loss", 1.0, T0, 0)]),
    "a missing run": lambda client, ids: client.log_metric("0" * 32, "loss", 1.0),
}


def _play(uri: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every write's outcome and what the store shows afterwards, plus the raw ids."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("bulk")
    ids = {"run": client.create_run(experiment_id).info.run_id,
           "deleted": client.create_run(experiment_id).info.run_id}
    ids["model"] = client.create_logged_model(experiment_id, source_run_id=ids["run"]).model_id
    client.delete_run(ids["deleted"])
    outcomes: dict[str, Any] = {}
    for name, write in WRITES.items():
        try:
            write(client, ids)
            outcomes[name] = "ok"
        except MlflowException as error:
            outcomes[name] = (error.error_code, str(error).replace(ids["deleted"], "<deleted>"))
    run = client.get_run(ids["run"])
    shown = {
        "latest": {key: _plain(value) for key, value in run.data.metrics.items()},
        "histories": {key: sorted(((m.step, m.timestamp, _plain(m.value))
                                   for m in client.get_metric_history(ids["run"], key)), key=repr)
                      for key in run.data.metrics},
        "model metrics": sorted((m.key, m.step, m.value) for m in
                                client.get_logged_model(ids["model"]).metrics),
    }
    return {"outcomes": outcomes, **shown}, ids


def _plain(value: float) -> Any:
    return "NaN" if math.isnan(value) else value


def _pair(plain_uri: str, prov_uri: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    plain, _ = _play(plain_uri)
    prov, ids = _play(prov_uri)
    return plain, prov, ids["run"]


def _verify(uri: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri])
    return result.exit_code, result.output.splitlines()


def _edit(uri: str, run_id: str) -> None:
    engine = sa.create_engine(parse_prov_uri(uri).db_uri)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE metrics SET value = 42 WHERE run_uuid = :run "
                                       "AND key = 'acc' AND step = 100"), {"run": run_id})
    finally:
        engine.dispose()


def _assert_same_and_verified(plain: dict, prov: dict, prov_uri: str, run_id: str) -> None:
    for section in plain:
        assert prov[section] == plain[section], section
    assert plain["outcomes"]["a batch of 1,000"] == "ok"
    assert plain["outcomes"]["an invalid metric at index 2"] != "ok"
    code, lines = _verify(prov_uri)
    assert code == 0, lines
    _edit(prov_uri, run_id)
    code, lines = _verify(prov_uri)
    assert code == 1 and any("metric 'acc'" in line for line in lines), lines


@pytest.mark.slow  # a 1,000-metric batch through plain MLflow's ORM, and two verify runs
def test_bulk_metrics_answer_as_mlflow_on_sqlite(sqlite_uri, prov_uri):
    plain, prov, run_id = _pair(sqlite_uri, prov_uri)
    _assert_same_and_verified(plain, prov, prov_uri, run_id)


@pytest.mark.slow  # two PostgreSQL databases, one migrated by MLflow (seconds)
def test_bulk_metrics_answer_as_mlflow_on_postgresql(postgres_database, prov_postgres_uri):
    plain, prov, run_id = _pair(postgres_database, prov_postgres_uri)
    _assert_same_and_verified(plain, prov, prov_postgres_uri, run_id)
