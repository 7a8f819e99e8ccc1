"""Attach mlflow-prov's monitors to the runs MLflow monitors, and ``enable()``.

MLflow has no registration API for extra monitors (docs/internals.md, "System-metrics
monitors"). What it has is one module-level dict,
``mlflow.tracking.fluent.run_id_to_system_metrics_monitor``, into
which ``start_run`` puts each run's ``SystemMetricsMonitor`` just before starting its
thread, and from which ``end_run`` takes it to call ``finish()``. :func:`install` swaps that
dict, once, for a subclass whose ``__setitem__`` appends our monitors to the monitor's
``monitors`` list, which MLflow's loop reads at every sample. Nothing else in MLflow is
patched; without MLflow's switch on, no monitor is registered and nothing happens.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mlflow_prov.compat import (
    monitor_logging_step,
    replace_system_metrics_registry,
    system_metrics_registry,
)
from mlflow_prov.system_metrics.base import MonitorUnavailable, ProvMetricsMonitor
from mlflow_prov.system_metrics.config import (
    ENV_CARBON,
    ENV_CARBON_TRACKING_MODE,
    ENV_COUNTRY,
    MonitorSettings,
    normalise_country,
)
from mlflow_prov.vocabulary import CARBON_COUNTED_IN_TAG, PARENT_RUN_TAG

if TYPE_CHECKING:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

_logger = logging.getLogger(__name__)
_install_lock = threading.Lock()
_reported_unavailable: set[str] = set()

MONITORS_TAG = "mlflow_prov.system_metrics.monitors"


MonitorFactory = Callable[[], ProvMetricsMonitor]


def _candidates(settings: MonitorSettings, interval: float) -> list[MonitorFactory]:
    """Constructors of the monitors these settings ask for, imported only when needed."""
    from mlflow_prov.system_metrics.carbon import CarbonMonitor
    from mlflow_prov.system_metrics.cpu_temperature import CPUTemperatureMonitor
    from mlflow_prov.system_metrics.gpu import GPUMonitor
    from mlflow_prov.system_metrics.process import ProcessMonitor

    candidates: list[MonitorFactory] = [
        GPUMonitor, CPUTemperatureMonitor, ProcessMonitor
    ]
    if settings.carbon:
        candidates.append(lambda: CarbonMonitor(
            settings.country, settings.carbon_tracking_mode, measure_power_secs=interval))
    return candidates


def build_monitors(settings: MonitorSettings, interval: float = 10.0) -> list[ProvMetricsMonitor]:
    """The monitors that work on this machine; each one that cannot is named once at INFO."""
    monitors = []
    for make in _candidates(settings, interval):
        try:
            monitors.append(make())
        except MonitorUnavailable as e:
            key = str(e)
            log = _logger.info if key not in _reported_unavailable else _logger.debug
            _reported_unavailable.add(key)
            log("mlflow-prov: skipping a system-metrics monitor: %s", e)
    return monitors


def _measuring_ancestor(client, run_id: str) -> str | None:
    """The top-level ancestor of a nested run when that ancestor is monitored in this process
    (its carbon tracker covers the child's time), else None."""
    top, seen = run_id, {run_id}
    while (parent := client.get_run(top).data.tags.get(PARENT_RUN_TAG)) and parent not in seen:
        top = parent
        seen.add(parent)
    return top if top != run_id and top in system_metrics_registry() else None


def attach(run_id: str, system_monitor: SystemMetricsMonitor) -> list[ProvMetricsMonitor]:
    """Add our monitors to ``system_monitor`` (not started yet) and close them at its finish.

    Energy is measured once per interval: a nested run whose top-level run is monitored here
    gets no carbon tracker of its own (that run's tracker covers the child's time, so summing
    emissions over runs counts each joule once) and is tagged ``CARBON_COUNTED_IN_TAG`` with
    the run that counts it.
    """
    import mlflow
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow.get_tracking_uri())
    settings = MonitorSettings.from_env()
    counted_in = _measuring_ancestor(client, run_id) if settings.carbon else None
    if counted_in:
        settings = replace(settings, carbon=False)
    monitors = build_monitors(settings, float(system_monitor.sampling_interval))

    def set_tags(tags: dict[str, str]) -> None:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    if counted_in:
        set_tags({CARBON_COUNTED_IN_TAG: counted_in})

    for monitor in monitors:
        monitor.tag_sink = set_tags
    set_tags({MONITORS_TAG: ",".join(m.name for m in monitors) or "none"})
    system_monitor.monitors.extend(monitors)
    _close_after_finish(run_id, system_monitor, monitors, client)
    return monitors


