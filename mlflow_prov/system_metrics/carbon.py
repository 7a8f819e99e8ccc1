"""Energy and CO2 through codecarbon's ``OfflineEmissionsTracker``, never the online one.

The offline tracker takes the country from configuration (``MLFLOW_PROV_COUNTRY``) instead
of a geo-IP lookup, and with file, API and logger outputs off it touches neither the
network nor the working directory. Its first ``start()`` spends ~1.4 s detecting hardware,
so it runs in a thread of its own, started with the monitor: neither ``start_run`` nor
MLflow's first sample waits for it.
Where no power counter exists (no RAPL, no NVML) codecarbon estimates; the run tags say
which figures are estimates.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading

from mlflow_prov.compat import hardware_mode, running_emissions, tracker_hardware, tracker_started
from mlflow_prov.system_metrics.base import MonitorUnavailable, ProvMetricsMonitor

_logger = logging.getLogger(__name__)

try:
    import codecarbon
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.emissions_tracker import BaseEmissionsTracker
except ImportError:  # reported when the monitor is built
    OfflineEmissionsTracker = None  # type: ignore[assignment,misc]  # optional dependency

# CPU modes in which codecarbon reads an energy counter; the others estimate from TDP/load.
MEASURED_CPU_MODES = frozenset({"intel_rapl", "intel_power_gadget", "windows_emi",
                                "apple_powermetrics"})
TAG_PREFIX = "mlflow_prov.carbon."

# codecarbon's EmissionsData field -> our key under ``system/carbon/``.
FIELDS = {
    "emissions": "emissions_kg",
    "emissions_rate": "emissions_rate_kg_per_second",
    "cpu_power": "cpu_power_watts",
    "gpu_power": "gpu_power_watts",
    "ram_power": "ram_power_watts",
    "cpu_energy": "cpu_energy_kwh",
    "gpu_energy": "gpu_energy_kwh",
    "ram_energy": "ram_energy_kwh",
    "energy_consumed": "energy_consumed_kwh",
}
KEYS = tuple(f"carbon/{key}" for key in FIELDS.values())


def _no_output_kwargs() -> dict:
    """Turn off every codecarbon output, whichever API this version has.

    codecarbon 3 replaced ``save_to_*`` (now deprecated, with a warning) by ``output_methods``;
    both spellings are explicit so that a ``.codecarbon.config`` cannot turn an output on.
    """
    if "output_methods" in inspect.signature(BaseEmissionsTracker.__init__).parameters:
        return {"output_methods": []}
    return {"save_to_file": False, "save_to_api": False, "save_to_logger": False}


def carbon_metrics(data) -> dict[str, float]:
    """Our ``carbon/...`` keys from a codecarbon ``EmissionsData`` (totals since start)."""
    return {f"carbon/{key}": float(getattr(data, field) or 0.0) for field, key in FIELDS.items()}


class CarbonMonitor(ProvMetricsMonitor):
    """Logs the nine ``carbon/...`` keys; all are totals or averages since the run started."""

    name = "carbon"
    cumulative_suffixes = tuple(FIELDS.values())

    def __init__(self, country: str, tracking_mode: str = "machine",
                 measure_power_secs: float = 10.0) -> None:
        super().__init__()
        if OfflineEmissionsTracker is None:
            raise MonitorUnavailable(
                "codecarbon is not installed: run `pip install codecarbon` to log energy and CO2"
            )
        self._country = country
        self._tracking_mode = tracking_mode
        self._measure_power_secs = measure_power_secs
        self._tracker = None
        self._starting = threading.Thread(target=self._start, name="mlflow-prov-carbon-start",
                                          daemon=True)
        self._starting.start()

    def _start(self) -> None:
        """Build and start the tracker; on failure say so once and leave the monitor idle."""
        try:
            tracker = self._new_tracker()
            tracker.start()  # codecarbon swallows its own errors here
            if not tracker_started(tracker):
                raise RuntimeError("OfflineEmissionsTracker.start() did not start")
        except Exception:
            _logger.warning("mlflow-prov: codecarbon could not start; no carbon metrics",
                            exc_info=True)
            return
        self._tracker = tracker
        try:
            self.publish_tags(self._tags(tracker))
        except Exception:
            _logger.warning("mlflow-prov: the carbon run tags could not be set", exc_info=True)

    def _new_tracker(self):
        log_level = os.environ.get("CODECARBON_LOG_LEVEL", "error")
        # codecarbon logs through a handler of its own, one INFO line per measurement and
        # one as soon as the constructor runs: quieten its logger before building it.
        logging.getLogger("codecarbon").setLevel(log_level.upper())
        return OfflineEmissionsTracker(
            country_iso_code=self._country,
            tracking_mode=self._tracking_mode,
            measure_power_secs=self._measure_power_secs,
            log_level=log_level,
            allow_multiple_runs=True,
            **_no_output_kwargs(),
        )

    def _tags(self, tracker) -> dict[str, str]:
        """How the figures were obtained, so nobody takes an estimate for a measurement."""
        hardware = tracker_hardware(tracker)
        estimated = [
            kind for kind, parts in (("cpu", _cpus(hardware)), ("ram", _rams(hardware)))
            if parts and not all(hardware_mode(p) in MEASURED_CPU_MODES for p in parts)
        ]
        return {
            TAG_PREFIX + "tracker": f"codecarbon {codecarbon.__version__} OfflineEmissionsTracker",
            TAG_PREFIX + "country": self._country,
            TAG_PREFIX + "tracking_mode": self._tracking_mode,
            TAG_PREFIX + "hardware": ", ".join(p.description() for p in hardware) or "none",
            TAG_PREFIX + "estimated": ",".join(estimated) or "none",
        }

    def wait_started(self, timeout: float | None = None) -> bool:
        """Wait for hardware detection (the first tracker of a process takes ~1.4 s); True if
        the tracker runs. For callers that sample on demand (the prov4ml facade)."""
        self._starting.join(timeout)
        return self._tracker is not None

    def sample(self) -> None:
        if self._tracker is None:  # still detecting hardware
            return
        for key, value in carbon_metrics(running_emissions(self._tracker)).items():
            self.record(key, value)

    def close(self) -> dict[str, float]:
        """Stop the tracker; its final totals cover the time since the last sample."""
        self._starting.join()
        if self._tracker is None:
            return {}
        self._tracker.stop()
        final = getattr(self._tracker, "final_emissions_data", None)
        return carbon_metrics(final) if final is not None else {}


def _cpus(hardware: list) -> list:
    return [p for p in hardware if type(p).__name__ == "CPU"]


def _rams(hardware: list) -> list:
    """RAM power is always a model of the DIMMs in codecarbon 3; no counter measures it."""
    return [p for p in hardware if type(p).__name__ == "RAM"]
