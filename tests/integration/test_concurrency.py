"""Several processes logging into one run at once: no point lost, no chain forked, no lock error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from machine import scaled_timeout
from mlflow import MlflowClient

from mlflow_prov.journal import read_events, verify_chain
from mlflow_prov.vocabulary import EventKind, run_chain

WRITER = Path(__file__).with_name("concurrent_writer.py")
PROCESSES = 4
POINTS = 2000


def _log_concurrently(tracking_uri: str) -> tuple[str, list[subprocess.CompletedProcess]]:
    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("concurrent")).info.run_id
    workers = [subprocess.Popen([sys.executable, str(WRITER), tracking_uri, run_id, f"w{i}",
                                 str(POINTS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for i in range(PROCESSES)]
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=scaled_timeout(300))
        results.append(subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr))
    return run_id, results


def _assert_complete_and_intact(tracking_uri: str, run_id: str, results) -> None:
    for result in results:
        assert "database is locked" not in result.stderr
        assert result.returncode == 0, result.stderr[-2000:]
    client = MlflowClient(tracking_uri)
    for i in range(PROCESSES):
        history = client.get_metric_history(run_id, f"w{i}")
        assert sorted(m.step for m in history) == list(range(POINTS)), f"w{i} lost points"
    events = [e for e in read_events(tracking_uri, run_id=run_id)
              if e.kind == EventKind.RUN_METRICS_LOGGED]
    assert sum(e.payload["count"] for e in events) == PROCESSES * POINTS
    writers = {e.writer["pid"] for e in events}
    assert len(writers) == PROCESSES
    report = verify_chain(tracking_uri, run_chain(run_id))
    assert report.intact, report.problems[:5]
    assert report.length == PROCESSES * POINTS + 1


@pytest.mark.slow
@pytest.mark.timeout(scaled_timeout(600))
def test_four_processes_into_one_sqlite_store(prov_uri):
    MlflowClient(prov_uri).search_experiments()
    run_id, results = _log_concurrently(prov_uri)
    _assert_complete_and_intact(prov_uri, run_id, results)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(scaled_timeout(600))
def test_four_processes_into_one_postgresql_store(prov_postgres_uri):
    run_id, results = _log_concurrently(prov_postgres_uri)
    _assert_complete_and_intact(prov_postgres_uri, run_id, results)


def test_log_inputs_survives_another_process_logging_the_same_dataset(prov_uri):
    """Deterministic version of the DDP race: between MLflow's look-up of existing datasets
    and its insert, another writer commits the same dataset. MLflow alone loses the whole
    ``log_inputs``; the prov store retries and links the run to the other writer's row."""
    import mlflow
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlDataset
    from sqlalchemy.orm import Session

    from mlflow_prov.uri import parse_prov_uri

    client = MlflowClient(prov_uri)
    experiment_id = client.create_experiment("race")
    run_id = client.create_run(experiment_id).info.run_id
    dataset = mlflow.entities.Dataset(name="shared", digest="d1g35t", source_type="local",
                                      source='{"uri": "/data/shared.csv"}')
    other_writer = sa.create_engine(parse_prov_uri(prov_uri).db_uri)
    raced = []

    def commit_the_same_dataset_first(session, flush_context, instances):
        pending = [o for o in session.new if isinstance(o, SqlDataset)]
        if pending and not raced:
            raced.append(pending[0].digest)
            row = {attr.columns[0].name: getattr(pending[0], attr.key)
                   for attr in sa.inspect(pending[0]).mapper.column_attrs}
            with other_writer.begin() as connection:
                connection.execute(SqlDataset.__table__.insert().values(
                    {**row, "dataset_uuid": "other-process"}))

    sa.event.listen(Session, "before_flush", commit_the_same_dataset_first)
    try:
        client.log_inputs(run_id, [mlflow.entities.DatasetInput(dataset)])
    finally:
        sa.event.remove(Session, "before_flush", commit_the_same_dataset_first)
        other_writer.dispose()

    assert raced, "the competing insert never happened: the test did not exercise the race"
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["shared"]
    logged = [e for e in read_events(prov_uri, run_id=run_id) if e.kind == "run.inputs_logged"]
    assert len(logged) == 1 and logged[0].payload["datasets"][0]["name"] == "shared"
