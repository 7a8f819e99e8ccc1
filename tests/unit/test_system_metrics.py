"""Unit tests of the system-metrics monitors, with fakes only at the hardware boundary."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import types
from collections import namedtuple

import psutil
import pytest
from machine import scaled_timeout

from mlflow_prov.system_metrics import attach, base, carbon, config, cpu_temperature, gpu
from mlflow_prov.system_metrics.activation import SystemMetricsActivation
from mlflow_prov.system_metrics.base import MonitorUnavailable, ProvMetricsMonitor
from mlflow_prov.system_metrics.config import MonitorSettings
from mlflow_prov.system_metrics.process import ProcessMonitor

Reading = namedtuple("Reading", "label current high critical")


class Counter(ProvMetricsMonitor):
    name = "counter"
    cumulative_suffixes = ("_total",)

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls = 0
        self.fail = fail

    def sample(self) -> None:
        self.calls += 1
        if self.fail:
            raise OSError("sensor gone")
        self.record("load_percentage", 10.0 * self.calls)
        self.record("work_total", self.calls)


@pytest.fixture(autouse=True)
def _fresh_skip_log(monkeypatch):
    monkeypatch.setattr(attach, "_reported_unavailable", set())


def test_base_averages_but_keeps_last_of_cumulative_keys():
    monitor = Counter()
    for _ in range(3):
        monitor.collect_metrics()
    assert monitor.aggregate_metrics() == {"load_percentage": 20.0, "work_total": 3.0}
    assert dict(monitor.metrics) == {"load_percentage": [10.0, 20.0, 30.0],
                                     "work_total": [1.0, 2.0, 3.0]}
    with pytest.raises(TypeError):
        monitor.metrics["x"] = [1.0]
    monitor.clear_metrics()
    assert monitor.aggregate_metrics() == {}


def test_a_failing_monitor_warns_once_and_stops_instead_of_raising(caplog):
    monitor = Counter(fail=True)
    with caplog.at_level(logging.WARNING, logger=base.__name__):
        monitor.collect_metrics()
        monitor.collect_metrics()
    assert monitor.calls == 1
    assert len(caplog.records) == 1 and "counter monitor failed" in caplog.text


def test_settings_defaults_and_switches(monkeypatch):
    for name in (config.ENV_CARBON, config.ENV_COUNTRY, config.ENV_CARBON_TRACKING_MODE):
        monkeypatch.delenv(name, raising=False)
    assert MonitorSettings.from_env() == MonitorSettings(True, "DEU", "machine")
    monkeypatch.setenv(config.ENV_CARBON, "false")
    monkeypatch.setenv(config.ENV_COUNTRY, "fra")
    monkeypatch.setenv(config.ENV_CARBON_TRACKING_MODE, "process")
    assert MonitorSettings.from_env() == MonitorSettings(False, "FRA", "process")
    monkeypatch.setenv(config.ENV_COUNTRY, "France")
    with pytest.raises(ValueError, match="alpha-3"):
        MonitorSettings.from_env()


class FakeNVML(types.ModuleType):
    """The slice of pynvml the GPU monitor calls, for two GPUs; GPU 1 has no energy counter."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, init_error: bool = False) -> None:
        super().__init__("pynvml")
        self.init_error = init_error
        self.energy_mj = 5_000_000
        self.shutdowns = 0

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 60 + handle

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if handle == 1:
            raise self.NVMLError("Not Supported")
        return self.energy_mj


def test_gpu_monitor_reports_temperature_and_energy_since_start(monkeypatch):
    fake = FakeNVML()
    monkeypatch.setattr(gpu, "pynvml", fake)
    monitor = gpu.GPUMonitor()
    fake.energy_mj += 1500
    monitor.collect_metrics()
    fake.energy_mj += 2500
    monitor.collect_metrics()
    assert monitor.aggregate_metrics() == {
        "gpu_0_temperature_celsius": 60.0,
        "gpu_1_temperature_celsius": 61.0,
        "gpu_0_energy_joules": 4.0,
    }
    monitor.close()
    assert fake.shutdowns == 1


def test_gpu_monitor_is_unavailable_without_nvml_or_driver(monkeypatch):
    monkeypatch.setattr(gpu, "pynvml", None)
    with pytest.raises(MonitorUnavailable, match="pip install nvidia-ml-py"):
        gpu.GPUMonitor()
    monkeypatch.setattr(gpu, "pynvml", FakeNVML(init_error=True))
    with pytest.raises(MonitorUnavailable, match="no NVIDIA GPU or driver"):
        gpu.GPUMonitor()


def test_gpu_monitor_on_a_real_gpu():
    try:
        monitor = gpu.GPUMonitor()
    except MonitorUnavailable as e:
        pytest.skip(f"no usable NVIDIA GPU here: {e}")
    monitor.collect_metrics()
    time.sleep(0.2)
    monitor.collect_metrics()
    values = monitor.aggregate_metrics()
    monitor.close()
    assert 0 < values["gpu_0_temperature_celsius"] < 120
    if "gpu_0_energy_joules" in values:  # Volta and newer
        assert values["gpu_0_energy_joules"] >= 0


def test_cpu_temperature_prefers_the_package_reading_of_a_known_chip():
    sensors = {
        "nvme": [Reading("Composite", 40.0, None, None)],
        "coretemp": [Reading("Package id 0", 55.0, 80, 100), Reading("Core 0", 50.0, 80, 100),
                     Reading("Core 1", 52.0, 80, 100)],
    }
    assert cpu_temperature.cpu_temperature_celsius(sensors) == 55.0
    sensors["coretemp"] = sensors["coretemp"][1:]
    assert cpu_temperature.cpu_temperature_celsius(sensors) == 51.0
    assert cpu_temperature.cpu_temperature_celsius({"nvme": sensors["nvme"]}) is None


