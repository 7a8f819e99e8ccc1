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

__all__ = ["__version__"]
