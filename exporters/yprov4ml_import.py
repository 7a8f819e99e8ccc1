"""Bring old yProv4ML runs (PROV-JSON of generations v0 to v3) into an MLflow store.

Each document becomes one MLflow run, written only through MLflow's public client, so on a
``prov:`` store every write is journaled like any other: params (a context as key prefix,
``train/lr``), the full metric series the files hold (contexts as key prefixes, as capture
writes them; yProv4ML's system metrics as ``system/<name>``), start and end times, the user,
and the artifact references (``yprov4ml/artifacts.json``, beside a copy of the document).

Re-importing is idempotent: the source file's sha256 is a run tag
(:data:`~mlflow_prov.vocabulary.YPROV4ML_SOURCE_DIGEST_TAG`, hence also in the journal) and a
file whose digest a run already carries is skipped. Series the getters refuse (a truncated
list without its full copy, a missing file) and per-step list values (MLflow metrics are
numbers) are left out and reported with their reason; the rest of the run is imported.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from exporters.getters import ProvenanceDocument, ProvenanceReadError, get_metric, load
from mlflow_prov.vocabulary import (
    CONTEXTS_TAG,
    SYSTEM_PREFIX,
    YPROV4ML_GENERATION_TAG,
    YPROV4ML_SOURCE_DIGEST_TAG,
    YPROV4ML_SOURCE_PATH_TAG,
    context_key_prefix,
    is_free_form_context,
    normalise_context,
)

BATCH = 1000  # MLflow's limit of metrics per log_batch
PARAM_BATCH = 100  # and of params per log_batch
ARTIFACT_DIR = "yprov4ml"
_INVALID_KEY_CHARS = re.compile(r"[^\w\-. /]")
_SYSTEM_SOURCES = ("SYSTEM_METRIC", "psutil", "codecarbon", "pynvml")


@dataclass
class ImportResult:
    """What importing one file did."""

    path: Path
    run_id: str | None = None
    skipped: str | None = None  # why nothing was imported
    not_provenance: bool = False  # skipped because it is no yProv4ML PROV-JSON at all
    params: int = 0
    metrics: int = 0
    points: int = 0
    refused: list[str] = field(default_factory=list)  # "<metric>: <reason>"
    seconds: float = 0.0


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes: the identity a re-import is recognised by."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_documents(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """(file, named explicitly) for the given files and every ``*.json`` under the given
    folders, in a stable order; Zarr stores' own ``zarr.json`` files are not candidates."""
    for path in paths:
        if path.is_dir():
            yield from ((p, False) for p in sorted(path.rglob("*.json")) if p.is_file()
                        and not any(part.endswith(".zarr") for part in p.parts))
        else:
            yield path, True


def _key(name: str) -> str:
    """An MLflow-valid key (letters, digits, ``_ - . / space``)."""
    return _INVALID_KEY_CHARS.sub("_", str(name)).strip() or "_"


def _context(context: Any) -> str | None:
    """yProv4ML's ``Context.TRAINING`` / ``TRAINING`` / ``TRAINING_LOD2`` as ours."""
    if context is None or str(context).strip() in ("", "None"):
        return None
    return normalise_context(str(context).removeprefix("Context."))


def _metric_key(name: str, context: str | None, source: Any) -> str:
    if any(marker in str(source or "") for marker in _SYSTEM_SOURCES):
        return SYSTEM_PREFIX + _key(name)
    return (context_key_prefix(context) if context else "") + _key(name)


