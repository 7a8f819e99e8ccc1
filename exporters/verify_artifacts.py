"""The artifact files the journal recorded, against the files there now.

The journal says which files a run (a LoggedModel) holds: a manifest when the run ended (the
model was finalized), then one event per upload through ``mlflow server``
(:mod:`mlflow_prov.artifact_records`, :mod:`mlflow_prov.artifact_uploads`).
:func:`recorded_files` replays them; ``mlflow-prov verify --artifacts``
(:func:`check_artifacts`) rehashes every file and names each one changed, added or removed
since it was recorded; an export compares the hashes it computed anyway
(:func:`artifacts_verified`, ``mlflowprov:artifactsVerified``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from exporters.artifacts import ArtifactCache, local_path
from exporters.compat import artifact_repository
from exporters.options import ExportOptions
from exporters.records import RunRecord
from exporters.verify import Problem
from mlflow_prov.journal import JournalEvent, read_events_paged
from mlflow_prov.vocabulary import (
    ARTIFACT_MANIFEST_KINDS,
    ARTIFACT_UPLOAD_KINDS,
    ChainKind,
    logged_model_chain,
    parse_chain,
    run_chain,
)

ARTIFACT_KINDS = sorted(str(kind) for kind in ARTIFACT_MANIFEST_KINDS | ARTIFACT_UPLOAD_KINDS)
PAGE = 1000
SHOWN_DIGEST = 12
Files = dict[str, tuple[int, str]]


@dataclass
class ArtifactReport:
    """What ``verify --artifacts`` found: problems (exit non-zero), notes (runs whose files
    no event recorded, with why) and how many files were rehashed."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0


def recorded_files(events: Iterable[Any]) -> Files | None:
    """path -> (size, SHA-256) as a chain's events (in write order) recorded them: a
    manifest replaces what came before, an upload adds or replaces one file. ``None`` when
    no event recorded the object's files."""
    files: Files | None = None
    for event in events:
        payload = event.payload
        if event.kind in ARTIFACT_MANIFEST_KINDS:
            files = {entry["path"]: (entry["size"], entry["sha256"])
                     for entry in payload.get("files") or ()}
        elif event.kind in ARTIFACT_UPLOAD_KINDS:
            files = {**(files or {}), payload["path"]: (payload["size"], payload["sha256"])}
    return files


def recorded_run_files(tracking_uri: str, run_id: str) -> Files | None:
    """The files a run's journal recorded (sorted by path), read without its other events:
    what the run page lists as soon as the run ended or a file was uploaded."""
    recorded = recorded_files(list(read_events_paged(
        tracking_uri, run_id=run_id, chain=run_chain(run_id), kinds=ARTIFACT_KINDS,
        page_size=PAGE)))
    return None if recorded is None else dict(sorted(recorded.items()))


def artifacts_verified(artifacts: Sequence[Any], history: Sequence[Any]) -> bool | None:
    """Whether an export's hashed artifact files (``ArtifactRecord``s) are the files the
    run's journal recorded; ``None`` when it recorded none."""
    recorded = recorded_files(history)
    if recorded is None:
        return None
    exported = {record.path: (record.size, record.sha256) for record in artifacts
                if record.sha256 is not None}
    return exported == recorded


def with_artifacts_verified(record: RunRecord, history: Sequence[Any],
                            options: ExportOptions) -> RunRecord:
    """The run record with ``artifacts_verified`` set from its history; left unknown when
    the export omits artifacts (nothing was hashed to compare)."""
    if "artifacts" in options.omit:
        return record
    return replace(record, artifacts_verified=artifacts_verified(record.artifacts, history))


def check_artifacts(tracking_uri: str, experiment_id: str | None = None,
                    run_ids: Sequence[str] = (),
                    artifact_server: str | None = None) -> ArtifactReport:
    """Rehash the artifact files of every run and LoggedModel in scope (a store, one
    experiment, some runs) and compare them with the journal's record. ``artifact_server``:
    the ``mlflow server`` that serves ``mlflow-artifacts:`` roots (http://host:port)."""
    client = MlflowClient(tracking_uri)
    recorded = _artifact_events(tracking_uri, experiment_id, run_ids)
    runs = _runs(client, experiment_id, run_ids)
    report = ArtifactReport()
    with ArtifactCache(artifact_server or tracking_uri) as cache:
        for run in runs:
            info = run.info
            _check(f"run {info.run_id}", info.artifact_uri, info.status,
                   recorded.get(run_chain(info.run_id)), cache, report)
        for model in _models(client, [run.info.experiment_id for run in runs], run_ids):
            _check(f"logged model {model.model_id}", model.artifact_location,
                   str(model.status), recorded.get(logged_model_chain(model.model_id)), cache,
                   report)
    return report


def _artifact_events(tracking_uri: str, experiment_id: str | None,
                     run_ids: Sequence[str]) -> dict[str, list[JournalEvent]]:
    """The artifact events of each chain, page by page (only these kinds are read)."""
    by_chain: dict[str, list[JournalEvent]] = defaultdict(list)
    for event in read_events_paged(tracking_uri, experiment_id=experiment_id,
                                   kinds=ARTIFACT_KINDS, page_size=PAGE):
        kind, object_id = parse_chain(event.chain)
        if not run_ids or kind != ChainKind.RUN or object_id in run_ids:
            by_chain[event.chain].append(event)
    return by_chain


