"""mlflow-prov's monitors riding on MLflow's own switch, in a real ``prov`` store."""

from __future__ import annotations

import os
import socket
import time

import mlflow
import pytest
from machine import busy, scaled_timeout
from store_templates import prov_store

from mlflow_prov import system_metrics
from mlflow_prov.system_metrics import attach, carbon, config
from mlflow_prov.system_metrics.attach import MONITORS_TAG

PROCESS_KEYS = {"system/process_rss_megabytes", "system/process_cpu_percentage"}
CARBON_KEYS = {f"system/{key}" for key in carbon.KEYS}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh prov store, cwd in an empty folder, 0.25 s sampling, network calls refused."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for name in (config.ENV_CARBON, config.ENV_COUNTRY, config.ENV_CARBON_TRACKING_MODE,
                 "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.25")
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network refused in tests: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    uri = prov_store(tmp_path / "runs")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("system-metrics")
    yield mlflow.MlflowClient(uri), workdir, attempts
    while mlflow.active_run():
        mlflow.end_run()


@pytest.mark.slow  # samples a 2.5 s busy loop
def test_log_system_metrics_also_starts_ours_with_offline_carbon(store, capfd):
    client, workdir, attempts = store
    with mlflow.start_run(log_system_metrics=True) as run:
        busy(2.5)
    data = client.get_run(run.info.run_id).data
    assert PROCESS_KEYS | CARBON_KEYS <= set(data.metrics)
    assert "system/cpu_utilization_percentage" in data.metrics  # MLflow's own, untouched
    assert data.metrics["system/process_rss_megabytes"] > 10
    assert data.metrics["system/carbon/energy_consumed_kwh"] > 0
    assert data.metrics["system/carbon/emissions_kg"] > 0
    history = client.get_metric_history(run.info.run_id, "system/carbon/energy_consumed_kwh")
    assert [m.value for m in history] == sorted(m.value for m in history)  # totals since start
    tags = data.tags
    assert set(tags[MONITORS_TAG].split(",")) >= {"process", "carbon"}
    assert tags["mlflow_prov.carbon.country"] == config.DEFAULT_COUNTRY
    assert tags["mlflow_prov.carbon.tracking_mode"] == "machine"
    assert tags["mlflow_prov.carbon.tracker"].endswith("OfflineEmissionsTracker")
    assert tags["mlflow_prov.carbon.estimated"]  # "cpu,ram" without RAPL, "none" if measured
    assert attempts == []
    assert os.listdir(workdir) == []
    assert "[codecarbon" not in capfd.readouterr().err


@pytest.mark.slow  # two monitored runs, each waiting for codecarbon to start
def test_every_run_in_a_process_gets_the_carbon_tags(store, monkeypatch):
    """Warm (from the second run on) codecarbon starts in ~10 ms, and may publish its tags
    before ``attach`` has given the monitor a sink. The real ``build_monitors``, made to wait
    for that start, forces this order every time; nothing is faked."""
    client, _, _ = store
    build_monitors = attach.build_monitors

    def build_and_let_carbon_start(*args, **kwargs):
        monitors = build_monitors(*args, **kwargs)
        for monitor in monitors:
            if isinstance(monitor, carbon.CarbonMonitor):
                monitor._starting.join()
        return monitors

    monkeypatch.setattr(attach, "build_monitors", build_and_let_carbon_start)
    run_ids = []
    for _ in range(2):
        with mlflow.start_run(log_system_metrics=True) as run:
            busy(0.3)
        run_ids.append(run.info.run_id)
    for run_id in run_ids:
        tags = client.get_run(run_id).data.tags
        assert "carbon" in tags[MONITORS_TAG].split(",")
        assert tags["mlflow_prov.carbon.tracking_mode"] == "machine"
        assert tags["mlflow_prov.carbon.estimated"]


def busy_until_sampled(client, run_id: str, seconds: float = 0.8) -> None:
    """Keep a core busy for ``seconds``, then until the monitor has logged its first sample:
    on a loaded machine its thread may not have sampled within a fixed time (bounded)."""
    busy(seconds)
    deadline = time.monotonic() + scaled_timeout(30)
    while (not PROCESS_KEYS <= set(client.get_run(run_id).data.metrics)
           and time.monotonic() < deadline):
        busy(0.1)


def test_environment_switch_and_carbon_off(store, monkeypatch):
    client, _, _ = store
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv(config.ENV_CARBON, "false")
    with mlflow.start_run() as run:
        busy_until_sampled(client, run.info.run_id)
    data = client.get_run(run.info.run_id).data
    assert PROCESS_KEYS <= set(data.metrics)
    assert not CARBON_KEYS & set(data.metrics)
    assert "carbon" not in data.tags[MONITORS_TAG]
    assert not any(tag.startswith("mlflow_prov.carbon.") for tag in data.tags)


def test_no_switch_no_monitors(store):
    client, _, _ = store
    with mlflow.start_run() as run:
        busy(0.3)
    data = client.get_run(run.info.run_id).data
    assert not any(key.startswith("system/") for key in data.metrics)
    assert MONITORS_TAG not in data.tags


def test_enable_starts_monitoring_the_active_run(store, monkeypatch):
    client, _, _ = store
    monkeypatch.setattr(mlflow.tracking.fluent, "run_id_to_system_metrics_monitor", {})
    for name in (config.ENV_CARBON, config.ENV_COUNTRY, "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"):
        monkeypatch.setenv(name, "")  # enable() sets them: restored after the test
    with mlflow.start_run(log_system_metrics=False) as run:
        system_metrics.enable(carbon=False, country="fra", sampling_interval=0.25)
        assert os.environ[config.ENV_COUNTRY] == "FRA"
        busy_until_sampled(client, run.info.run_id)
    data = client.get_run(run.info.run_id).data
    assert PROCESS_KEYS <= set(data.metrics)
    monitors = data.tags[MONITORS_TAG].split(",")
    assert "process" in monitors and "carbon" not in monitors
    with pytest.raises(ValueError, match="alpha-3"):
        system_metrics.enable(country="Germany")
