"""Fetch MLflow artifacts for hashing and packing, quietly.

MLflow draws a tqdm bar for every ``download_artifacts`` call; an export that downloads each
artifact of each run on its own would fill the terminal with them, and the export draws its
own progress bars already.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import mlflow

PROGRESS_BAR_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@contextmanager
def _progress_bars_off() -> Iterator[None]:
    """MLflow's artifact progress bars off for the duration of the block only: MLflow reads
    the variable each time it draws a bar, so the caller's own setting comes back after."""
    previous = os.environ.get(PROGRESS_BAR_VARIABLE)
    os.environ[PROGRESS_BAR_VARIABLE] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_BAR_VARIABLE, None)
        else:
            os.environ[PROGRESS_BAR_VARIABLE] = previous


def download(uri: str, dst_path: Path, tracking_uri: str) -> Path:
    """Download one artifact into ``dst_path`` without progress bars. ``tracking_uri``
    resolves ``runs:/`` and ``mlflow-artifacts:`` URIs against the export's source rather
    than the process-wide tracking URI. Raises MlflowException or OSError."""
    with _progress_bars_off():
        return Path(mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(dst_path), tracking_uri=tracking_uri))


def local_path(uri: str) -> Path | None:
    """The file behind a ``file:`` URI or a plain path; ``None`` for remote schemes and for
    ``file://host/…`` URIs naming another machine."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file") and not parts.netloc:
        return Path(unquote(parts.path))
    return None