def _runs(client: MlflowClient, experiment_id: str | None, run_ids: Sequence[str]) -> list[Any]:
    if run_ids:
        return [run for run in map(_run_or_none(client), run_ids) if run is not None]
    experiments = ([experiment_id] if experiment_id is not None else
                   [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)])
    runs: list[Any] = []
    for found in experiments:
        token = None
        while True:
            page = client.search_runs([found], run_view_type=ViewType.ALL, max_results=1000,
                                      page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                break
    return runs


def _run_or_none(client: MlflowClient) -> Any:
    """A look-up that skips runs MLflow does not have (verify names those already)."""
    def look_up(run_id: str) -> Any:
        try:
            return client.get_run(run_id)
        except MlflowException:
            return None
    return look_up


def _models(client: MlflowClient, experiment_ids: list[str], run_ids: Sequence[str]) -> list[Any]:
    """The LoggedModels of the experiments the runs are in (of those runs, when selected)."""
    models: list[Any] = []
    for experiment_id in sorted(set(experiment_ids)):
        token = None
        while True:
            page = client.search_logged_models(experiment_ids=[experiment_id], max_results=100,
                                               page_token=token)
            models += [model for model in page
                       if not run_ids or model.source_run_id in run_ids]
            token = page.token
            if not token:
                break
    return models


def _check(where: str, root_uri: str, status: str, events: list[JournalEvent] | None,
           cache: ArtifactCache, report: ArtifactReport) -> None:
    try:
        current = _current_files(root_uri, cache)
    except (MlflowException, OSError) as error:
        report.notes.append(f"{where}: cannot read its artifacts at {root_uri} ({_reason(error)})"
                            f"{_server_hint(root_uri)}")
        return
    report.files += len(current)
    recorded = recorded_files(events or ())
    if recorded is None:
        if current:
            report.notes.append(f"{where}: {len(current)} artifact file(s) but no artifact "
                                f"record: {_why_unrecorded(root_uri, status)}")
        return
    added = sorted(set(current) - set(recorded))
    for path in sorted({*recorded, *current}):
        subject = f"{where} artifact {path!r}"
        if path not in current:
            report.problems.append(Problem(subject, "removed since it was recorded"))
        elif path not in recorded:
            report.problems.append(Problem(subject, f"added since the artifacts were recorded "
                                                    f"({_shown(current[path])})"))
        elif current[path] != recorded[path]:
            report.problems.append(Problem(subject, f"changed since it was recorded: now "
                                                    f"{_shown(current[path])}, recorded "
                                                    f"{_shown(recorded[path])}"))
    note = _added_after_end(where, root_uri, status, added)
    if note is not None:
        report.notes.append(note)


def _added_after_end(where: str, root_uri: str, status: str, added: list[str]) -> str | None:
    """The note for files added to an ended run's local artifact folder: the client writes
    those itself (docs/verify.md, "Artifact files: `--artifacts`"), so one it logged after
    the run ended was never recorded, and nothing in the folder tells it from a file put
    there outside MLflow. Both are reported as added; this says so, and how to record them."""
    if not added or not where.startswith("run ") or status == "RUNNING" or \
            local_path(root_uri) is None:
        return None
    return (f"{where}: {len(added)} file(s) added after its run-end record: either logged "
            "after the run ended (a client writes a local store's files itself, and nothing "
            "records them then) or put there outside MLflow, which look the same; if you "
            "logged them, end the run again (MlflowClient().set_terminated(run_id)) to record "
            "the files as they are now")


def _current_files(root_uri: str, cache: ArtifactCache) -> Files:
    """path -> (size, SHA-256) of every file under an artifact root now."""
    repository = artifact_repository(root_uri, cache.tracking_uri)
    files: Files = {}
    pending: list[str | None] = [None]
    while pending:
        for info in repository.list_artifacts(pending.pop()):
            if info.is_dir:
                pending.append(info.path)
            else:
                files[info.path] = cache.digest(root_uri, info.path)
    return files


def _shown(file: tuple[int, str]) -> str:
    return f"{file[0]} bytes, sha256 {file[1][:SHOWN_DIGEST]}…"


def _reason(error: BaseException) -> str:
    text = getattr(error, "message", None) or getattr(error, "strerror", None) or str(error)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(error).__name__


def _server_hint(root_uri: str) -> str:
    if urlsplit(root_uri).scheme == "mlflow-artifacts":
        return "; pass --artifact-server http://HOST:PORT, the mlflow server that serves them"
    return ""


def _why_unrecorded(root_uri: str, status: str) -> str:
    """Why no event recorded an object's files, from where they live."""
    scheme = urlsplit(root_uri).scheme
    if local_path(root_uri) is not None:
        if status == "RUNNING":
            return "the run is still running (its files are recorded when it ends)"
        return ("it ended before this store recorded artifacts, or through a store that does "
                "not (only a prov store records them when a run ends)")
    if scheme == "mlflow-artifacts":
        return ("they were uploaded through an mlflow server without the prov app "
                "(mlflow server --app-name prov records each upload)")
    return (f"the client writes them straight to {scheme}: storage, which neither the store "
            "nor the prov server app sees")
