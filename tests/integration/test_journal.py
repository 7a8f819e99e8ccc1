"""The journal records what MLflow forgets, in the same transaction, and detects tampering."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from mlflow_prov.journal import JournalUnavailableError, read_events, verify_chain
from mlflow_prov.vocabulary import METRIC_DIGESTS_FIELD, STATE_FIELD


def _kinds(uri: str, **selection) -> list[str]:
    return [event.kind for event in read_events(uri, **selection)]


def _events(uri: str, kind: str, **selection):
    """Events of one kind, their payloads without the digests that prove MLflow's rows
    (tested in test_verify.py): these tests pin what the journal says happened."""
    return [replace(event, payload=_described(event.payload))
            for event in read_events(uri, **selection) if event.kind == kind]


def _described(payload: dict) -> dict:
    return {key: value for key, value in payload.items()
            if key not in (STATE_FIELD, METRIC_DIGESTS_FIELD)}


def test_a_training_run_is_journaled_in_write_order(prov_uri):
    mlflow.set_tracking_uri(prov_uri)
    mlflow.set_experiment("journal")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.set_tag("stage", "draft")
        mlflow.log_metric("loss", 0.5, step=0)
        mlflow.set_tag("stage", "final")
        mlflow.delete_tag("stage")
    run_id = run.info.run_id

    assert _kinds(prov_uri, run_id=run_id) == [
        "run.created", "run.params_logged", "run.tags_set", "run.metrics_logged", "run.tags_set",
        "run.tag_deleted", "run.artifacts_recorded", "run.updated"]
    overwrites = _events(prov_uri, "run.tags_set", run_id=run_id)
    assert overwrites[1].payload == {"tags": {"stage": "final"}, "old": {"stage": "draft"}}
    assert _events(prov_uri, "run.tag_deleted", run_id=run_id)[0].payload == {
        "key": "stage", "old_value": "final"}
    finished = _events(prov_uri, "run.updated", run_id=run_id)[0].payload
    assert (finished["old_status"], finished["new_status"]) == ("RUNNING", "FINISHED")
    assert verify_chain(prov_uri, f"run:{run_id}").intact


def test_run_creation_records_environment_and_writer(prov_uri, monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "api_token=abc123")
    client = MlflowClient(prov_uri)
    run = client.create_run(client.create_experiment("env"))
    created = _events(prov_uri, "run.created", run_id=run.info.run_id)[0]
    assert created.writer["rank"] == 2
    assert created.payload["environment"]["variables"]["SLURM_JOB_NAME"] == "[redacted]"
    assert created.payload["environment"]["packages"]["mlflow"] == mlflow.__version__


def test_status_transitions_deletion_and_restore(prov_uri):
    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("lifecycle")).info.run_id
    client.set_terminated(run_id, "FAILED")
    client.delete_run(run_id)
    client.restore_run(run_id)
    assert _kinds(prov_uri, run_id=run_id) == [
        "run.created", "run.artifacts_recorded", "run.updated", "run.deleted", "run.restored"]
    failed = _events(prov_uri, "run.updated", run_id=run_id)[0].payload
    assert (failed["old_status"], failed["new_status"]) == ("RUNNING", "FAILED")


def test_experiment_history_is_kept(prov_uri):
    client = MlflowClient(prov_uri)
    experiment_id = client.create_experiment("first-name", tags={"team": "a"})
    client.rename_experiment(experiment_id, "second-name")
    client.set_experiment_tag(experiment_id, "team", "b")
    client.delete_experiment(experiment_id)
    client.restore_experiment(experiment_id)
    events = list(read_events(prov_uri, experiment_id=experiment_id))
    assert [e.kind for e in events] == [
        "experiment.created", "experiment.renamed", "experiment.tag_set",
        "experiment.deleted", "experiment.restored"]
    assert events[0].payload["tags"] == {"team": "a"}
    assert _described(events[1].payload) == {"old_name": "first-name", "new_name": "second-name"}
    assert _described(events[2].payload) == {"key": "team", "value": "b", "old_value": "a"}


def test_log_batch_is_one_event_per_transaction(prov_uri):
    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("batch")).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("m", float(i), now + i, i) for i in range(250)],
                     params=[Param("a", "1"), Param("b", "2")], tags=[RunTag("t", "x")])
    by_kind = {e.kind: _described(e.payload) for e in read_events(prov_uri, run_id=run_id)}
    assert by_kind["run.params_logged"] == {"params": {"a": "1", "b": "2"}}
    assert by_kind["run.tags_set"] == {"tags": {"t": "x"}, "old": {"t": None}}
    metrics = by_kind["run.metrics_logged"]
    assert (metrics["keys"], metrics["count"]) == (["m"], 250)
    assert (metrics["step_min"], metrics["step_max"]) == (0, 249)
    assert (metrics["time_min"], metrics["time_max"]) == (now, now + 249)


def test_a_rejected_write_leaves_no_event(prov_uri):
    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("reject")).info.run_id
    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        client.log_param(run_id, "lr", "0.2")
    client.set_terminated(run_id)
    client.delete_run(run_id)
    with pytest.raises(MlflowException):
        client.log_metric(run_id, "late", 1.0)
    assert _events(prov_uri, "run.params_logged", run_id=run_id)[0].payload == {
        "params": {"lr": "0.1"}}
    assert _kinds(prov_uri, run_id=run_id).count("run.params_logged") == 1
    assert "run.metrics_logged" not in _kinds(prov_uri, run_id=run_id)


def test_mlflows_duplicate_metric_retry_journals_once(prov_uri):
    """MLflow commits, hits an IntegrityError, rolls back and retries: one event survives."""
    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("dup")).info.run_id
    metric = Metric("loss", 0.25, 1_700_000_000_000, 3)
    client.log_batch(run_id, metrics=[metric])
    client.log_batch(run_id, metrics=[metric, Metric("loss", 0.5, 1_700_000_000_001, 4)])
    assert len(client.get_metric_history(run_id, "loss")) == 2
    counts = [e.payload["count"] for e in _events(prov_uri, "run.metrics_logged", run_id=run_id)]
    assert counts == [1, 2]
    assert verify_chain(prov_uri, f"run:{run_id}").intact


@pytest.mark.slow  # MLflow's async queue polls each second: ending it waits up to 1 s
def test_async_logging_is_journaled(prov_uri):
    mlflow.set_tracking_uri(prov_uri)
    mlflow.config.enable_async_logging()
    try:
        with mlflow.start_run() as run:
            for step in range(40):
                mlflow.log_metric("async_loss", 1.0 / (step + 1), step=step)
            mlflow.log_param("mode", "async")
            mlflow.flush_async_logging()
    finally:
        mlflow.config.enable_async_logging(False)
    logged = _events(prov_uri, "run.metrics_logged", run_id=run.info.run_id)
    assert sum(e.payload["count"] for e in logged) == 40
    assert len(MlflowClient(prov_uri).get_metric_history(run.info.run_id, "async_loss")) == 40
    assert "run.params_logged" in _kinds(prov_uri, run_id=run.info.run_id)


def test_registry_writes_are_journaled(prov_uri):
    mlflow.set_tracking_uri(prov_uri)
    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("registry")).info.run_id
    client.create_registered_model("digits")
    version = client.create_model_version("digits", f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("digits", "champion", version.version)
    registry = [e for e in read_events(prov_uri) if e.chain == "model:digits"]
    assert [e.kind for e in registry] == [
        "registered_model.created", "model_version.created", "registered_model.alias_set"]
    assert registry[1].run_id == run_id and registry[1].payload["version"] == 1
    assert registry[2].payload == {"name": "digits", "alias": "champion", "version": 1}


def test_read_events_selects_by_experiment_and_run(prov_uri):
    client = MlflowClient(prov_uri)
    first, second = client.create_experiment("one"), client.create_experiment("two")
    run_a = client.create_run(first).info.run_id
    client.create_run(second)
    assert {e.experiment_id for e in read_events(prov_uri, experiment_id=first)} == {first}
    assert {e.run_id for e in read_events(prov_uri, run_id=run_a)} == {run_a}
    assert [e.seq for e in read_events(prov_uri)] == sorted(e.seq for e in read_events(prov_uri))


def test_plain_store_has_no_journal(sqlite_uri):
    with pytest.raises(JournalUnavailableError, match="not a prov store"):
        list(read_events(sqlite_uri))


def _database(prov_uri: str) -> str:
    return prov_uri.removeprefix("prov://") + "/mlflow.db"


def _run_with_three_events(prov_uri: str) -> str:
    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("tamper")).info.run_id
    client.log_param(run_id, "a", "1")
    client.log_param(run_id, "b", "2")
    return run_id


def test_an_edited_event_breaks_the_chain(prov_uri):
    run_id = _run_with_three_events(prov_uri)
    with sqlite3.connect(_database(prov_uri)) as connection:
        connection.execute("UPDATE prov_journal SET payload = '{\"params\":{\"a\":\"9\"}}' "
                           "WHERE run_id = ? AND kind = 'run.params_logged' "
                           "AND payload LIKE '%\"a\"%'",
                           (run_id,))
    report = verify_chain(prov_uri, f"run:{run_id}")
    assert not report.intact
    assert any("does not match its hash" in problem for problem in report.problems)


@pytest.mark.parametrize("which", ["MIN", "MAX"])
def test_a_removed_event_breaks_the_chain(prov_uri, which):
    run_id = _run_with_three_events(prov_uri)
    with sqlite3.connect(_database(prov_uri)) as connection:
        connection.execute(f"DELETE FROM prov_journal WHERE seq = (SELECT {which}(seq) FROM "
                           "prov_journal WHERE run_id = ? AND kind = 'run.params_logged')",
                           (run_id,))
    report = verify_chain(prov_uri, f"run:{run_id}")
    assert not report.intact and report.length == 2


def test_a_removed_last_event_and_its_head_row_break_the_chain(prov_uri):
    run_id = _run_with_three_events(prov_uri)
    chain = f"run:{run_id}"
    with sqlite3.connect(_database(prov_uri)) as connection:
        connection.execute("DELETE FROM prov_journal WHERE seq = "
                           "(SELECT MAX(seq) FROM prov_journal WHERE chain = ?)", (chain,))
        connection.execute("DELETE FROM prov_journal_heads WHERE chain = ?", (chain,))
    report = verify_chain(prov_uri, chain)
    assert not report.intact and report.length == 2
    assert any("head row missing" in problem for problem in report.problems)


def test_a_removed_chain_and_its_head_row_are_reported(prov_uri):
    run_id = _run_with_three_events(prov_uri)
    chain = f"run:{run_id}"
    with sqlite3.connect(_database(prov_uri)) as connection:
        connection.execute("DELETE FROM prov_journal WHERE chain = ?", (chain,))
        connection.execute("DELETE FROM prov_journal_heads WHERE chain = ?", (chain,))
    report = verify_chain(prov_uri, chain)
    assert not report.intact and report.length == 0
    assert any("chain missing" in problem for problem in report.problems)


@pytest.mark.slow  # a fresh database on each server
@pytest.mark.parametrize("server", ["prov_postgres_uri", "prov_mysql_uri"])
def test_journal_on_database_servers(server, request):
    uri = request.getfixturevalue(server)
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("server")).info.run_id
    client.set_tag(run_id, "k", "v1")
    client.set_tag(run_id, "k", "v2")
    client.log_metric(run_id, "m", float("nan"))
    client.set_terminated(run_id)
    assert _kinds(uri, run_id=run_id) == [
        "run.created", "run.tags_set", "run.tags_set", "run.metrics_logged",
        "run.artifacts_recorded", "run.updated"]
    assert _events(uri, "run.tags_set", run_id=run_id)[1].payload["old"] == {"k": "v1"}
    assert verify_chain(uri, f"run:{run_id}").intact


def test_workspace_aware_store_is_journaled_too(prov_uri, monkeypatch):
    from mlflow.store.tracking.sqlalchemy_workspace_store import WorkspaceAwareSqlAlchemyStore

    from mlflow_prov.builders import build_tracking_store

    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")
    store = build_tracking_store(prov_uri)
    assert isinstance(store, WorkspaceAwareSqlAlchemyStore)
    mlflow.set_workspace("default")
    try:
        run_id = store.create_run(store.create_experiment("ws"), "me", 0, [], "r").info.run_id
        store.log_param(run_id, Param("a", "1"))
    finally:
        mlflow.set_workspace(None)
    assert _kinds(prov_uri, run_id=run_id) == ["run.created", "run.params_logged"]


def test_numpy_numbers_are_journaled_wherever_mlflow_takes_them(prov_uri, sqlite_uri):
    """Training code hands MLflow numpy steps and values. Where plain MLflow stores them,
    the prov store must too, and journal them, instead of failing the write on JSON."""
    import numpy as np

    histories = {}
    for uri in (sqlite_uri, prov_uri):
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run() as run:
            mlflow.log_metric("loss", np.float32(0.25), step=np.int64(3))
            mlflow.log_metrics({"acc": np.float64(0.5), "bad": np.float32("nan")},
                               step=np.int32(7))
            mlflow.log_param("width", np.int64(64))
        client = MlflowClient(uri)
        histories[uri] = [(m.key, m.step, m.value if m.value == m.value else "nan")
                          for key in ("loss", "acc", "bad")
                          for m in client.get_metric_history(run.info.run_id, key)]
    assert histories[prov_uri] == histories[sqlite_uri]
    logged = _events(prov_uri, "run.metrics_logged", run_id=run.info.run_id)
    assert [(e.payload["step_min"], e.payload["count"]) for e in logged] == [(3, 1), (7, 2)]
    assert _events(prov_uri, "run.params_logged", run_id=run.info.run_id)[0].payload == {
        "params": {"width": "64"}}
    assert verify_chain(prov_uri, f"run:{run.info.run_id}").intact
