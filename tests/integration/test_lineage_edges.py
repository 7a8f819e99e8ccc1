"""Lineage kept at write time: the edges a prov store records with each journaled write (the
GenAI links among them, at two statements a trace), the same rows for a journal written
before the lineage tables existed (built on a writer's first open, computed on read before
that), and the resolver's shortened run ids."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput
from store_templates import prov_store

from exporters.lineage import LineageError
from exporters.lineage.resolve import resolve
from mlflow_prov.journal import dispose_engines
from mlflow_prov.lineage_edges import (
    EDGES_TABLE,
    NODES_TABLE,
    VERSION_TABLE,
    MemoryReader,
    Rows,
    open_lineage,
    rows_of,
)
from mlflow_prov.uri import parse_prov_uri
from mlflow_prov.vocabulary import (
    DATASET_CONTEXT_TAG,
    LINKED_PROMPTS_TAG,
    TRACE_MODEL_ID_KEY,
    TRACE_SOURCE_RUN_KEY,
    EventKind,
)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """producer -> (its artifact as a dataset) -> consumer -> model -> user; a child run."""
    folder = tmp_path_factory.mktemp("edges")
    uri = prov_store(folder / "store")
    client = MlflowClient(uri)
    experiment = client.create_experiment("edges")
    producer = client.create_run(experiment, run_name="producer").info.run_id
    consumer = client.create_run(experiment, run_name="consumer").info.run_id
    source = json.dumps({"uri": f"runs:/{producer}/data/x.csv"})
    client.log_inputs(consumer, datasets=[DatasetInput(
        Dataset("x.csv", "a" * 32, "mlflow_run_artifact", source),
        [InputTag(DATASET_CONTEXT_TAG, "training")])])
    model = client.create_logged_model(experiment, name="m", source_run_id=consumer).model_id
    user = client.create_run(experiment, run_name="user",
                             tags={"mlflow.parentRunId": consumer}).info.run_id
    client.log_inputs(user, models=[LoggedModelInput(model)])
    return uri, {"producer": producer, "consumer": consumer, "model": model, "user": user}


def _all_rows(uri: str, ids: dict[str, str]) -> set[tuple[str, str, str, str | None]]:
    reader = open_lineage(uri)
    starts = [f"run:{run}" for run in ("producer", "consumer", "user") for run in [ids[run]]]
    starts += [f"model:{ids['model']}", f"dataset:{'a' * 32}",
               f"artifact:{ids['producer']}/data/x.csv"]
    return {(e.source, e.relation, e.target, e.context)
            for direction in ("origins", "derived") for e in reader.edges(starts, direction)}


@pytest.mark.slow  # the module's store: a few seconds of MLflow writes
def test_each_write_records_its_links(written):
    uri, ids = written
    artifact = f"artifact:{ids['producer']}/data/x.csv"
    assert _all_rows(uri, ids) == {
        (f"run:{ids['consumer']}", "used", f"dataset:{'a' * 32}", "training"),
        (f"dataset:{'a' * 32}", "wasDerivedFrom", artifact, None),
        (artifact, "wasGeneratedBy", f"run:{ids['producer']}", None),
        (f"model:{ids['model']}", "wasGeneratedBy", f"run:{ids['consumer']}", None),
        (f"run:{ids['user']}", "wasInformedBy", f"run:{ids['consumer']}", None),
        (f"run:{ids['user']}", "used", f"model:{ids['model']}", None)}
    nodes = open_lineage(uri).nodes([artifact, f"run:{ids['user']}"])
    assert nodes[artifact].experiment_id == nodes[f"run:{ids['user']}"].experiment_id
    assert nodes[f"run:{ids['user']}"].label == "user"


@pytest.mark.slow
def test_a_journal_from_before_the_tables_gets_the_same_links(written, tmp_path):
    uri, ids = written
    expected = _all_rows(uri, ids)
    dispose_engines()
    old = tmp_path / "old"
    shutil.copytree(parse_prov_uri(uri).db_uri.removeprefix("sqlite:///").rsplit("/", 1)[0],
                    old)
    with sqlite3.connect(old / "mlflow.db") as database:
        for table in (EDGES_TABLE, NODES_TABLE, VERSION_TABLE):
            database.execute(f"DROP TABLE {table}")
    old_uri = f"prov://{old}"
    assert isinstance(open_lineage(old_uri), MemoryReader), "computed on read"
    assert _all_rows(old_uri, ids) == expected
    MlflowClient(old_uri).search_experiments()  # a writer's first open builds the tables
    assert not isinstance(open_lineage(old_uri), MemoryReader)
    assert _all_rows(old_uri, ids) == expected


@pytest.mark.slow
def test_tables_filled_by_older_rules_are_refilled_once_from_the_journal(tmp_path):
    """A store whose lineage an earlier mlflow-prov kept (no recorded artifacts then) shows
    the run's recorded files after the upgrade: computed on read until a writer opens the
    store, which refills the tables once."""
    uri = prov_store(tmp_path / "store")
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("upgraded")).info.run_id
    (tmp_path / "report.txt").write_text("accuracy 0.9\n")
    client.log_artifact(run_id, str(tmp_path / "report.txt"))
    client.set_terminated(run_id)
    artifact = f"artifact:{run_id}/report.txt"
    made_by = (artifact, "wasGeneratedBy", f"run:{run_id}")

    def generated() -> set[tuple[str, str, str]]:
        return {(e.source, e.relation, e.target)
                for e in open_lineage(uri).edges([artifact], "origins")}

    assert generated() == {made_by}
    dispose_engines()
    shutil.copytree(tmp_path / "store", tmp_path / "upgraded")  # a store no process has open
    uri = f"prov://{tmp_path / 'upgraded'}"
    with sqlite3.connect(parse_prov_uri(uri).db_uri.removeprefix("sqlite:///")) as database:
        database.execute(f"DELETE FROM {EDGES_TABLE} WHERE source LIKE 'artifact:%'")
        database.execute(f"DELETE FROM {NODES_TABLE} WHERE node LIKE 'artifact:%'")
        database.execute(f"DROP TABLE {VERSION_TABLE}")
    assert isinstance(open_lineage(uri), MemoryReader), "older rules: computed on read"
    assert generated() == {made_by}
    MlflowClient(uri).search_experiments()  # a writer's first open refills the tables
    assert not isinstance(open_lineage(uri), MemoryReader)
    assert generated() == {made_by}
    with sqlite3.connect(parse_prov_uri(uri).db_uri.removeprefix("sqlite:///")) as database:
        assert database.execute(f"SELECT count(*) FROM {EDGES_TABLE} WHERE source = ?",
                                (artifact,)).fetchone() == (1,), "refilled once, no twin"


def test_a_run_that_uses_its_own_artifact_links_no_run_to_itself():
    rows = rows_of(EventKind.RUN_INPUTS_LOGGED, "b" * 32, "1", {"datasets": [
        {"name": "own", "digest": "d", "source": f"runs:/{'b' * 32}/out.csv"}]}, lambda _: None)
    assert [(e.relation, e.target) for e in rows.edges] == [("used", "dataset:d")]


def _reader(*run_ids: str) -> MemoryReader:
    rows = Rows()
    for run_id in run_ids:
        rows.nodes += rows_of(EventKind.RUN_CREATED, run_id, "1", {"run_name": run_id[:4]},
                              lambda _: None).nodes
    return MemoryReader(rows)


def test_a_unique_prefix_names_a_run_and_an_ambiguous_one_says_so():
    reader = _reader("abc1" + "0" * 28, "abc2" + "0" * 28)
    assert resolve(reader, "abc1").ref == "abc1" + "0" * 28
    with pytest.raises(LineageError, match="'abc' matches more than one run or dataset"):
        resolve(reader, "abc")
    with pytest.raises(LineageError, match="'abd' is no run id, dataset digest or name"):
        resolve(reader, "abd")


def test_genai_writes_link_prompt_versions_traces_runs_and_models():
    run, model, trace = "c" * 32, "m-1", "tr-1"
    linked = json.dumps([{"name": "qa", "version": "2"}, {"name": "qa", "version": "1"}])

    def edges(kind: str, payload: dict, run_id: str | None = None) -> list[tuple]:
        rows = rows_of(kind, run_id, "1", payload, lambda _: None)
        return [(e.source, e.relation, e.target) for e in rows.edges]

    assert edges(EventKind.RUN_TAGS_SET, {"tags": {LINKED_PROMPTS_TAG: linked}}, run) == [
        (f"run:{run}", "used", "prompt:qa/1"), (f"run:{run}", "used", "prompt:qa/2")]
    assert edges(EventKind.LOGGED_MODEL_TAGS_SET,
                 {"model_id": model, "tags": {LINKED_PROMPTS_TAG: linked}})[0] == (
        f"model:{model}", "wasDerivedFrom", "prompt:qa/1")
    assert edges(EventKind.TRACE_STARTED, {"trace_id": trace, "metadata": {
        TRACE_SOURCE_RUN_KEY: run, TRACE_MODEL_ID_KEY: model}}) == [
        (f"trace:{trace}", "wasInformedBy", f"run:{run}"),
        (f"trace:{trace}", "used", f"model:{model}")]
    assert edges(EventKind.TRACE_PROMPTS_LINKED, {"trace_id": trace, "prompts": [
        {"name": "qa", "version": 2}]}) == [(f"trace:{trace}", "used", "prompt:qa/2")]
    assert edges(EventKind.PROMPT_VERSION_CREATED, {"name": "qa", "version": 2}) == [
        ("prompt:qa/2", "wasRevisionOf", "prompt:qa/1")]
    assert edges(EventKind.RUN_TAGS_SET, {"tags": {LINKED_PROMPTS_TAG: linked[:20]}}, run) == []


@pytest.mark.slow
def test_a_traced_request_costs_the_lineage_two_statements(tmp_path, monkeypatch):
    """One node and one edge (the run it was recorded in) per trace, never per span."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _get_store
    from statement_counter import count_statements

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.set_tracking_uri(prov_store(tmp_path / "runs"))
    try:
        mlflow.set_experiment("traced")

        @mlflow.trace
        def tool(step: int) -> int:
            return step

        @mlflow.trace
        def agent() -> None:
            for step in range(19):
                tool(step)

        with mlflow.start_run():
            agent()
            with count_statements(_get_store().engine) as statements:
                agent()
    finally:
        mlflow.set_tracking_uri(None)
    lineage = [s for s in statements if EDGES_TABLE in s or NODES_TABLE in s]
    assert len(lineage) == 2, lineage


