"""The PROV-O graph ``mlflow-prov query`` asks: built in memory from a tracking store, or
read from exported files.

From a store, the runs are read as an export reads them (:mod:`exporters.collect`: redacted,
artifacts hashed, the journal's history) and turned into the same PROV documents
(:func:`exporters.prov_model.experiment_document`) and the same Turtle
(:func:`exporters.writers.linked_data.serialize`) an export writes, so a question means the
same over a store and over its export. One lineage index covers every experiment read: a run
that used another experiment's artifact is then informed by the run that made it, which one
experiment's export alone cannot say.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Experiment, ViewType
from mlflow.exceptions import MlflowException
from pyoxigraph import RdfFormat, Store

from exporters import collect, fast_metrics, guards
from exporters.artifacts import ArtifactCache
from exporters.errors import ExportError, ReaderError
from exporters.layout import JSONLD, PROV_JSON, PROVN, PROVO_TURTLE
from exporters.lineage.prov import ExportLineage
from exporters.options import ExportOptions
from exporters.pipeline import stream_metrics
from exporters.privacy import Pseudonymizer
from exporters.prov_model import experiment_document
from exporters.records import ExperimentRecord, RunRecord
from exporters.writers.linked_data import serialize

# suffix -> how to read it; PROV-JSON goes through prov's reader and the Turtle writer
FILE_FORMATS: dict[str, RdfFormat | None] = {
    ".ttl": RdfFormat.TURTLE, ".jsonld": RdfFormat.JSON_LD, ".json": None}
# in an export folder, the experiment's file holds every run's statements: read it, in the
# first of these forms present, rather than each run's file again
PREFERRED = (PROVO_TURTLE, JSONLD, PROV_JSON)
PAGE_SIZE = 1000


class GraphError(ExportError):
    """A store or file cannot be read into the query's graph."""


# --- from a tracking store -------------------------------------------------------------------

def graph_of_store(tracking_uri: str | None, experiments: Sequence[str] = ()) -> Store:
    """The PROV-O of the named experiments (names or ids; none: every experiment, deleted
    ones too, as ``mlflow-prov lineage`` reads them) in one in-memory store."""
    uri, defaulted = guards.resolve_tracking_uri(tracking_uri)
    client = collect.open_client(uri)
    fast_metrics.prepare(uri)
    found = [_find(client, name, uri, defaulted) for name in experiments] \
        or _all_experiments(client)
    options = ExportOptions(formats=("provo-ttl",), show_progress=False)
    read = [(_read_experiment(client, uri, experiment, options)) for experiment in found]
    index = ExportLineage.build([run for _, runs in read for run in runs], uri)
    store = Store()
    for record, runs in read:
        text = serialize(experiment_document(record, runs, index), "provo-ttl")
        store.load(text, format=RdfFormat.TURTLE)
    return store


def _find(client: MlflowClient, name: str, uri: str, defaulted: bool) -> Experiment:
    try:
        return collect.find_experiment(client, name)
    except ReaderError as exc:
        raise guards.explain_missing_experiment(exc, client, uri, defaulted) from exc


def _all_experiments(client: MlflowClient) -> list[Experiment]:
    try:
        experiments: list[Experiment] = []
        token = None
        while True:
            page = client.search_experiments(view_type=ViewType.ALL, max_results=PAGE_SIZE,
                                             page_token=token)
            experiments.extend(page)
            token = page.token
            if not token:
                return experiments
    except MlflowException as exc:
        raise ReaderError(f"cannot list the store's experiments: {exc.message}") from exc


def _read_experiment(client: MlflowClient, uri: str, experiment: Experiment,
                     options: ExportOptions) -> tuple[ExperimentRecord, list[RunRecord]]:
    """The experiment's record and its runs' records with metric summaries, as
    :func:`exporters.pipeline.export` reads them (without the journal re-verification:
    ``mlflow-prov verify`` answers that question)."""
    experiment_id = experiment.experiment_id
    pseudonymize = Pseudonymizer(False)
    available, exp_events, run_events = collect.read_history(uri, experiment_id, pseudonymize)
    record = collect.experiment_record(experiment, uri, available, exp_events)
    models = collect.logged_models_by_run(client, experiment_id)
    runs = []
    with ArtifactCache(uri) as artifacts:
        for run in collect.find_runs(client, experiment_id):
            run_record = collect.run_record(
                client, run, options=options, pseudonymize=pseudonymize,
                models=models.get(run.info.run_id, []),
                history=run_events.get(run.info.run_id, []), artifacts=artifacts)
            # no metric sink is asked for: only summaries are computed, nothing is written
            runs.append(stream_metrics(client, run_record, Path("."), options)[0])
    return record, runs


# --- from exported files ---------------------------------------------------------------------

def graph_of_files(paths: Iterable[str | Path]) -> Store:
    """The PROV-O of exported files (``.ttl``, ``.jsonld``, PROV-JSON ``.json``) and of the
    export folders given (each experiment's file, or each run's where none is)."""
    store = Store()
    files = [file for path in paths for file in _files_under(Path(path))]
    if not files:
        raise GraphError("no PROV-O found; give .ttl, .jsonld or .prov.json files, or an "
                         "export folder holding them")
    for file in dict.fromkeys(files):
        _load(store, file)
    return store


def _files_under(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise GraphError(f"{path}: no such file or folder; check the path")
    for level in (1, 0):  # experiment files; else each run's
        found = list(_preferred(path, level))
        if found:
            yield from found
            return


def _preferred(folder: Path, level: int) -> Iterator[Path]:
    """Per folder under ``folder``, the first file present among :data:`PREFERRED`'s
    experiment (``level`` 1) or run (``level`` 0) names."""
    names = [pair[level] for pair in PREFERRED]
    seen: set[Path] = set()
    for candidate in sorted(p for name in names for p in folder.rglob(name)):
        if candidate.parent in seen:
            continue
        present = [candidate.parent / name for name in names
                   if (candidate.parent / name).is_file()]
        seen.add(candidate.parent)
        yield present[0]


def _load(store: Store, file: Path) -> None:
    suffix = file.suffix.lower()
    if suffix == Path(PROVN[0]).suffix:
        raise GraphError(f"{file}: PROV-N cannot be read back; give the .ttl, .jsonld or "
                         ".prov.json file exported beside it")
    if suffix not in FILE_FORMATS:
        raise GraphError(f"{file}: not a PROV-O file; give .ttl, .jsonld or .prov.json")
    rdf_format = FILE_FORMATS[suffix]
    try:
        if rdf_format is None:
            store.load(_prov_json_as_turtle(file), format=RdfFormat.TURTLE)
        else:
            store.load(path=str(file), format=rdf_format)
    except SyntaxError as exc:
        raise GraphError(f"{file}: not valid {suffix[1:]} ({_one_line(str(exc))}); give a "
                         "file mlflow-prov export wrote") from None
    except OSError as exc:
        raise GraphError(f"{file}: cannot read it ({exc})") from None


def _prov_json_as_turtle(file: Path) -> str:
    from exporters.convert import load_document

    return serialize(load_document(file)[0], "provo-ttl")


def _one_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else "unreadable"
