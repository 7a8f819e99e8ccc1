"""Artifact manifests: every file of a run (of a LoggedModel) with its size and SHA-256,
journaled when the run ends (the model is finalized).

Why at the end: the tracking store never sees ``log_artifact`` (docs/internals.md, "Plugin
mechanics"), so the files are read back from the artifact root, once, where the store can
read it (a local folder or a ``file:`` URI, as the ``prov:`` default artifact root is).
Other roots (``mlflow-artifacts:`` behind ``mlflow server``, object storage) are recorded per
upload by :mod:`mlflow_prov.artifact_uploads` where uploads pass through the server, and
``mlflow-prov verify --artifacts`` says which runs have no record and why.

The files are hashed *before* MLflow's write opens its transaction (:class:`RecordsArtifacts`
sits beneath the journaling hook and above MLflow's method), so no database lock is held
while a large model is read; the describer then only picks the manifest up
(:func:`pending_manifest`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from mlflow.entities import RunStatus

from mlflow_prov.vocabulary import (
    ArtifactFile,
    ArtifactsRecordedPayload,
    logged_model_chain,
    run_chain,
)

_pending = threading.local()


class ArtifactOwners:
    """Runs' and LoggedModels' ``(experiment id, artifact URI)`` as this process last saw
    them, per database: both never change once the object exists, so a run end this process
    created and an upload through the ``prov`` server app read no row for them. A purge
    journaled here forgets the object. Bounded: cleared when it grows past ``MAX_OBJECTS``."""

    MAX_OBJECTS = 4096

    def __init__(self) -> None:
        self._known: dict[tuple[sa.engine.URL, str], tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def remember(self, url: sa.engine.URL, object_id: str, experiment_id: str,
                 artifact_uri: str | None) -> None:
        with self._lock:
            if len(self._known) >= self.MAX_OBJECTS:
                self._known.clear()
            self._known[(url, object_id)] = (experiment_id, artifact_uri)

    def get(self, url: sa.engine.URL, object_id: str) -> tuple[str, str | None] | None:
        with self._lock:
            return self._known.get((url, object_id))

    def forget(self, url: sa.engine.URL, object_id: str) -> None:
        with self._lock:
            self._known.pop((url, object_id), None)


artifact_owners = ArtifactOwners()


def local_root(uri: str | None) -> Path | None:
    """The folder behind an artifact root the store can read: a plain path or a ``file:``
    URI on this machine; ``None`` for any other scheme."""
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme in ("", "file") and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    return None


def hash_file(path: Path) -> tuple[int, str]:
    """(size, SHA-256) of one file, in one streamed pass."""
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return handle.tell(), digest.hexdigest()


def manifest(artifact_uri: str) -> ArtifactsRecordedPayload | None:
    """Every regular file under a readable artifact root, sorted by path; ``None`` when the
    root is not one the store can read. Links are not followed (one could name any file on
    the machine); a root that does not exist yet holds no files."""
    root = local_root(artifact_uri)
    if root is None:
        return None
    files: list[ArtifactFile] = []
    for folder, folders, names in os.walk(root, followlinks=False):
        folders.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            try:
                size, sha256 = hash_file(path)
            except OSError:  # removed or unreadable meanwhile: verify names it later
                continue
            files.append({"path": path.relative_to(root).as_posix(), "size": size,
                          "sha256": sha256})
    files.sort(key=lambda found: found["path"])
    return {"artifact_uri": artifact_uri, "files": files}


def pending_manifest(chain: str) -> ArtifactsRecordedPayload | None:
    """The manifest read for ``chain`` by the write now in progress in this thread."""
    return getattr(_pending, "manifests", {}).get(chain)


@contextmanager
def _manifest_for(chain: str, read: Callable[[], ArtifactsRecordedPayload | None]
                  ) -> Iterator[None]:
    manifests = getattr(_pending, "manifests", None)
    if manifests is None:
        manifests = _pending.manifests = {}
    manifests[chain] = read()
    try:
        yield
    finally:
        manifests.pop(chain, None)


class RecordsArtifacts:
    """Tracking-store mixin: read the artifact manifest of a run that ends (a LoggedModel
    being finalized) before MLflow's write begins; the write's describer journals it
    (:mod:`mlflow_prov.events_artifacts`)."""

    engine: sa.engine.Engine

    def remember_artifact_uri(self, run_id: str, experiment_id: str,
                              artifact_uri: str | None) -> None:
        """A run's experiment and artifact URI as its creation recorded them (they never
        change): ending the run, or an upload to it through this process, reads no row."""
        artifact_owners.remember(self.engine.url, run_id, experiment_id, artifact_uri)

    def forget_artifact_owner(self, object_id: str) -> None:
        """A purged run or model: an upload under its path is no longer its file."""
        artifact_owners.forget(self.engine.url, object_id)

    def update_run_info(self, run_id, run_status, end_time, run_name):
        if run_status is None or not RunStatus.is_terminated(run_status):
            return super().update_run_info(run_id, run_status, end_time, run_name)
        with _manifest_for(run_chain(run_id), lambda: manifest(self._run_artifact_uri(run_id))):
            return super().update_run_info(run_id, run_status, end_time, run_name)

    def finalize_logged_model(self, model_id, status):
        with _manifest_for(logged_model_chain(model_id),
                           lambda: manifest(self._model_artifact_uri(model_id))):
            return super().finalize_logged_model(model_id, status)

    def _run_artifact_uri(self, run_id: Any) -> str | None:
        from mlflow.store.tracking.dbmodels.models import SqlRun

        known = artifact_owners.get(self.engine.url, str(run_id))
        if known is not None:
            return known[1]
        return self._artifact_uri(sa.select(SqlRun.artifact_uri)
                                  .where(SqlRun.run_uuid == str(run_id)))

    def _model_artifact_uri(self, model_id: Any) -> str | None:
        from mlflow.store.tracking.dbmodels.models import SqlLoggedModel

        return self._artifact_uri(sa.select(SqlLoggedModel.artifact_location)
                                  .where(SqlLoggedModel.model_id == str(model_id)))

    def _artifact_uri(self, query: sa.Select) -> str | None:
        """Read on a connection of its own, outside any write scope or transaction."""
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()
