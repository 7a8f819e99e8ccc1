"""mlflow-prov's system metrics: GPU temperature and energy, CPU temperature, the training
process tree, and energy/CO2 through codecarbon's offline tracker.

They ride on MLflow's own system-metrics switch (``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true``
or ``mlflow.start_run(log_system_metrics=True)``) with no code change, or :func:`enable`.
``MLFLOW_PROV_CARBON=false`` turns carbon off; ``MLFLOW_PROV_COUNTRY`` (ISO 3166 alpha-3,
default ``DEU``) picks the electricity mix; ``MLFLOW_PROV_CARBON_TRACKING_MODE`` is
codecarbon's ``machine`` (default) or ``process``.
"""

from mlflow_prov.system_metrics.attach import build_monitors, enable, install
from mlflow_prov.system_metrics.base import MonitorUnavailable, ProvMetricsMonitor
from mlflow_prov.system_metrics.config import MonitorSettings

__all__ = [
    "MonitorSettings",
    "MonitorUnavailable",
    "ProvMetricsMonitor",
    "build_monitors",
    "enable",
    "install",
]
