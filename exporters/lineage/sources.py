"""Where a lineage comes from: the journal's lineage tables (a prov store, and the ``prov``
server app reading its own store), MLflow's client API (any other tracking URI), or the
records of an export. Every source turns what it reads into the rows capture writes, through
capture's own rules (:func:`mlflow_prov.lineage_edges.rows_of`), so a link is found the same
way whichever source answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from exporters.errors import ReaderError
from mlflow_prov.journal import JournalUnavailableError, require_existing_store
from mlflow_prov.lineage_edges import (
    PARENT_RUN_TAG,
    LineageReader,
    MemoryReader,
    backfill_rows,
    open_lineage,
)
from mlflow_prov.vocabulary import DATASET_CONTEXT_TAG, EventKind

PAGE_SIZE = 1000
# what a source yields: journal-like events (kind, run id, experiment id, payload)
Event = tuple[str, str | None, str | None, dict[str, Any]]


class LineageError(ReaderError):
    """A node the user named is not in the store, or the store cannot be read."""


def open_source(tracking_uri: str, client: MlflowClient | None = None) -> LineageReader:
    """The journal's lineage for a prov store; the client API's for any other URI."""
    try:
        require_existing_store(tracking_uri)
    except JournalUnavailableError as exc:
        raise LineageError(str(exc)) from exc
    try:
        return open_lineage(tracking_uri)
    except JournalUnavailableError:  # not a prov store: MLflow's API answers
        return client_source(client or MlflowClient(tracking_uri))


def client_source(client: MlflowClient) -> LineageReader:
    """The lineage of every experiment's runs, logged models and registry versions, read
    through MLflow's public API (one page request per 1,000 objects, and one ``get_run`` per
    run for its model inputs, which ``search_runs`` leaves out)."""
    try:
        return MemoryReader(backfill_rows(_client_events(client)))
    except MlflowException as exc:
        raise LineageError(f"cannot read lineage from the store: {exc.message}") from exc


def _client_events(client: MlflowClient) -> Iterator[Event]:
    experiments = [e.experiment_id for e in _pages(lambda token: client.search_experiments(
        view_type=ViewType.ALL, max_results=PAGE_SIZE, page_token=token))]
    runs = list(_pages(lambda token: client.search_runs(
        experiments, "", run_view_type=ViewType.ALL, max_results=PAGE_SIZE,
        page_token=token))) if experiments else []
    for run in runs:
        yield (EventKind.RUN_CREATED, run.info.run_id, run.info.experiment_id,
               {"run_name": run.info.run_name,
                "tags": {k: v for k, v in run.data.tags.items() if k == PARENT_RUN_TAG}})
    models = _pages(lambda token: client.search_logged_models(
        experiment_ids=experiments, max_results=PAGE_SIZE, page_token=token)) \
        if experiments else iter(())
    for model in models:
        yield (EventKind.LOGGED_MODEL_CREATED, model.source_run_id, model.experiment_id,
               {"model_id": model.model_id, "name": model.name,
                "source_run_id": model.source_run_id})
    for run in runs:
        yield _inputs_event(run, client.get_run(run.info.run_id).inputs)
    experiment_of = {run.info.run_id: run.info.experiment_id for run in runs}
    for version in _model_versions(client):
        yield (EventKind.MODEL_VERSION_CREATED, version.run_id,
               experiment_of.get(version.run_id or ""),
               {"name": version.name, "version": int(version.version),
                "source": version.source, "run_id": version.run_id,
                "model_id": getattr(version, "model_id", None)})


def _inputs_event(run: Any, inputs: Any) -> Event:
    datasets = [{"name": d.dataset.name, "digest": d.dataset.digest,
                 "source_type": d.dataset.source_type, "source": d.dataset.source,
                 "context": next((t.value for t in d.tags or () if t.key == DATASET_CONTEXT_TAG),
                                 None)}
                for d in (inputs.dataset_inputs if inputs else ()) or ()]
    models = [m.model_id for m in (inputs.model_inputs if inputs else ()) or ()]
    return (EventKind.RUN_INPUTS_LOGGED, run.info.run_id, run.info.experiment_id,
            {"datasets": datasets, "models": models})


def _model_versions(client: MlflowClient) -> list[Any]:
    """All registry versions; a store without a registry has none."""
    try:
        return list(_pages(lambda token: client.search_model_versions(
            max_results=PAGE_SIZE, page_token=token)))
    except MlflowException as exc:
        if exc.error_code in ("FEATURE_DISABLED", "ENDPOINT_NOT_FOUND"):
            return []
        raise


def _pages(fetch: Any) -> Iterator[Any]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def records_events(runs: Iterable[Any]) -> Iterator[Event]:
    """The events an export's run records stand for (``RunRecord``s, read through the
    client API or the journal), in the order capture would have written them."""
    runs = list(runs)
    for run in runs:
        tags = {PARENT_RUN_TAG: run.parent_run_id} if run.parent_run_id else {}
        yield (EventKind.RUN_CREATED, run.run_id, run.experiment_id,
               {"run_name": run.name, "tags": tags})
        for model in run.logged_models:
            yield (EventKind.LOGGED_MODEL_CREATED, run.run_id, model.experiment_id,
                   {"model_id": model.model_id, "name": model.name,
                    "source_run_id": model.source_run_id or run.run_id})
    for run in runs:
        yield (EventKind.RUN_INPUTS_LOGGED, run.run_id, run.experiment_id, {
            "datasets": [{"name": d.name, "digest": d.digest, "source_type": d.source_type,
                          "source": d.source, "context": d.context} for d in run.datasets],
            "models": list(run.input_model_ids)})
        for version in run.model_versions:
            yield (EventKind.MODEL_VERSION_CREATED, version.run_id, run.experiment_id, {
                "name": version.name, "version": version.version, "source": version.source,
                "run_id": version.run_id, "model_id": version.model_id})
