"""Environment switches of the mlflow-prov monitors, read when a run's monitors are built.

Environment variables (not module constants) because they are what reaches every process of
a job unchanged: DDP ranks, DataLoader workers, ``mlflow run`` children. They sit beside
MLflow's own ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` and ``MLFLOW_SYSTEM_METRICS_*``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_CARBON = "MLFLOW_PROV_CARBON"
ENV_COUNTRY = "MLFLOW_PROV_COUNTRY"
ENV_CARBON_TRACKING_MODE = "MLFLOW_PROV_CARBON_TRACKING_MODE"

DEFAULT_COUNTRY = "DEU"
DEFAULT_CARBON_TRACKING_MODE = "machine"
CARBON_TRACKING_MODES = ("machine", "process")
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class MonitorSettings:
    """What to monitor for one run.

    ``country``: ISO 3166 alpha-3 code whose electricity mix codecarbon uses offline.
    ``carbon_tracking_mode``: codecarbon's ``machine`` (whole node) or ``process``.
    """

    carbon: bool = True
    country: str = DEFAULT_COUNTRY
    carbon_tracking_mode: str = DEFAULT_CARBON_TRACKING_MODE

    @classmethod
    def from_env(cls) -> MonitorSettings:
        """Read the ``MLFLOW_PROV_*`` variables, falling back to the documented defaults."""
        mode = os.environ.get(ENV_CARBON_TRACKING_MODE, DEFAULT_CARBON_TRACKING_MODE).lower()
        if mode not in CARBON_TRACKING_MODES:
            raise ValueError(
                f"{ENV_CARBON_TRACKING_MODE}={mode!r}: use one of {CARBON_TRACKING_MODES}"
            )
        return cls(
            carbon=os.environ.get(ENV_CARBON, "true").strip().lower() not in _FALSE,
            country=normalise_country(os.environ.get(ENV_COUNTRY) or DEFAULT_COUNTRY),
            carbon_tracking_mode=mode,
        )


def normalise_country(code: str) -> str:
    """Upper-case an ISO 3166 alpha-3 code; reject anything else early, with the fix."""
    cleaned = code.strip().upper()
    if len(cleaned) != 3 or not cleaned.isalpha():
        raise ValueError(
            f"{ENV_COUNTRY}={code!r} is not an ISO 3166 alpha-3 country code (e.g. DEU, FRA, USA)"
        )
    return cleaned
