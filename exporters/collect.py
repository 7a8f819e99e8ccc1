"""Read an MLflow experiment into typed records through MLflow's public client API.

Only ``MlflowClient``, artifact downloads (:mod:`exporters.artifacts`) and the journal's
``read_events`` are used, so the same code reads ``sqlite:``, ``postgresql:``, ``http(s):``
servers and ``prov`` stores. Metric
points are fetched one series at a time (:func:`metric_series`), never for a whole run.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from datetime import datetime
from typing import overload

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Experiment, FileInfo, LoggedModel, Metric, Run, ViewType
from mlflow.exceptions import MlflowException

from exporters.artifacts import ArtifactCache, artifact_uri, local_path
from exporters.contexts import metric_context, metric_source, run_context_prefixes
from exporters.errors import ReaderError
from exporters.guards import skip_reason
from exporters.options import ExportOptions
from exporters.privacy import Pseudonymizer, redact, redact_text, without_userinfo
from exporters.records import (
    ArtifactRecord,
    DatasetRecord,
    ExperimentRecord,
    HistoryEvent,
    LoggedModelRecord,
    MetricLocation,
    MetricSeries,
    MetricSummary,
    ModelVersionRecord,
    RunRecord,
)
from exporters.sanitize import time_from_ms
from mlflow_prov.vocabulary import DATASET_CONTEXT_TAG, normalise_context

LOCATION_TAGS = frozenset({"mlflow.source.name", "mlflow.source.git.repoURL",
                           "mlflow.project.entryPoint"})
# MLflow's SQL stores save +/-inf as +/-DBL_MAX; report them as the infinities they were.
DBL_MAX = sys.float_info.max


@overload
def to_datetime(ms: int) -> datetime: ...


@overload
def to_datetime(ms: int | None) -> datetime | None: ...


def to_datetime(ms: int | None) -> datetime | None:
    """MLflow's epoch milliseconds as an aware UTC datetime (None stays None); a time
    beyond years 1-9999 is clamped and keeps its raw value (:func:`sanitize.time_from_ms`)."""
    if ms is None:
        return None
    return time_from_ms(ms)


def open_client(tracking_uri: str) -> MlflowClient:
    """A client bound to ``tracking_uri`` (the registry URI follows it, as MLflow's default).
    A ``prov:`` path that holds no store is an error here, not a new empty store."""
    from mlflow_prov.journal import JournalUnavailableError, require_existing_store

    try:
        require_existing_store(tracking_uri)
    except JournalUnavailableError as exc:
        raise ReaderError(str(exc)) from exc
    except MlflowException as exc:  # a malformed prov URI; its message lists the valid forms
        message = " ".join(line.strip() for line in exc.message.splitlines())
        raise ReaderError(message.replace(tracking_uri, redact_text(tracking_uri))) from exc
    except OSError as exc:  # a store folder this user may not enter or read
        raise ReaderError(f"cannot read the store of {redact_text(tracking_uri)}: "
                          f"{exc.strerror or exc} ({exc.filename}); check its permissions or "
                          "export as a user who can read it") from exc
    try:
        return MlflowClient(tracking_uri=tracking_uri)
    except MlflowException as exc:
        raise ReaderError(f"cannot open tracking URI {redact_text(tracking_uri)}: "
                          f"{exc.message}") from exc


def find_experiment(client: MlflowClient, name_or_id: str) -> Experiment:
    """The experiment by exact name, else by id; a ReaderError naming both tries otherwise."""
    try:
        experiment = client.get_experiment_by_name(name_or_id)
        if experiment is None and name_or_id.isdigit():
            experiment = client.get_experiment(name_or_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            experiment = None
        else:
            raise ReaderError(f"cannot read experiment {name_or_id!r}: {exc.message}") from exc
    if experiment is None:
        raise ReaderError(f"no experiment named or numbered {name_or_id!r}")
    return experiment


def find_runs(client: MlflowClient, experiment_id: str, run_ids: tuple[str, ...] = (),
              filter_string: str | None = None) -> list[Run]:
    """The runs to export, oldest first; deleted runs included (they become invalidations)."""
    try:
        if run_ids:
            runs = [client.get_run(run_id) for run_id in run_ids]
            foreign = [r.info.run_id for r in runs if r.info.experiment_id != experiment_id]
            if foreign:
                raise ReaderError(f"run(s) {', '.join(foreign)} are not in experiment "
                                  f"{experiment_id}")
        else:
            runs = _search_all_runs(client, experiment_id, filter_string)
    except MlflowException as exc:
        raise ReaderError(f"cannot list runs of experiment {experiment_id}: "
                          f"{exc.message}") from exc
    return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))


def _search_all_runs(client: MlflowClient, experiment_id: str,
                     filter_string: str | None) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string or "",
                                  run_view_type=ViewType.ALL, max_results=1000,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def read_history(tracking_uri: str, experiment_id: str, pseudonymize: Pseudonymizer
                 ) -> tuple[bool, list[HistoryEvent], dict[str, list[HistoryEvent]]]:
    """The journal events of the experiment and of each run, or ``(False, [], {})``
    when the store has no journal (any non-prov URI, a server without the prov app).
    Payloads are as stored: the records that hold them are redacted whole."""
    from exporters.remote_journal import is_http, read_remote_events
    from mlflow_prov.journal import JournalUnavailableError, read_events

    experiment_events: list[HistoryEvent] = []
    run_events: dict[str, list[HistoryEvent]] = defaultdict(list)
    try:
        events = (read_remote_events(tracking_uri, experiment_id) if is_http(tracking_uri)
                  else read_events(tracking_uri, experiment_id=experiment_id))
        for event in events:
            record = HistoryEvent(seq=event.seq, time=event.time, kind=event.kind,
                                  payload=event.payload,
                                  writer=pseudonymize.writer(event.writer))
            if event.run_id:
                run_events[event.run_id].append(record)
            else:
                experiment_events.append(record)
    except JournalUnavailableError:
        return False, [], {}
    except Exception as exc:  # a broken journal must not pass for "no history"
        raise ReaderError(f"cannot read the provenance journal: {exc}") from exc
    return True, experiment_events, dict(run_events)


def journal_check(tracking_uri: str, run_id: str,
                  every_metric_row: bool = False) -> tuple[bool, bool]:
    """Whether the run's journal chain verifies and MLflow's rows of the run still match the
    digests its events recorded (``mlflow-prov verify --run``), and whether every metric row
    was rehashed for it: an edited event, or a metric value or tag edited in MLflow's tables,
    says so in the export instead of passing for history. Unless ``every_metric_row``, only
    the series whose stored summary marks them changed are read (see
    :mod:`exporters.verify`). Over HTTP the server checks (``/prov/api/verify``)."""
    from exporters.remote_journal import is_http, remote_chain_intact
    from exporters.verify import verify_store
    from mlflow_prov.stored_rows import UnknownSchemaError

    if is_http(tracking_uri):
        return remote_chain_intact(tracking_uri, run_id, every_metric_row=every_metric_row)
    try:
        report = verify_store(tracking_uri, run_ids=[run_id], every_metric_row=every_metric_row)
        return report.ok, report.metric_rows_rehashed
    except UnknownSchemaError as exc:
        raise ReaderError(str(exc)) from exc


def experiment_record(experiment: Experiment, tracking_uri: str, history_available: bool,
                      history: list[HistoryEvent]) -> ExperimentRecord:
    """The experiment's own facts, every secret in them (name, tags, history) redacted."""
    return redact(ExperimentRecord(
        experiment_id=experiment.experiment_id, name=experiment.name,
        artifact_location=experiment.artifact_location,
        lifecycle_stage=experiment.lifecycle_stage,
        tags=dict(experiment.tags),
        creation_time=to_datetime(experiment.creation_time),
        last_update_time=to_datetime(experiment.last_update_time),
        tracking_uri=tracking_uri, history_available=history_available,
        history=tuple(history)))


def logged_models_by_run(client: MlflowClient, experiment_id: str) -> dict[str, list[LoggedModel]]:
    """The experiment's LoggedModels grouped by the run that created them."""
    grouped: dict[str, list[LoggedModel]] = defaultdict(list)
    token = None
    try:
        while True:
            page = client.search_logged_models(experiment_ids=[experiment_id],
                                               max_results=100, page_token=token)
            for model in page:
                grouped[model.source_run_id or ""].append(model)
            token = page.token
            if not token:
                return dict(grouped)
    except MlflowException as exc:
        raise ReaderError(f"cannot list logged models: {exc.message}") from exc


def run_record(client: MlflowClient, run: Run, *, options: ExportOptions,
               pseudonymize: Pseudonymizer, models: list[LoggedModel],
               history: list[HistoryEvent],
               journal_check: tuple[bool, bool] | None = None,
               artifacts: ArtifactCache | None = None) -> RunRecord:
    """Everything about one run except its metric summaries (filled while streaming), every
    secret in it redacted (:func:`exporters.privacy.redact`: params, tags, names, dataset
    sources, URIs, the history's payloads).
    ``journal_check``: what :func:`journal_check` found (``None``: the store has no journal).
    ``artifacts``: the export's cache, which keeps downloads a writer will pack; without
    one, remote artifacts are downloaded to be hashed and deleted at once."""
    with _own_or(artifacts, client) as cache:
        return redact(_run_record(client, run, options=options, pseudonymize=pseudonymize,
                                  models=models, history=history,
                                  journal_check=journal_check, cache=cache))


def _own_or(cache: ArtifactCache | None,
            client: MlflowClient) -> ArtifactCache | nullcontext[ArtifactCache]:
    """The caller's cache, left open for the writers after this; else one of our own."""
    return ArtifactCache(client.tracking_uri) if cache is None else nullcontext(cache)


def _run_record(client: MlflowClient, run: Run, *, options: ExportOptions,
                pseudonymize: Pseudonymizer, models: list[LoggedModel],
                history: list[HistoryEvent], journal_check: tuple[bool, bool] | None,
                cache: ArtifactCache) -> RunRecord:
    info, data = run.info, run.data
    tags = _private_tags(dict(data.tags), pseudonymize)
    outputs_step = {o.model_id: o.step for o in (run.outputs.model_outputs if run.outputs else [])}
    try:
        artifacts = (run_artifacts(client, info.run_id, info.artifact_uri, cache)
                     if "artifacts" not in options.omit else ())  # not even listed
        versions = model_versions(client, info.run_id)
        # search_runs leaves model inputs out (MLflow 3.17); get_run has them
        inputs = client.get_run(info.run_id).inputs
        model_inputs = (inputs.model_inputs if inputs is not None else None) or []
    except MlflowException as exc:
        raise ReaderError(f"cannot read run {info.run_id}: {exc.message}") from exc
    return RunRecord(
        run_id=info.run_id, name=info.run_name or info.run_id,
        experiment_id=info.experiment_id, status=info.status,
        lifecycle_stage=info.lifecycle_stage, start_time=to_datetime(info.start_time),
        end_time=to_datetime(info.end_time), user=pseudonymize(info.user_id or None),
        artifact_uri=info.artifact_uri,
        source_name=tags.get("mlflow.source.name"), source_type=tags.get("mlflow.source.type"),
        entry_point=tags.get("mlflow.project.entryPoint"),
        git_commit=tags.get("mlflow.source.git.commit"),
        git_repo_url=tags.get("mlflow.source.git.repoURL"),
        parent_run_id=tags.get("mlflow.parentRunId"),
        params=dict(data.params), tags=tags,
        metric_keys=tuple(sorted(data.metrics)),
        datasets=dataset_records(run, pseudonymize),
        artifacts=artifacts,
        logged_models=tuple(logged_model_record(client, m, outputs_step.get(m.model_id), cache)
                            for m in models),
        input_model_ids=tuple(m.model_id for m in model_inputs),
        model_versions=versions,
        history=tuple(history),
        journal_intact=journal_check[0] if journal_check else None,
        metric_rows_rehashed=journal_check[1] if journal_check else None)


def _private_tags(tags: dict[str, str], pseudonymize: Pseudonymizer) -> dict[str, str]:
    """Tags as exported: code locations without user info or (when pseudonymising) home
    folders; the run record's fields are read from these (its secrets are redacted whole)."""
    cleaned = {k: _private_location(v, pseudonymize) if k in LOCATION_TAGS else v
               for k, v in tags.items()}
    if "mlflow.user" in cleaned:
        cleaned["mlflow.user"] = pseudonymize(cleaned["mlflow.user"]) or ""
    return cleaned


def _private_location(location: str, pseudonymize: Pseudonymizer) -> str:
    """A code location (path or URL) without user info and, on request, home user names."""
    return pseudonymize.home_paths(without_userinfo(location))


def dataset_records(run: Run, pseudonymize: Pseudonymizer) -> tuple[DatasetRecord, ...]:
    """The run's ``log_input`` datasets with their normalised contexts."""
    if run.inputs is None:
        return ()
    records = []
    for dataset_input in run.inputs.dataset_inputs:
        ds = dataset_input.dataset
        context = next((t.value for t in dataset_input.tags if t.key == DATASET_CONTEXT_TAG),
                       None)
        records.append(DatasetRecord(
            name=ds.name, digest=ds.digest, source_type=ds.source_type,
            source=_private_source(ds.source, pseudonymize), schema=ds.schema,
            profile=ds.profile,
            context=normalise_context(context)))
    return tuple(records)


def _private_source(source: str, pseudonymize: Pseudonymizer) -> str:
    """A dataset source with its ``mlflow.user`` pseudonymised when asked (code sources embed
    it); its credentials go with the run record's."""
    if not pseudonymize.enabled or "mlflow.user" not in source:
        return source
    try:
        parsed = json.loads(source)
        parsed["tags"]["mlflow.user"] = pseudonymize(parsed["tags"]["mlflow.user"])
    except (ValueError, KeyError, TypeError):
        return source
    return json.dumps(parsed)


def model_versions(client: MlflowClient, run_id: str) -> tuple[ModelVersionRecord, ...]:
    """Registry versions whose source is this run (registry unavailable -> none)."""
    try:
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except MlflowException:
        return ()  # some servers run without a registry: nothing registered to report
    return tuple(sorted((ModelVersionRecord(
        name=v.name, version=int(v.version), source=v.source, run_id=v.run_id,
        model_id=getattr(v, "model_id", None), status=str(v.status),
        creation_time=to_datetime(v.creation_timestamp),
        current_stage=v.current_stage, aliases=tuple(v.aliases or ())) for v in versions),
        key=lambda v: (v.name, v.version)))


def logged_model_record(client: MlflowClient, model: LoggedModel, step: int | None,
                        cache: ArtifactCache) -> LoggedModelRecord:
    """A LoggedModel with its params, tags, last metric values and hashed artifact files."""
    status = getattr(model.status, "value", None) or str(model.status)
    # MLflow links every metric logged while a model is active to it, system/ and carbon keys
    # of the background monitor too; those describe the machine, not the model, and would
    # count the run's energy once more per model: keep them on the run only.
    metrics = {m.key: _decode_value(m.value) for m in (model.metrics or [])
               if metric_source(m.key) == "user"}
    files = _walk(lambda path: client.list_logged_model_artifacts(model.model_id, path))
    artifacts = tuple(_hash_file(cache, model.artifact_location, f.path) for f in files)
    return LoggedModelRecord(
        model_id=model.model_id, name=model.name, experiment_id=model.experiment_id,
        source_run_id=model.source_run_id, status=status, model_type=model.model_type,
        artifact_location=model.artifact_location,
        creation_time=to_datetime(model.creation_timestamp),
        params=dict(model.params or {}), tags=dict(model.tags or {}), metrics=metrics,
        artifacts=artifacts, step=step)


def run_artifacts(client: MlflowClient, run_id: str, artifact_uri: str,
                  cache: ArtifactCache | None = None) -> tuple[ArtifactRecord, ...]:
    """Every artifact file of a run, sized and sha256-hashed (streamed), however big: a
    crate may reference a large file instead of copying it, but never without its hash.
    A folder that is a link, or that MLflow refuses to list, is recorded as skipped."""
    skipped: dict[str, str] = {}
    files = _walk(lambda path: _list_or_skip(client, run_id, artifact_uri, path, skipped))
    with _own_or(cache, client) as used:
        hashed = tuple(_hash_file(used, artifact_uri, f.path) for f in files)
    return hashed + tuple(ArtifactRecord(path=path, size=None, sha256=None, skipped=reason,
                                         uri=f"{artifact_uri.rstrip('/')}/{path}")
                          for path, reason in sorted(skipped.items()))


def _list_or_skip(client: MlflowClient, run_id: str, root_uri: str, folder: str | None,
                  skipped: dict[str, str]) -> list:
    """One folder's listing; empty, with the reason in ``skipped``, for a linked folder (not
    followed) or one MLflow refuses to list (a link resolving outside the artifact root)."""
    if folder is None:
        return client.list_artifacts(run_id, folder)
    root = local_path(root_uri)
    reason = skip_reason(root, root / folder) if root is not None else None
    if reason is None:
        try:
            return client.list_artifacts(run_id, folder)
        except MlflowException as exc:
            reason = f"unreadable folder: {exc.message}"
    skipped[folder] = reason
    return []


def _walk(list_dir: Callable[[str | None], list[FileInfo]]) -> list[FileInfo]:
    """All files below the root of an artifact listing function, depth first."""
    files: list[FileInfo] = []
    pending: list[str | None] = [None]
    while pending:
        for info in list_dir(pending.pop()):
            if info.is_dir:
                pending.append(info.path)
            else:
                files.append(info)
    return sorted(files, key=lambda f: f.path)


def _hash_file(cache: ArtifactCache, root_uri: str, path: str) -> ArtifactRecord:
    """Size and sha256 of one artifact, read through the export's cache (in place when
    local, downloaded once when remote); a read error names the artifact."""
    uri = artifact_uri(root_uri, path)
    local, root = local_path(uri), local_path(root_uri)
    skipped = skip_reason(root, local) if local is not None and root is not None else None
    if skipped:  # never follow a link out of the store (it could name any file)
        return ArtifactRecord(path=path, size=None, sha256=None, uri=uri, skipped=skipped)
    try:
        size, sha256 = cache.digest(root_uri, path)
        return ArtifactRecord(path=path, size=size, sha256=sha256, uri=uri)
    except MlflowException as exc:
        raise ReaderError(f"cannot download artifact {redact_text(uri)}: {exc.message}") from exc
    except OSError as exc:
        if local is not None:  # one unreadable local file is recorded; the rest exports
            return ArtifactRecord(path=path, size=None, sha256=None, uri=uri,
                                  skipped=f"unreadable: {exc.strerror or exc}")
        raise ReaderError(f"cannot read artifact {redact_text(uri)}: "  # e.g. full temp disk
                          f"{exc.strerror or exc}") from exc


def _decode_value(value: float) -> float:
    """Undo the SQL stores' inf -> DBL_MAX substitution."""
    if value == DBL_MAX:
        return math.inf
    if value == -DBL_MAX:
        return -math.inf
    return float(value)


def metric_series(client: MlflowClient, run: RunRecord, key: str,
                  prefixes: Mapping[str, str]) -> Iterator[MetricSeries]:
    """The full history of one key, split by context, in ``get_metric_history`` order."""
    prefixes = run_context_prefixes(prefixes, run.tags, run.datasets)
    try:
        history = client.get_metric_history(run.run_id, key)
    except MlflowException as exc:
        raise ReaderError(f"cannot read metric {key!r} of run {run.run_id}: "
                          f"{exc.message}") from exc
    groups: dict[tuple[str | None, str | None, str | None], list[Metric]] = defaultdict(list)
    for point in history:
        context = metric_context(key, point.dataset_digest, run.datasets, prefixes)
        groups[(context, point.dataset_digest, point.model_id)].append(point)
    for (context, digest, model_id), points in groups.items():
        yield MetricSeries(
            run_id=run.run_id, key=key, context=context, source=metric_source(key),
            steps=np.fromiter((p.step for p in points), dtype=np.int64, count=len(points)),
            timestamps_ms=np.fromiter((p.timestamp for p in points), dtype=np.int64,
                                      count=len(points)),
            values=np.fromiter((_decode_value(p.value) for p in points), dtype=np.float64,
                               count=len(points)),
            dataset_digest=digest, model_id=model_id)


def summarise(series: MetricSeries, location: MetricLocation | None) -> MetricSummary:
    """Count, step and time range, min/max (NaN-aware: NaN only if every value is NaN)."""
    values = series.values
    finite_or_inf = values[~np.isnan(values)]
    low = float(finite_or_inf.min()) if finite_or_inf.size else math.nan
    high = float(finite_or_inf.max()) if finite_or_inf.size else math.nan
    return MetricSummary(
        key=series.key, context=series.context, source=series.source, count=int(values.size),
        first_step=int(series.steps.min()), last_step=int(series.steps.max()),
        first_time=to_datetime(int(series.timestamps_ms.min())),
        last_time=to_datetime(int(series.timestamps_ms.max())),
        min=low, max=high, last=float(values[_latest_index(series)]), location=location,
        dataset_digest=series.dataset_digest, model_id=series.model_id)


def _latest_index(series: MetricSeries) -> int:
    """The point MLflow reports as the latest value: the largest (step, timestamp, value),
    NaN compared as 0 (how the SQL store saves it), the earlier in history on a tie
    (``SqlAlchemyStore._update_latest_metrics_if_necessary``), whatever the history order."""
    values = np.where(np.isnan(series.values), 0.0, series.values)
    first_logged = -np.arange(values.size)
    return int(np.lexsort((first_logged, values, series.timestamps_ms, series.steps))[-1])
