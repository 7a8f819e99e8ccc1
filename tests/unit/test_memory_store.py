"""``prov+sqlite:///:memory:`` is a working prov store held in this process's memory: writes
from several threads land in one database with their journal, a second client (and the
registry, and the exporters' verify) sees them, and no file named ``:memory:`` appears, at
``/`` or in the working folder. (A server, another process, is refused it in one line:
``tests/cli/test_ui_command.py``.)

The in-memory database lives as long as the pytest process: the test names its experiment
and model uniquely instead of expecting an empty store.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from exporters.verify import verify_store
from mlflow_prov.journal import read_events, verify_chain
from mlflow_prov.memory_store import MEMORY_URI
from mlflow_prov.vocabulary import EventKind, run_chain

THREADS = 3
STEPS = 20


def _log_from_threads(client: MlflowClient, run_ids: list[str]) -> None:
    def log(run_id: str) -> None:
        for step in range(STEPS):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)

    threads = [threading.Thread(target=log, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# slow: builds MLflow's tables (all its migrations) in memory and logs from three threads
@pytest.mark.slow
def test_a_memory_store_journals_writes_from_threads_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = f"in-memory-{uuid.uuid4().hex}"
    client = MlflowClient(MEMORY_URI)
    experiment_id = client.create_experiment(name)
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(THREADS)]
    _log_from_threads(client, run_ids)

    reopened = MlflowClient(MEMORY_URI)
    assert reopened.get_experiment(experiment_id).name == name
    assert [len(reopened.get_metric_history(run_id, "loss")) for run_id in run_ids] == \
        [STEPS] * THREADS
    for run_id in run_ids:
        kinds = Counter(event.kind for event in read_events(MEMORY_URI, run_id=run_id))
        assert kinds[EventKind.RUN_METRICS_LOGGED] == STEPS
        assert verify_chain(MEMORY_URI, run_chain(run_id)).intact
    report = verify_store(MEMORY_URI, experiment_id=experiment_id)
    assert report.problems == [] and report.metric_rows == STEPS * THREADS
    reopened.create_registered_model(name)
    assert reopened.get_registered_model(name).name == name

    assert not Path("/:memory:").exists()
    assert list(tmp_path.iterdir()) == []
