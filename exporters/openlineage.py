"""An experiment's runs as OpenLineage run events, sent to an endpoint or written to a file.

The runs are read as the export reads them (:mod:`exporters.collect`: MLflow's client API,
redacted records, artifacts hashed) and turned into the same events the live emitter sends
(:mod:`mlflow_prov.openlineage_events`), plus what only a reader after the fact has: every
metric's count, minimum, maximum and step range, registered model versions, and each
artifact with its sha256. A run's times are MLflow's; where MLflow has none (a run killed
without an end time) the journal's time of the transition stands in.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage

from exporters.collect import (
    find_experiment,
    find_runs,
    logged_models_by_run,
    metric_series,
    open_client,
    read_history,
    run_record,
    summarise,
)
from exporters.errors import WriterError
from exporters.options import ExportOptions
from exporters.privacy import Pseudonymizer, redact_text
from exporters.records import HistoryEvent, MetricSeries, RunRecord
from mlflow_prov.openlineage_events import (
    TERMINAL_EVENTS,
    LineageDataset,
    MetricFacts,
    RunFacts,
    artifact_name,
    dataset_name,
    logged_model_name,
    model_version_name,
    run_events,
    schema_fields,
)
from mlflow_prov.vocabulary import EventKind

INSTALL_HINT = "pip install 'mlflow-prov[openlineage]'"
SEND_TIMEOUT_S = 10.0
# two retries a second apart for an endpoint that hiccups, not the client's five (~10 s of
# backoff) before an unreachable URL is reported
RETRY = {"total": 2, "read": 2, "connect": 2, "backoff_factor": 0.5,
         "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["HEAD", "POST"]}


@dataclass(frozen=True)
class Destination:
    """Where the events go: an OpenLineage HTTP endpoint, or a JSON Lines file."""

    url: str | None = None
    endpoint: str | None = None
    file: Path | None = None


def experiment_events(tracking_uri: str, experiment: str, namespace: str) -> list[Any]:
    """Every event of the experiment's runs (deleted runs left out), oldest run first."""
    _client_class()
    client = open_client(tracking_uri)
    found = find_experiment(client, experiment)
    _, _, history = read_history(tracking_uri, found.experiment_id, Pseudonymizer(False))
    models = logged_models_by_run(client, found.experiment_id)
    events: list[Any] = []
    for run in find_runs(client, found.experiment_id):
        if run.info.lifecycle_stage == LifecycleStage.DELETED:
            continue
        record = run_record(client, run, options=ExportOptions(),
                            pseudonymize=Pseudonymizer(False),
                            models=models.get(run.info.run_id, []),
                            history=history.get(run.info.run_id, []))
        facts = facts_of_record(record, found.name, tuple(_metric_facts(client, record)))
        events.extend(run_events(facts, namespace))
    return events


def send(events: list[Any], destination: Destination) -> None:
    """Through the ``openlineage-python`` client: POSTed one by one, or written to a file
    that appears whole or not at all."""
    client_class = _client_class()
    if destination.file is not None:
        _write_file(client_class, events, destination.file)
    else:
        _post(client_class, events, destination)


def _client_class() -> Any:
    """The client's class, or one line saying how to install it (before any run is read)."""
    try:
        from openlineage.client import OpenLineageClient
    except ImportError as exc:
        raise WriterError(f"OpenLineage needs openlineage-python: {INSTALL_HINT}") from exc
    return OpenLineageClient


def facts_of_record(record: RunRecord, experiment_name: str,
                    metrics: tuple[MetricFacts, ...]) -> RunFacts:
    """A run record (already redacted) as the facts its events tell."""
    inputs = tuple(LineageDataset(dataset_name(d.source, d.name), d.digest,
                                  schema_fields(d.schema)) for d in record.datasets)
    inputs += tuple(LineageDataset(logged_model_name(m)) for m in record.input_model_ids)
    outputs = tuple(LineageDataset(logged_model_name(m.model_id)) for m in record.logged_models)
    outputs += tuple(LineageDataset(model_version_name(v.name, v.version), v.model_id)
                     for v in record.model_versions)
    outputs += tuple(LineageDataset(artifact_name(record.run_id, a.path), a.sha256)
                     for a in record.artifacts if a.skipped is None)
    started, ended = _journal_times(record.history)
    return RunFacts(
        run_id=record.run_id, experiment_name=experiment_name, status=record.status,
        start_ms=_ms(record.start_time) or started, end_ms=_ms(record.end_time) or ended,
        parent_run_id=record.parent_run_id, params=record.params, metrics=metrics,
        inputs=inputs, outputs=outputs)


def _metric_facts(client: MlflowClient, record: RunRecord) -> Iterator[MetricFacts]:
    """Each metric key summarised over its whole history (every context together)."""
    for key in record.metric_keys:
        parts = list(metric_series(client, record, key, ExportOptions().context_prefixes))
        if not parts:
            continue
        summary = summarise(_joined(parts), None)
        yield MetricFacts(key=key, last=summary.last, count=summary.count, min=summary.min,
                          max=summary.max, first_step=summary.first_step,
                          last_step=summary.last_step)


def _joined(parts: list[MetricSeries]) -> MetricSeries:
    """One key's series, split by context for the export, as the one series MLflow keeps."""
    first = parts[0]
    return MetricSeries(
        run_id=first.run_id, key=first.key, context=None, source=first.source,
        steps=np.concatenate([p.steps for p in parts]),
        timestamps_ms=np.concatenate([p.timestamps_ms for p in parts]),
        values=np.concatenate([p.values for p in parts]))


def _journal_times(history: tuple[HistoryEvent, ...]) -> tuple[int | None, int | None]:
    """When the journal recorded the run's creation and its (last) end."""
    started = ended = None
    for event in history:
        if event.kind == EventKind.RUN_CREATED:
            started = _ms(event.time)
        elif (event.kind == EventKind.RUN_UPDATED
              and event.payload.get("new_status") in TERMINAL_EVENTS):
            ended = _ms(event.time)
    return started, ended


def _ms(moment: Any) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _write_file(client_class: Any, events: list[Any], path: Path) -> None:
    """JSON Lines through the client's file transport, into a temporary file beside
    ``path`` that replaces it once every event is in."""
    from openlineage.client.transport.file import FileConfig, FileTransport

    folder = path.resolve().parent
    if not folder.is_dir():
        raise WriterError(f"cannot write {path}: folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    os.close(handle)
    try:
        client = client_class(transport=FileTransport(
            FileConfig(log_file_path=temporary, append=True)))
        for event in events:
            client.emit(event)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as exc:
        raise WriterError(f"cannot write {path}: {exc}") from exc
    finally:
        Path(temporary).unlink(missing_ok=True)


def _post(client_class: Any, events: list[Any], destination: Destination) -> None:
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    assert destination.url is not None
    config = HttpConfig(url=destination.url, timeout=SEND_TIMEOUT_S, retry=dict(RETRY))
    if destination.endpoint:
        config.endpoint = destination.endpoint
    client = client_class(transport=HttpTransport(config))
    for number, event in enumerate(events, start=1):
        try:
            client.emit(event)
        except Exception as exc:  # requests' and the client's errors alike, one line each
            reason = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise WriterError(f"cannot send OpenLineage event {number} of {len(events)} to "
                              f"{redact_text(destination.url)}: {reason}") from exc
