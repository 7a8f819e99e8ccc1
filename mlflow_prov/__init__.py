"""mlflow-prov: W3C PROV provenance for MLflow, switched on by the tracking URI.

``mlflow.set_tracking_uri("prov:///path/runs")`` stores runs in a normal MLflow SQL store
and, in the same transactions, an append-only provenance journal. Importing this package
has no side effects: MLflow finds the store through entry points (see ``builders``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlflow-prov")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "log_model_input", "log_run_artifact_as_dataset"]

# Lineage helpers, imported on first use so that ``import mlflow_prov`` stays free of MLflow.
_LAZY = {"log_run_artifact_as_dataset": "mlflow_prov.inputs",
         "log_model_input": "mlflow_prov.inputs"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlflow_prov' has no attribute {name!r}")
