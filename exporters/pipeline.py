"""The export loop: MLflow -> records -> metric files -> PROV documents -> files.

Streaming: a run's metric series are fetched one key at a time, summarised, handed to the
metric sinks and dropped, so peak memory is the largest single series, not the experiment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from exporters import collect, fast_metrics, git_history, guards, log_proofs
from exporters.artifacts import ArtifactCache
from exporters.crate_heads import with_journal_head
from exporters.errors import ExportError, ReaderError, WriterError
from exporters.layout import experiment_dir, run_dir
from exporters.lineage.prov import ExportLineage
from exporters.options import GRAPH_DETAILS, ExportOptions, WriterContext
from exporters.privacy import Pseudonymizer
from exporters.prov_code import pseudonymised_code, write_requirements
from exporters.prov_model import experiment_document, run_document
from exporters.records import ExperimentRecord, MetricSeries, MetricSummary, RunRecord
from exporters.verify_artifacts import with_artifacts_verified
from exporters.writers import METRIC_FORMATS, MetricSink, document_formats, get_writer


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and what it wrote."""

    experiment_dir: Path
    files: tuple[Path, ...]
    run_count: int


def export(experiment: str, out_dir: str | os.PathLike[str], *,
           tracking_uri: str | None = None, run_ids: Sequence[str] = (),
           filter_string: str | None = None,
           options: ExportOptions | None = None) -> ExportResult:
    """Export one experiment (all runs, the given ``run_ids``, or those matching the MLflow
    search ``filter_string``) to ``out_dir/<experiment>/``. Raises :class:`ExportError`.

    Atomic: written into a staging folder beside the target and renamed into place, so a
    failed or interrupted export (SIGTERM, SIGINT raise
    :class:`~exporters.errors.ExportInterrupted`) leaves nothing that looks complete.
    Without ``tracking_uri`` MLflow's default store is read only if it exists;
    ``options.timeout`` bounds waits on servers."""
    options = options or ExportOptions()
    validate_formats(options)
    uri, defaulted = guards.resolve_tracking_uri(tracking_uri)
    with guards.request_limits(uri, options.timeout):
        client = collect.open_client(uri)
        try:
            collect.find_experiment(client, experiment)
        except ReaderError as exc:
            raise guards.explain_missing_experiment(exc, client, uri, defaulted) from exc
        with guards.interruptible(), guards.StagedOutput(Path(out_dir)) as staging:
            try:
                result = _export(experiment, staging.root, tracking_uri=uri, run_ids=run_ids,
                                 filter_string=filter_string, options=options)
            except OSError as exc:  # disk full, permissions: one line, nothing published
                # netCDF4 reports a full disk met while creating its file as EACCES
                raise (guards.full_disk_error(staging.root, Path(out_dir))
                       or guards.as_export_error(exc, Path(out_dir))) from exc
            except RuntimeError as exc:  # netCDF4 reports a full disk as an "HDF error"
                full = guards.full_disk_error(staging.root, Path(out_dir))
                if full is None:
                    raise
                raise full from exc
            final, files = staging.publish(result.experiment_dir, result.files)
    return replace(result, experiment_dir=final, files=files)


def _export(experiment: str, out_dir: Path, *, tracking_uri: str, run_ids: Sequence[str],
            filter_string: str | None, options: ExportOptions) -> ExportResult:
    """:func:`export` into ``out_dir`` (the staging folder) from a resolved URI."""
    uri = tracking_uri
    client = collect.open_client(uri)
    fast_metrics.prepare(uri)
    found = collect.find_experiment(client, experiment)
    runs = collect.find_runs(client, found.experiment_id, tuple(run_ids), filter_string)
    pseudonymize = Pseudonymizer(options.pseudonymize)
    available, exp_events, run_events = collect.read_history(uri, found.experiment_id,
                                                             pseudonymize)
    exp_record = collect.experiment_record(found, uri, available, exp_events)
    redactions = guards.compile_redactions(options.redact)
    exp_record = guards.apply_user_privacy_experiment(exp_record, redactions, options.omit)
    models = collect.logged_models_by_run(client, found.experiment_id)
    exp_dir = experiment_dir(Path(out_dir), exp_record.name, found.experiment_id)
    records, written = [], {}
    git = git_history.open_reader(options.git_repo, options.git_depth, pseudonymize)
    with ArtifactCache(uri, keep=_packed_later(options)) as artifacts:
        for run in _progress(runs, options, "reading runs"):
            record = collect.run_record(
                client, run, options=options, pseudonymize=pseudonymize,
                models=models.get(run.info.run_id, []),
                history=run_events.get(run.info.run_id, []),
                journal_check=collect.journal_check(uri, run.info.run_id,
                                                    options.verify_metric_rows)
                if available else None, artifacts=artifacts)
            record = with_artifacts_verified(record, run_events.get(run.info.run_id, []),
                                             options)
            record = guards.apply_user_privacy(record, redactions, options.omit)
            record = git.attach(record) if git is not None else record
            record = pseudonymised_code(record, pseudonymize)
            record, files = (stream_metrics(client, record, run_dir(exp_dir, record.run_id),
                                            options)
                             if "metrics" not in options.omit else (record, []))
            records.append(with_journal_head(record, uri) if available else record)
            written[record.run_id] = [*files, *write_requirements(
                record, run_dir(exp_dir, record.run_id))]
        if options.checkpoint is not None:
            _write_log_proofs(uri, options.checkpoint, available, exp_dir, written)
        files = write_documents(exp_record, records, written, exp_dir, options, artifacts)
    return ExportResult(experiment_dir=exp_dir, files=tuple(files), run_count=len(records))