def test_a_hostile_linked_prompts_tag_is_stored_as_plain_mlflow_stores_it(tmp_path):
    """The tag's value reaches the lineage in the write's transaction: a value that cannot
    name a prompt version still sets the tag, links nothing, and the store opens again."""
    uri = prov_store(tmp_path / "store")
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("odd-tags")).info.run_id
    odd = '[{"name": "qa", "version": 1e400}]'
    client.set_tag(run_id, LINKED_PROMPTS_TAG, odd)
    assert client.get_run(run_id).data.tags[LINKED_PROMPTS_TAG] == odd
    assert not [e for e in open_lineage(uri).edges([f"run:{run_id}"], "origins")
                if e.target.startswith("prompt:")]
    dispose_engines()
    shutil.copytree(tmp_path / "store", tmp_path / "reopened")
    with sqlite3.connect(tmp_path / "reopened" / "mlflow.db") as database:
        database.execute(f"DROP TABLE {VERSION_TABLE}")  # refilled from the journal on open
    MlflowClient(f"prov://{tmp_path / 'reopened'}").search_experiments()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_the_refill_on_a_server_database_restores_every_row_once(backend, request, tmp_path):
    """The refill on PostgreSQL (tables locked) and MySQL (read committed): rows an older
    mlflow-prov never made come back, each edge once, and a second refill has nothing to do."""
    import sqlalchemy as sa

    from mlflow_prov.journal import _engine_for
    from mlflow_prov.lineage_edges import LINEAGE_VERSION, ensure_tables

    uri = request.getfixturevalue(f"prov_{'postgres' if backend == 'postgresql' else backend}_uri")
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(f"refill-{backend}")).info.run_id
    (tmp_path / "report.txt").write_text("accuracy 0.9\n")
    client.log_artifact(run_id, str(tmp_path / "report.txt"))
    client.set_terminated(run_id)
    engine = _engine_for(uri)

    def rows() -> list[tuple[str, str, str]]:
        with engine.connect() as connection:
            return sorted(connection.execute(sa.text(
                f"SELECT source, relation, target FROM {EDGES_TABLE}")).tuples())

    before = rows()
    assert (f"artifact:{run_id}/report.txt", "wasGeneratedBy", f"run:{run_id}") in before
    with engine.begin() as connection:
        connection.execute(sa.text(f"DELETE FROM {EDGES_TABLE} WHERE source LIKE 'artifact:%'"))
        connection.execute(sa.text(f"DELETE FROM {NODES_TABLE} WHERE node LIKE 'artifact:%'"))
        connection.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
        connection.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version) VALUES (1)"))
    ensure_tables(engine)
    assert rows() == before
    with engine.begin() as connection:  # a newer mlflow-prov's rows are left as they are
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version = "
                                   f"{LINEAGE_VERSION + 1}"))
    ensure_tables(engine)
    assert rows() == before
