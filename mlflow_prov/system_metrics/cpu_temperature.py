"""CPU temperature, from the kernel's hwmon sensors as psutil reports them.

Only Linux and FreeBSD expose ``psutil.sensors_temperatures``; virtual machines and
containers usually show no CPU chip. Then the monitor is unavailable, not zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psutil

from mlflow_prov.system_metrics.base import MonitorUnavailable, ProvMetricsMonitor

# Drivers that report the CPU package, most specific first (Intel, AMD, ARM boards, ACPI).
CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal",
             "acpitz")
# Labels of whole-package readings, preferred over the mean of per-core ones.
PACKAGE_LABELS = ("package", "tctl", "tdie")


def cpu_temperature_celsius(sensors: Mapping[str, Sequence]) -> float | None:
    """The CPU temperature from one ``sensors_temperatures()`` reading, or None if no CPU chip.

    The first known chip wins; its package reading if it has one, else the mean of its cores.
    """
    for chip in CPU_CHIPS:
        readings = [r for r in sensors.get(chip, ()) if r.current is not None]
        if not readings:
            continue
        package = [r for r in readings if r.label.lower().startswith(PACKAGE_LABELS)]
        chosen = package or readings
        return sum(r.current for r in chosen) / len(chosen)
    return None


def _read_sensors() -> Mapping[str, Sequence]:
    return psutil.sensors_temperatures()


class CPUTemperatureMonitor(ProvMetricsMonitor):
    """Logs ``cpu_temperature_celsius``."""

    name = "cpu_temperature"

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(psutil, "sensors_temperatures"):
            raise MonitorUnavailable("psutil has no temperature sensors on this platform")
        if cpu_temperature_celsius(_read_sensors()) is None:
            raise MonitorUnavailable(
                f"no CPU temperature sensor (looked for {', '.join(CPU_CHIPS)}; on bare-metal "
                "Linux, load the coretemp or k10temp kernel module)"
            )

    def sample(self) -> None:
        celsius = cpu_temperature_celsius(_read_sensors())
        if celsius is not None:
            self.record("cpu_temperature_celsius", celsius)
