"""NVIDIA GPU temperature and energy, beside MLflow's own GPU load and power keys.

Keys per GPU ``i``: ``gpu_<i>_temperature_celsius`` and ``gpu_<i>_energy_joules``, the
latter from NVML's total-energy counter (Volta and newer) minus its value when the run's
monitors started, so it is the energy of this run, not of the driver's lifetime.
"""

from __future__ import annotations

import logging

from mlflow_prov.system_metrics.base import MonitorUnavailable, ProvMetricsMonitor

_logger = logging.getLogger(__name__)

try:
    import pynvml
except ImportError:  # reported when the monitor is built, not at every import
    pynvml = None


class GPUMonitor(ProvMetricsMonitor):
    """Samples every GPU NVML can see; NVML's init is reference-counted, so it coexists
    with MLflow's own GPU monitor."""

    name = "gpu"
    cumulative_suffixes = ("_energy_joules",)

    def __init__(self) -> None:
        super().__init__()
        if pynvml is None:
            raise MonitorUnavailable(
                "nvidia-ml-py is not installed: run `pip install nvidia-ml-py` to log GPU "
                "temperature and energy"
            )
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise MonitorUnavailable(f"NVML did not start (no NVIDIA GPU or driver): {e}") from e
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            pynvml.nvmlShutdown()
            raise MonitorUnavailable("NVML sees no GPU")
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._energy_at_start = [_energy_millijoules(handle) for handle in self._handles]

    def sample(self) -> None:
        for i, handle in enumerate(self._handles):
            try:
                temperature = pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
                self.record(f"gpu_{i}_temperature_celsius", temperature)
            except pynvml.NVMLError as e:
                _logger.debug("GPU %d temperature unreadable: %s", i, e)
            start = self._energy_at_start[i]
            now = _energy_millijoules(handle) if start is not None else None
            if start is not None and now is not None:
                self.record(f"gpu_{i}_energy_joules", (now - start) / 1000)

    def close(self) -> dict[str, float]:
        pynvml.nvmlShutdown()
        return {}


def _energy_millijoules(handle) -> int | None:
    """NVML's energy counter, or None on GPUs older than Volta that lack it."""
    try:
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError:
        return None