def _write_log_proofs(uri: str, checkpoint: Path, available: bool, exp_dir: Path,
                      written: dict[str, list[Path]]) -> None:
    """Each run's inclusion proofs against the checkpoint, beside its other files (so its
    crates pack them)."""
    if not available:
        raise ExportError(f"--checkpoint needs a store with a provenance journal; {uri} has "
                          "none")
    for run_id, document in log_proofs.run_proofs(uri, checkpoint, list(written)).items():
        written[run_id] = [*written[run_id],
                           log_proofs.write_run_proofs(run_dir(exp_dir, run_id), document)]


def _packed_later(options: ExportOptions) -> Callable[[int], bool]:
    """Whether a downloaded artifact of this size is kept after hashing: only when a crate
    will copy it (``rocrate`` asked for, and the file within ``--max-artifact-bytes``)."""
    limit = options.max_artifact_bytes
    crate = "rocrate" in options.formats
    return lambda size: crate and (limit is None or size <= limit)


def validate_formats(options: ExportOptions) -> None:
    """Fail before reading anything when a format is unknown, its library is missing or, for
    svg, Graphviz's ``dot`` is not installed: found after the runs were read, any of these
    would cost the whole read and leave a partial export behind."""
    if options.metrics_format and options.metrics_format not in METRIC_FORMATS:
        raise ExportError(f"--metrics-format must be one of {', '.join(METRIC_FORMATS)}, "
                          f"not {options.metrics_format!r}")
    if options.graph_detail not in GRAPH_DETAILS:
        raise ExportError(f"--graph-detail must be one of {', '.join(GRAPH_DETAILS)}, "
                          f"not {options.graph_detail!r}")
    for name in dict.fromkeys((*options.formats, *metric_sink_names(options))):
        get_writer(name).load()
    if "svg" in options.formats:
        from exporters.writers.svg import find_dot

        find_dot()


def metric_sink_names(options: ExportOptions) -> list[str]:
    """The metric formats to write: ``--metrics-format`` first, then those in ``--format``;
    netcdf when only a crate asks for metric files."""
    names = [options.metrics_format] if options.metrics_format else []
    names += [f for f in options.formats if f in METRIC_FORMATS and f not in names]
    if not names and "rocrate" in options.formats:
        names = ["netcdf"]
    return names


def stream_metrics(client, run: RunRecord, run_dir: Path,
                   options: ExportOptions) -> tuple[RunRecord, list[Path]]:
    """Fetch, summarise and sink each series of the run, one at a time."""
    sink_classes = [get_writer(name).load() for name in metric_sink_names(options)]
    if sink_classes:
        run_dir.mkdir(parents=True, exist_ok=True)
    sinks: list[MetricSink] = [cls(run, run_dir) for cls in sink_classes]
    summaries: list[MetricSummary] = []
    reader = fast_metrics.reader_for(client.tracking_uri)
    if reader is not None and not sinks:  # the documents need aggregates only
        return replace(run, metrics=tuple(fast_metrics.run_summaries(
            reader, run, options.context_prefixes))), []
    for series in _progress(_all_series(client, reader, run, options), options,
                            f"metrics of {run.name}", leave=False):
        locations = [sink.add(series) for sink in sinks]
        summaries.append(collect.summarise(series, locations[0] if locations else None))
    # closed only on success: a failed export's staging folder is removed whole, and closing
    # would first finish writing files nobody will read (NetCDF writes at close)
    files = [path for sink in sinks for path in sink.close()]
    return replace(run, metrics=tuple(fast_metrics.order_like_run(run, summaries))), files


def _all_series(client, reader, run: RunRecord, options: ExportOptions) -> Iterator[MetricSeries]:
    """The run's series one at a time: one SQL query per run where the store allows it, else
    ``get_metric_history`` per key."""
    if reader is not None:
        yield from fast_metrics.run_series(reader, run, options.context_prefixes)
        return
    for key in run.metric_keys:
        yield from collect.metric_series(client, run, key, options.context_prefixes)


def write_documents(experiment: ExperimentRecord, runs: list[RunRecord],
                    written: dict[str, list[Path]], exp_dir: Path, options: ExportOptions,
                    artifacts: ArtifactCache | None = None) -> list[Path]:
    """Build each run's document and the experiment's, and hand them to every writer."""
    writers = [(name, get_writer(name).load()()) for name in document_formats(options.formats)]
    index = ExportLineage.build(runs, experiment.tracking_uri)
    context = WriterContext(options=options, out_dir=exp_dir.parent,
                            tracking_uri=experiment.tracking_uri, artifacts=artifacts,
                            lineage=index)
    all_files: list[Path] = []
    for run in _progress(runs, options, "writing runs"):
        folder = run_dir(exp_dir, run.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        doc = run_document(run, experiment, index)
        files = list(written.get(run.run_id, []))
        for name, writer in writers:
            files += _guarded(name, writer.write_run, replace(context, written=tuple(files)),
                              run, doc, folder)
        all_files += files
    doc = experiment_document(experiment, runs, index)
    for name, writer in writers:
        all_files += _guarded(name, writer.write_experiment,
                              replace(context, written=tuple(all_files)), experiment, runs,
                              doc, exp_dir)
    return all_files


def _guarded(name: str, method, *args) -> list[Path]:
    """Run one writer; an OSError (disk full, permissions) becomes a WriterError naming it."""
    try:
        return list(method(*args))
    except OSError as exc:
        raise WriterError(f"{name} writer failed: {exc}") from exc


def _progress(items, options: ExportOptions, label: str, leave: bool = True):
    """A tqdm bar on a terminal (stderr), nothing when piped or when told to be quiet."""
    show = sys.stderr.isatty() if options.show_progress is None else options.show_progress
    return tqdm(items, desc=label, unit="run" if leave else "metric", disable=not show,
                leave=leave, file=sys.stderr)
