"""The ``runs:/<run_id>/<path>`` dataset source: MLflow's dataset registry resolves such URIs
to it (``mlflow.data.from_pandas(df, source="runs:/…")``), and exporters follow it back to the
run that logged the artifact.

Private on purpose: MLflow asks for this class while ``import mlflow`` runs, so the module
that defines it must never be the one that starts MLflow's import. Reach it as
``mlflow_prov.inputs.RunArtifactDatasetSource`` (the entry point's target), which imports
MLflow first.
"""

from __future__ import annotations

from typing import Any

from mlflow.data.dataset_source import DatasetSource

from mlflow_prov.inputs import SOURCE_TYPE, split_runs_uri


class RunArtifactDatasetSource(DatasetSource):
    """A dataset stored as an artifact of an MLflow run, named ``runs:/<run_id>/<path>``."""

    def __init__(self, uri: str) -> None:
        split_runs_uri(uri)
        self._uri = str(uri).rstrip("/")

    @property
    def uri(self) -> str:
        """The ``runs:/<run_id>/<path>`` URI; exporters match it to the producing run."""
        return self._uri

    @property
    def run_id(self) -> str:
        """The run that logged the artifact."""
        return split_runs_uri(self._uri)[0]

    @property
    def path(self) -> str:
        """The artifact path inside that run."""
        return split_runs_uri(self._uri)[1]

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self, dst_path: str | None = None) -> str:
        """Download the artifact and return its local path."""
        from mlflow.artifacts import download_artifacts

        return download_artifacts(artifact_uri=self._uri, dst_path=dst_path)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        if not isinstance(raw_source, str):
            return False
        try:
            split_runs_uri(raw_source)
        except ValueError:
            return False
        return True

    @classmethod
    def _resolve(cls, raw_source: Any) -> RunArtifactDatasetSource:
        return cls(raw_source)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> RunArtifactDatasetSource:
        return cls(source_dict["uri"])