def _millis(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


class Importer:
    """Imports documents into one tracking URI; remembers the digests already there."""

    def __init__(self, tracking_uri: str, experiment: str | None = None) -> None:
        self.client = MlflowClient(tracking_uri)
        self.experiment = experiment
        self._imported = self._known_digests()

    def _known_digests(self) -> dict[str, str]:
        """digest -> run id for every run (any experiment, deleted ones too) already
        carrying a source digest."""
        from mlflow.entities import ViewType

        experiment_ids = [e.experiment_id for e in
                          self.client.search_experiments(view_type=ViewType.ALL)]
        found: dict[str, str] = {}
        for start in range(0, len(experiment_ids), 100):
            for run in self.client.search_runs(
                    experiment_ids[start:start + 100],
                    filter_string=f"tags.`{YPROV4ML_SOURCE_DIGEST_TAG}` != ''",
                    run_view_type=ViewType.ALL, max_results=50000):
                found[run.data.tags[YPROV4ML_SOURCE_DIGEST_TAG]] = run.info.run_id
        return found

    def import_file(self, path: Path) -> ImportResult:
        """Import one document, or say why not (not yProv4ML's, already imported)."""
        started = time.perf_counter()
        result = ImportResult(path=path)
        digest = file_digest(path)
        if digest in self._imported:
            result.skipped = f"already imported as run {self._imported[digest]}"
            return result
        try:
            doc = load(path)
        except ProvenanceReadError as exc:
            result.skipped, result.not_provenance = exc.reason, True
            return result
        if not doc.generation.startswith("yprov4ml"):
            result.skipped = f"a {doc.generation} document, not yProv4ML's"
            result.not_provenance = True
            return result
        result.run_id = self._write_run(doc, digest, result)
        self._imported[digest] = result.run_id
        result.seconds = time.perf_counter() - started
        return result

    def _experiment_id(self, doc: ProvenanceDocument) -> str:
        name = self.experiment or next(
            (str(r["name"]) for r in doc.runs if r.get("name")), "yprov4ml-import")
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found else self.client.create_experiment(name)

    def _write_run(self, doc: ProvenanceDocument, digest: str, result: ImportResult) -> str:
        info = doc.runs[0] if doc.runs else {}
        tags = {YPROV4ML_SOURCE_DIGEST_TAG: digest, YPROV4ML_SOURCE_PATH_TAG: str(doc.path),
                YPROV4ML_GENERATION_TAG: doc.generation}
        if info.get("user"):
            tags["mlflow.user"] = str(info["user"])
        start_ms = _millis(info.get("start_time"))
        run = self.client.create_run(self._experiment_id(doc), start_time=start_ms, tags=tags,
                                     run_name=str(info.get("name") or doc.path.stem))
        run_id = run.info.run_id
        result.params = self._log_params(run_id, doc)
        contexts = self._log_metrics(run_id, doc, result)
        free = sorted(c for c in contexts if is_free_form_context(c))
        if free:
            self.client.set_tag(run_id, CONTEXTS_TAG, ",".join(free))
        self._log_references(run_id, doc)
        end_ms = _millis(info.get("end_time")) or start_ms
        self.client.set_terminated(run_id, "FINISHED", end_time=end_ms)
        return run_id

    def _log_params(self, run_id: str, doc: ProvenanceDocument) -> int:
        params: dict[str, str] = {}
        for param in doc.params:
            context = _context(param.get("context"))
            key = (context_key_prefix(context) if context else "") + _key(param["name"])
            params.setdefault(key, str(param["value"]))  # MLflow keeps one value per key
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(run_id, params=items[start:start + PARAM_BATCH])
        return len(items)

    def _log_metrics(self, run_id: str, doc: ProvenanceDocument,
                     result: ImportResult) -> set[str]:
        contexts: set[str] = set()
        pending: list[Metric] = []
        for ref in doc.metrics:
            label = f"{ref.key} ({ref.context})" if ref.context else ref.key
            try:
                series = get_metric(doc, ref.entity_id or ref.key, ref.context, ref.run_id)
            except (ProvenanceReadError, KeyError) as exc:
                result.refused.append(f"{label}: {getattr(exc, 'reason', exc)}")
                continue
            if series["value"].dtype == object:
                result.refused.append(f"{label}: per-step list values (MLflow metrics are "
                                      "numbers)")
                continue
            context = _context(ref.context)
            key = _metric_key(ref.key, context, ref.source)
            if context and not key.startswith(SYSTEM_PREFIX):
                contexts.add(context)
            pending += [Metric(key, float(v), int(t), int(s)) for s, t, v in zip(
                series["step"], series["timestamp"], series["value"], strict=True)]
            result.metrics += 1
            result.points += len(series)
            while len(pending) >= BATCH:
                self.client.log_batch(run_id, metrics=pending[:BATCH])
                pending = pending[BATCH:]
        if pending:
            self.client.log_batch(run_id, metrics=pending)
        return contexts

    def _log_references(self, run_id: str, doc: ProvenanceDocument) -> None:
        """The document itself, and the artifacts it names (paths and URIs, not the files:
        yProv4ML recorded paths on the machine that trained)."""
        references = [{k: v for k, v in artifact.items() if v is not None and k != "run_id"}
                      for artifact in doc.artifacts]
        with tempfile.TemporaryDirectory(prefix="yprov4ml-import-") as scratch:
            listing = Path(scratch) / "artifacts.json"
            listing.write_text(json.dumps(references, indent=1, default=str), encoding="utf-8")
            self.client.log_artifact(run_id, str(listing), ARTIFACT_DIR)
            self.client.log_artifact(run_id, str(doc.path), ARTIFACT_DIR)
