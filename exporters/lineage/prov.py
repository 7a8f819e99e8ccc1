"""The lineage an export renders as PROV (and as its cards and drawings).

Built from the exported runs' records through the same rules as every other source
(:func:`~exporters.lineage.sources.records_events`), plus what only an export knows: each
artifact's SHA-256 and location. A dataset's origin is, in this order, what its source names
(``runs:/…``, a location inside a run's artifact folder, ``models:/<model_id>``), what the
same data under another name came from (one dataset per digest: among the exported runs, then
in the store's journal, which knows every experiment's), an exported artifact at
the same location, or an exported artifact whose SHA-256 starts with the dataset's digest (at
least 32 hex digits, as :func:`mlflow_prov.inputs.file_digest` writes it; ``sha256:`` in
front is allowed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from exporters.lineage.graph import Edge
from exporters.lineage.keys import ARTIFACT, MODEL, NodeKey, artifact_key, dataset_key, model_key
from exporters.lineage.sources import records_events
from exporters.records import DatasetRecord, LoggedModelRecord, ModelVersionRecord, RunRecord
from mlflow_prov.journal import JournalUnavailableError
from mlflow_prov.lineage_edges import (
    LineageReader,
    MemoryReader,
    backfill_rows,
    open_lineage,
    source_uri,
)

SHA256_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{32,64})$")


def normalise_uri(uri: str) -> str:
    """``file:///x`` and ``/x`` name the same local file; trailing slashes do not matter."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file") and not parts.netloc:
        return unquote(parts.path).rstrip("/")
    return uri.rstrip("/")


def dataset_uri(dataset: DatasetRecord) -> str | None:
    """The URI inside MLflow's JSON ``source`` (``uri``, ``url`` or ``path`` field)."""
    return source_uri(dataset.source)


def _journal(tracking_uri: str) -> LineageReader | None:
    try:
        return open_lineage(tracking_uri)
    except JournalUnavailableError:  # not a prov store: the exported runs are all there is
        return None


@dataclass
class ExportLineage:
    """Which run generated which artifact or model, for every exported run: what a run's
    document points at when it used another run's output."""

    reader: LineageReader
    store: LineageReader | None = None
    models: dict[str, LoggedModelRecord] = field(default_factory=dict)
    by_uri: dict[str, NodeKey] = field(default_factory=dict)
    by_sha256: dict[str, NodeKey] = field(default_factory=dict)

    @classmethod
    def build(cls, runs: Iterable[RunRecord], tracking_uri: str | None = None) -> ExportLineage:
        """The lineage of ``runs``, and of the whole store behind ``tracking_uri`` when it
        is a prov store (links into experiments the export leaves out)."""
        runs = list(runs)
        index = cls(MemoryReader(backfill_rows(records_events(runs))),
                    _journal(tracking_uri) if tracking_uri else None)
        for run in runs:
            for artifact in run.artifacts:
                key = artifact_key(run.run_id, artifact.path)
                index.by_uri[normalise_uri(artifact.uri)] = key
                if artifact.sha256:
                    index.by_sha256[artifact.sha256] = key
            for model in run.logged_models:
                index.models[model.model_id] = model
        return index

    def _origins(self, key: NodeKey) -> list[NodeKey]:
        for reader in filter(None, (self.reader, self.store)):
            found = [Edge.of(row).target for row in reader.edges([key.id], "origins")
                     if row.relation in ("wasDerivedFrom", "wasGeneratedBy")]
            if found:
                return found
        return []

    def origin_of(self, dataset: DatasetRecord) -> NodeKey | None:
        """The artifact or logged model the dataset is (see the module docstring)."""
        found = self._origins(dataset_key(dataset.digest))
        if found:
            return found[0]
        uri = dataset_uri(dataset)
        if uri and normalise_uri(uri) in self.by_uri:
            return self.by_uri[normalise_uri(uri)]
        return self.by_sha256_prefix(dataset.digest)

    def by_sha256_prefix(self, digest: str | None) -> NodeKey | None:
        match = SHA256_DIGEST.match(digest or "")
        if match is None:
            return None
        return next((key for sha256, key in self.by_sha256.items()
                     if sha256.startswith(match[1])), None)

    def version_origin(self, version: ModelVersionRecord) -> NodeKey | None:
        """The logged model (or artifact) a registry version was made from."""
        if version.model_id:
            return model_key(version.model_id)
        uri = version.source or ""
        found = self._origins(NodeKey("version", f"{version.name}/{version.version}"))
        origin = next((key for key in found if key.kind in (ARTIFACT, MODEL)), None)
        return origin or self.by_uri.get(normalise_uri(uri)) if uri else origin

    def producer_of(self, key: NodeKey) -> str | None:
        """The run that generated an artifact or logged model."""
        if key.kind == ARTIFACT:
            return key.run_id
        model = self.models.get(key.ref) if key.kind == MODEL else None
        if model is not None and model.source_run_id:
            return model.source_run_id
        return next((origin.ref for origin in self._origins(key) if origin.kind == "run"), None)
