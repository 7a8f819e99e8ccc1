"""The store ``bench_lineage.py`` asks its questions of, built through MLflow's client API.

2,000 runs in 20 experiments, chained by lineage across experiments: run ``i`` uses, as a
dataset, the artifact ``data/out.csv`` of run ``i - 1`` (``log_inputs`` with a ``runs:/``
source); every fifth run logs a LoggedModel that the next run uses; every tenth run is a
child of the run before it. Then metric events (``log_batch``, one journal event a call)
round-robin over the runs until the journal holds the wanted number of events (see
:func:`add_metric_events`). Each size is built once and kept: a sqlite store as a folder,
a PostgreSQL store as a database (the smaller size is copied as the larger one's start).

    python benchmarks/lineage_store.py sqlite /tmp/lineage-bench 30000 300000
    python benchmarks/lineage_store.py postgresql /tmp/lineage-bench 30000 300000
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, Metric
from sqlalchemy.orm import Session

from mlflow_prov.journal import append_event, now_us
from mlflow_prov.uri import parse_prov_uri
from mlflow_prov.vocabulary import DATASET_CONTEXT_TAG, EventKind, run_chain

RUNS = int(os.environ.get("LINEAGE_BENCH_RUNS", "2000"))
EXPERIMENTS = 20
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
PARENT_TAG = "mlflow.parentRunId"
API_EVENTS = 5_000  # events written through log_batch; the rest by append_event
APPEND_BATCH = 5000


def sqlite_uri(folder: Path, size: int) -> str:
    return f"prov://{folder / f'sqlite-{size}'}"


def postgres_uri(size: int) -> str:
    return f"prov+{POSTGRES}/lineage_bench_{size}"


def event_count(uri: str) -> int:
    engine = sa.create_engine(parse_prov_uri(uri).db_uri)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM prov_journal")).scalar()
    finally:
        engine.dispose()


def build_runs(uri: str) -> dict[str, list[str]]:
    """The runs and their lineage; returns the run ids in chain order."""
    client = MlflowClient(uri)
    experiments = [client.create_experiment(f"bench-lineage-{n:02d}") for n in range(EXPERIMENTS)]
    run_ids: list[str] = []
    model_id = None
    for index in range(RUNS):
        tags = {PARENT_TAG: run_ids[-1]} if index % 10 == 9 else {}
        run = client.create_run(experiments[index % EXPERIMENTS], run_name=f"step-{index:04d}",
                                tags=tags)
        run_id = run.info.run_id
        inputs = []
        if run_ids:
            source = json.dumps({"uri": f"runs:/{run_ids[-1]}/data/out.csv"})
            dataset = Dataset("out.csv", f"{index:032x}", "mlflow_run_artifact", source)
            inputs.append(DatasetInput(dataset, [InputTag(DATASET_CONTEXT_TAG, "training")]))
        models = [LoggedModelInput(model_id)] if model_id else []
        client.log_inputs(run_id, datasets=inputs or None, models=models or None)
        model_id = None
        if index % 5 == 4:
            model_id = client.create_logged_model(run.info.experiment_id, name=f"model-{index}",
                                                  source_run_id=run_id).model_id
        run_ids.append(run_id)
    return {"runs": run_ids}


def add_metric_events(uri: str, run_ids: list[str], until: int) -> None:
    """Metric events round-robin over the runs until the journal holds ``until`` events.

    The first :data:`API_EVENTS` of them through ``log_batch`` (one metric a call, one event
    a call); the rest appended by the journal's own write path (``append_event``), 5,000 to a
    transaction, as ``bench_pages.py`` does: on a loaded two-core machine ``log_batch``
    managed 40 events/s, and 300,000 would take two hours. Lineage questions never read
    these events, which only make the journal big."""
    client = MlflowClient(uri)
    present = event_count(uri)
    through_api = min(until, API_EVENTS)
    for number in range(present, through_api):  # numbered on: a repeated row is no event
        run_id = run_ids[number % len(run_ids)]
        client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (number + 1), 1_700_000_000_000
                                                 + number, number)])
    _append_metric_events(uri, run_ids, max(present, through_api), until)


def _append_metric_events(uri: str, run_ids: list[str], start: int, until: int) -> None:
    engine = sa.create_engine(parse_prov_uri(uri).db_uri)
    try:
        with engine.connect() as connection:
            experiments = dict(connection.execute(sa.text(
                "SELECT run_uuid, experiment_id FROM runs")).all())
        writer = {"user": "bench", "host": "bench-host", "pid": os.getpid()}
        for first in range(start, until, APPEND_BATCH):
            with Session(engine) as session, session.begin():
                for number in range(first, min(first + APPEND_BATCH, until)):
                    run_id = run_ids[number % len(run_ids)]
                    append_event(session, chain=run_chain(run_id),
                                 kind=EventKind.RUN_METRICS_LOGGED,
                                 experiment_id=str(experiments[run_id]), run_id=run_id,
                                 payload={"keys": ["loss"], "count": 1,
                                          "steps": [number, number]},
                                 writer=writer, time_us=now_us())
    finally:
        engine.dispose()


def copy_store(kind: str, folder: Path, source: int, target: int) -> str:
    if kind == "sqlite":
        (folder / f"sqlite-{target}").mkdir()
        # sqlite's backup API: a copy of the file alone could miss what the WAL holds
        with sqlite3.connect(folder / f"sqlite-{source}" / "mlflow.db") as old, \
                sqlite3.connect(folder / f"sqlite-{target}" / "mlflow.db") as new:
            old.backup(new)
        return sqlite_uri(folder, target)
    # a template must have no other session: the builder's own pool still holds some
    _psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          f"WHERE datname = 'lineage_bench_{source}' AND pid <> pg_backend_pid()")
    _psql(f"CREATE DATABASE lineage_bench_{target} TEMPLATE lineage_bench_{source}")
    return postgres_uri(target)


def _psql(statement: str) -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c",
                    statement], check=True, stdout=subprocess.DEVNULL)


def new_store(kind: str, folder: Path, size: int) -> str:
    if kind == "sqlite":
        return sqlite_uri(folder, size)
    _psql(f"CREATE DATABASE lineage_bench_{size}")
    return postgres_uri(size)


def build(kind: str, folder: Path, sizes: list[int]) -> None:
    """Each size's store, smallest first, each started from a copy of the one before."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = None
    for size in sorted(sizes):
        done = folder / f"{kind}-{size}.done"
        if done.exists():
            previous = size
            continue
        started = time.perf_counter()
        ids_path = folder / f"{kind}-ids.json"
        if previous is not None:
            uri = copy_store(kind, folder, previous, size)
        elif ids_path.exists():  # an interrupted build: its runs are there
            uri = sqlite_uri(folder, size) if kind == "sqlite" else postgres_uri(size)
        else:
            uri = new_store(kind, folder, size)
            ids_path.write_text(json.dumps(build_runs(uri)))
        ids = json.loads(ids_path.read_text())
        add_metric_events(uri, ids["runs"], size)
        done.write_text(uri)
        print(f"{kind}: {event_count(uri)} events in {time.perf_counter() - started:.0f} s",
              flush=True)
        previous = size


if __name__ == "__main__":
    build(sys.argv[1], Path(sys.argv[2]), [int(size) for size in sys.argv[3:]])
