"""Every MLflow internal the export room relies on, in one place, each under a contract.

The export reads MLflow through its public client API; the one exception is downloading a
single artifact file. ``mlflow.artifacts.download_artifacts`` draws a progress bar per call
(only an environment variable turns it off, which would change the whole process), so one
file is fetched through the artifact repository's own per-file download instead.

Same rules as :mod:`mlflow_prov.compat` (see its docstring for how to add an entry): an
accessor per internal, a ``@contract`` check per accessor, registered in :data:`CONTRACTS`
here, which ``tests/unit/test_compat.py`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_prov.compat import CompatError, Contract, contract

__all__ = ["CONTRACTS", "CompatError", "Contract", "artifact_repository", "download_file",
           "tracking_store_schemes"]

CONTRACTS: list[Contract] = []


def _contract(relies_on: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    return contract("mlflow", relies_on, registry=CONTRACTS)


def artifact_repository(root_uri: str, tracking_uri: str) -> Any:
    """The artifact repository of a run's artifact root; ``tracking_uri`` resolves
    ``mlflow-artifacts:`` roots against the export's source, not the process-wide URI."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(root_uri, tracking_uri=tracking_uri)


@_contract("mlflow.store.artifact.artifact_repository_registry.get_artifact_repository("
           "artifact_uri, tracking_uri=)")
def _check_artifact_repository() -> None:
    import inspect

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    parameters = list(inspect.signature(get_artifact_repository).parameters)
    assert parameters[:2] == ["artifact_uri", "tracking_uri"], f"parameters are {parameters}"


def download_file(repository: Any, path: str, local: Path) -> Path:
    """Download the one artifact file ``path`` (relative to the repository root) to ``local``,
    without progress bars for ordinary sizes (MLflow draws one only above 500 MB)."""
    local.parent.mkdir(parents=True, exist_ok=True)
    repository._download_file(remote_file_path=path, local_path=str(local))
    return local


@_contract("ArtifactRepository._download_file(remote_file_path, local_path)")
def _check_download_file() -> None:
    import inspect

    from mlflow.store.artifact.artifact_repo import ArtifactRepository
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    for repository in (ArtifactRepository, HttpArtifactRepository, LocalArtifactRepository):
        parameters = list(inspect.signature(repository._download_file).parameters)
        assert parameters[1:3] == ["remote_file_path", "local_path"], (
            f"{repository.__name__}: parameters are {parameters}")


def tracking_store_schemes() -> list[str]:
    """Every tracking-URI scheme MLflow's store registry answers, its own and plugins':
    the export names a mistyped scheme itself, before MLflow answers it with its
    model-registry message (issue 10)."""
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    return sorted(scheme for scheme in _tracking_store_registry._registry if scheme)


@_contract("mlflow.tracking._tracking_service.utils._tracking_store_registry._registry "
           "(scheme -> store builder)")
def _check_tracking_store_schemes() -> None:
    schemes = tracking_store_schemes()
    for expected in ("file", "sqlite", "postgresql", "mysql", "http", "https", "prov"):
        assert expected in schemes, f"{expected!r} missing from {schemes}"
