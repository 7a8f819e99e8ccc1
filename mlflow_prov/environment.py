"""The run's software environment, captured by allow-list and redacted.

Recorded once per process in the ``run.created`` journal event, so a provenance record
says which Python, platform and library versions produced a run. Only the variables named
in :data:`ALLOWED_VARIABLES` are read, and each value is redacted even there, as every
output redacts text (:func:`mlflow_prov.vocabulary.redact_text`): the user info of a URL
(``MASTER_ADDR=https://u:pw@host``) is dropped and a value that looks like a credential is
replaced by :data:`REDACTED`: a secret pasted into ``SLURM_JOB_NAME`` must not travel into
the journal, let alone an exported PROV document.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mlflow_prov.vocabulary import REDACTED, looks_like_credential, redact_text

__all__ = ["ALLOWED_VARIABLES", "REDACTED", "capture_environment", "looks_like_credential"]

ALLOWED_VARIABLES = (
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "WORLD_SIZE", "RANK",
    "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID", "SLURM_JOB_NAME",
    "SLURM_NTASKS", "SLURM_PROCID", "SLURM_CLUSTER_NAME", "PBS_JOBID", "LSB_JOBID",
    "MLFLOW_EXPERIMENT_NAME", "MLFLOW_PROV_COUNTRY", "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG",
)
_PACKAGES = ("mlflow", "mlflow-prov", "torch", "numpy", "pandas", "scikit-learn")


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


@functools.cache
def _static_environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": _package_versions(),
    }


def capture_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Allow-listed environment of this process, credentials redacted."""
    source = os.environ if environ is None else environ
    variables = {name: redact_text(source[name]) for name in ALLOWED_VARIABLES
                 if name in source}
    return {**_static_environment(), "variables": variables}
