"""Energy is counted once with nested runs, and system metrics stay off LoggedModels.

A parent and its nested child both monitored: only the top-level run tracks carbon (its
tracker covers the child's time), the child says where its energy is counted, and each keeps
its own CPU/memory metrics. A model logged while MLflow monitors the run gets its metrics
linked by MLflow, system ones included; the export keeps those on the run only.
"""

from __future__ import annotations

import socket

import mlflow
import pytest
from machine import busy

from exporters import collect
from exporters.artifacts import ArtifactCache
from mlflow_prov.system_metrics import config
from mlflow_prov.vocabulary import CARBON_COUNTED_IN_TAG


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (config.ENV_CARBON, config.ENV_COUNTRY, config.ENV_CARBON_TRACKING_MODE,
                 "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.25")

    def refuse(self, address, *args):
        raise OSError(f"network refused in tests: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    uri = f"prov://{tmp_path / 'runs'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("energy")
    yield mlflow.MlflowClient(uri), uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.mark.slow
def test_nested_runs_count_energy_once(store):
    client, _ = store
    with mlflow.start_run(log_system_metrics=True) as parent:
        busy(2.5)
        with mlflow.start_run(nested=True, log_system_metrics=True) as child:
            busy(2.5)
    parent_data = client.get_run(parent.info.run_id).data
    child_data = client.get_run(child.info.run_id).data
    assert parent_data.metrics["system/carbon/energy_consumed_kwh"] > 0
    assert not [k for k in child_data.metrics if "/carbon/" in k]
    assert child_data.tags[CARBON_COUNTED_IN_TAG] == parent.info.run_id
    assert CARBON_COUNTED_IN_TAG not in parent_data.tags
    assert "system/cpu_utilization_percentage" in child_data.metrics  # the rest stays


@pytest.mark.slow
def test_system_metrics_stay_off_logged_models(store):
    torch = pytest.importorskip("torch", reason="a LoggedModel from mlflow.pytorch needs torch")
    client, uri = store
    with mlflow.start_run(log_system_metrics=True) as run:
        info = mlflow.pytorch.log_model(torch.nn.Linear(2, 2), name="net",
                                        serialization_format="pickle",
                                        pip_requirements=["torch"])
        mlflow.log_metric("loss", 0.5)
        busy(1.5)
    linked = {m.key for m in client.get_logged_model(info.model_id).metrics or []}
    if not any(k.startswith("system/") for k in linked):
        pytest.skip("this MLflow did not link system metrics to the model; nothing to keep off")
    models = collect.logged_models_by_run(client, run.info.experiment_id)[run.info.run_id]
    with ArtifactCache(uri) as cache:
        record = collect.logged_model_record(client, models[0], None, cache)
    assert set(record.metrics) == {"loss"}