def test_cpu_temperature_monitor_reads_sensors_or_is_unavailable(monkeypatch):
    monkeypatch.setattr(cpu_temperature, "_read_sensors",
                        lambda: {"k10temp": [Reading("Tctl", 61.5, None, None)]})
    monitor = cpu_temperature.CPUTemperatureMonitor()
    monitor.collect_metrics()
    assert monitor.aggregate_metrics() == {"cpu_temperature_celsius": 61.5}
    monkeypatch.setattr(cpu_temperature, "_read_sensors", dict)
    with pytest.raises(MonitorUnavailable, match="no CPU temperature sensor"):
        cpu_temperature.CPUTemperatureMonitor()


def test_process_monitor_counts_children():
    monitor = ProcessMonitor()
    monitor.collect_metrics()
    alone = monitor.metrics["process_rss_megabytes"][-1]
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; x = bytearray(80_000_000); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if psutil.Process(child.pid).memory_info().rss > 80_000_000:
                break
            time.sleep(0.05)
        monitor.collect_metrics()
    finally:
        child.kill()
        child.wait()
    assert monitor.metrics["process_rss_megabytes"][-1] > alone + 70
    assert monitor.metrics["process_cpu_percentage"][-1] >= 0
    monitor.collect_metrics()  # the child has gone: no error


def test_carbon_keys_are_the_nine_the_issue_names():
    assert set(carbon.KEYS) == {
        "carbon/emissions_kg", "carbon/emissions_rate_kg_per_second", "carbon/cpu_power_watts",
        "carbon/gpu_power_watts", "carbon/ram_power_watts", "carbon/cpu_energy_kwh",
        "carbon/gpu_energy_kwh", "carbon/ram_energy_kwh", "carbon/energy_consumed_kwh",
    }
    data = types.SimpleNamespace(**{field: 1.5 for field in carbon.FIELDS})
    data.gpu_power = None
    metrics = carbon.carbon_metrics(data)
    assert metrics["carbon/gpu_power_watts"] == 0.0 and metrics["carbon/emissions_kg"] == 1.5


def test_carbon_outputs_are_all_off():
    assert carbon._no_output_kwargs() == {"output_methods": []}


def test_carbon_monitor_needs_codecarbon(monkeypatch):
    monkeypatch.setattr(carbon, "OfflineEmissionsTracker", None)
    with pytest.raises(MonitorUnavailable, match="pip install codecarbon"):
        carbon.CarbonMonitor("DEU")


@pytest.mark.slow  # waits for a real codecarbon tracker to start
def test_carbon_tags_published_before_the_sink_is_set_reach_it():
    """The real tracker, started and joined before the sink is wired: warm, it starts at once."""
    monitor = carbon.CarbonMonitor("FRA", measure_power_secs=0.25)
    try:
        monitor._starting.join()
        assert monitor._tracker is not None
        received: list[dict[str, str]] = []
        monitor.tag_sink = received.append
        monitor.publish_tags({"later": "direct"})
    finally:
        monitor.close()
    assert len(received) == 2 and received[1] == {"later": "direct"}
    tags = received[0]
    assert tags[carbon.TAG_PREFIX + "country"] == "FRA"
    assert tags[carbon.TAG_PREFIX + "tracking_mode"] == "machine"
    assert tags[carbon.TAG_PREFIX + "estimated"]


def test_each_unavailable_monitor_is_named_once_at_info(monkeypatch, caplog):
    monkeypatch.setattr(gpu, "pynvml", None)
    monkeypatch.setattr(cpu_temperature, "_read_sensors", dict)
    with caplog.at_level(logging.DEBUG, logger=attach.__name__):
        first = attach.build_monitors(MonitorSettings(carbon=False))
        second = attach.build_monitors(MonitorSettings(carbon=False))
    assert [m.name for m in first] == [m.name for m in second] == ["process"]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 2
    assert "nvidia-ml-py" in infos[0].getMessage()
    assert "CPU temperature" in infos[1].getMessage()


def test_activation_installs_the_hook_and_adds_no_tags(monkeypatch):
    from mlflow.tracking import fluent

    monkeypatch.setattr(fluent, "run_id_to_system_metrics_monitor", {"old": "monitor"})
    provider = SystemMetricsActivation()
    assert provider.in_context() is False
    assert provider.tags() == {}
    registry = fluent.run_id_to_system_metrics_monitor
    assert isinstance(registry, attach._AttachingRegistry) and registry == {"old": "monitor"}
    provider.in_context()
    assert fluent.run_id_to_system_metrics_monitor is registry


def test_a_failing_attach_never_blocks_mlflow(monkeypatch, caplog):
    def broken(run_id, system_monitor):
        raise RuntimeError("boom")

    monkeypatch.setattr(attach, "attach", broken)
    registry = attach._AttachingRegistry()
    with caplog.at_level(logging.WARNING, logger=attach.__name__):
        registry["run"] = "monitor"
    assert registry["run"] == "monitor" and "could not attach" in caplog.text


@pytest.mark.slow
def test_imports_have_no_side_effects():
    code = (
        "import sys, mlflow, mlflow_prov, mlflow_prov.system_metrics, mlflow_prov.torch\n"
        "from mlflow.tracking import fluent\n"
        "assert type(fluent.run_id_to_system_metrics_monitor) is dict\n"
        "heavy = {'torch', 'codecarbon', 'pynvml'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=scaled_timeout(60))


@pytest.mark.slow
def test_mlflow_prov_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import mlflow_prov, mlflow_prov.torch\n"
        "try:\n    mlflow_prov.torch.dataset_digest([])\nexcept ImportError:\n    pass\n"
        "else:\n    raise SystemExit('torch was not needed?')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=scaled_timeout(60))