def _close_after_finish(run_id: str, system_monitor: SystemMetricsMonitor,
                        monitors: list[ProvMetricsMonitor], client) -> None:
    """Wrap this one monitor's ``finish`` (MLflow's only end-of-run call into it) so that our
    monitors release their hardware and log their final totals after MLflow's last flush."""
    from mlflow.entities import Metric

    finish = system_monitor.finish

    def finish_then_close() -> None:
        finish()
        prefix = "system/" + (f"{system_monitor.node_id}/" if system_monitor.node_id else "")
        step = monitor_logging_step(system_monitor)
        now_ms = int(time.time() * 1000)
        final: list[Metric] = []
        for monitor in monitors:
            try:
                values = monitor.close()
            except Exception:
                _logger.warning("mlflow-prov: closing the %s monitor failed", monitor.name,
                                exc_info=True)
                continue
            final += [Metric(prefix + k, v, now_ms, step) for k, v in values.items()]
        if final:
            client.log_batch(run_id, metrics=final)

    system_monitor.finish = finish_then_close  # type: ignore[method-assign]  # this instance


class _AttachingRegistry(dict):
    """MLflow's run-id -> SystemMetricsMonitor dict, attaching our monitors on insertion."""

    def __setitem__(self, run_id: str, system_monitor: SystemMetricsMonitor) -> None:
        super().__setitem__(run_id, system_monitor)
        try:
            attach(run_id, system_monitor)
        except Exception:
            # MLflow starts its own monitor only if this assignment returns: never block it.
            _logger.warning("mlflow-prov: could not attach its system-metrics monitors",
                            exc_info=True)


def install() -> None:
    """Put the attaching dict in place of MLflow's, once per process (idempotent)."""
    with _install_lock:
        current = system_metrics_registry()
        if not isinstance(current, _AttachingRegistry):
            replace_system_metrics_registry(_AttachingRegistry(current))


def enable(*, carbon: bool | None = None, country: str | None = None,
           carbon_tracking_mode: str | None = None,
           sampling_interval: float | None = None) -> None:
    """Log system metrics (MLflow's and ours) for every run from now on, in code.

    The same as ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true`` plus the ``MLFLOW_PROV_*``
    variables, which it sets so that child processes (DDP ranks) inherit them. If a run is
    already active without system metrics, they start for it now.
    """
    import mlflow
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    if carbon is not None:
        os.environ[ENV_CARBON] = "true" if carbon else "false"
    if country is not None:
        os.environ[ENV_COUNTRY] = normalise_country(country)
    if carbon_tracking_mode is not None:
        os.environ[ENV_CARBON_TRACKING_MODE] = carbon_tracking_mode
    MonitorSettings.from_env()  # fail here, not in the monitoring thread, on a bad value
    if sampling_interval is not None:
        mlflow.set_system_metrics_sampling_interval(sampling_interval)
    mlflow.enable_system_metrics_logging()
    install()
    active = mlflow.active_run()
    if active is not None and active.info.run_id not in system_metrics_registry():
        system_monitor = SystemMetricsMonitor(active.info.run_id, resume_logging=True)
        system_metrics_registry()[active.info.run_id] = system_monitor
        system_monitor.start()
