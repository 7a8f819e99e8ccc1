"""The run's software environment, captured by allow-list and redacted.

Recorded once per process in the ``run.created`` journal event, so a provenance record
says which Python, platform and library versions produced a run. Only the variables named
in :data:`ALLOWED_VARIABLES` are read, and any value that looks like a credential is
replaced by :data:`REDACTED` even there: a secret pasted into ``SLURM_JOB_NAME`` must not
travel into an exported PROV document.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

REDACTED = "[redacted]"
ALLOWED_VARIABLES = (
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "WORLD_SIZE", "RANK",
    "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID", "SLURM_JOB_NAME",
    "SLURM_NTASKS", "SLURM_PROCID", "SLURM_CLUSTER_NAME", "PBS_JOBID", "LSB_JOBID",
    "MLFLOW_EXPERIMENT_NAME", "MLFLOW_PROV_COUNTRY", "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG",
)
_PACKAGES = ("mlflow", "mlflow-prov", "torch", "numpy", "pandas", "scikit-learn")
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|bearer|private[_-]?key)"),
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9]{20,}|xox[abp]-[A-Za-z0-9-]+)"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


def looks_like_credential(value: str) -> bool:
    """True for values that name or carry a secret (tokens, keys, passwords in URLs)."""
    return any(pattern.search(value) for pattern in _CREDENTIAL_PATTERNS)


def redact(value: str) -> str:
    return REDACTED if looks_like_credential(value) else value


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
    variables = {name: redact(source[name]) for name in ALLOWED_VARIABLES if name in source}
    return {**_static_environment(), "variables": variables}
