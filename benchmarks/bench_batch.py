"""``log_batch`` of 1,000 metrics: plain MLflow against the prov store, sqlite and PostgreSQL.

Prints the median and range of the per-metric time of ``log_batch(1000 metrics)`` for

* plain MLflow ``sqlite:///`` on a WAL database (the journal mode the prov store sets),
* ``prov:///`` (the bulk path of ``mlflow_prov.bulk_metrics`` plus the journal),
* a raw ``executemany`` of the same 1,000 rows into a bare sqlite table (the floor),
* plain MLflow ``postgresql://`` and ``prov+postgresql://``, each in a fresh database
  (skipped when no server answers at ``--pg``), and a raw psycopg ``executemany``,

and the ratios plain / prov (the target is >= 2). Rounds alternate between the stores so that
drift in the machine's speed hits all of them alike; each round logs ``--batches`` batches of
1,000 metrics over 20 keys into a new run.

    python benchmarks/bench_batch.py [--rounds 7] [--batches 5] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from mlflow import MlflowClient
from mlflow.entities import Metric

SIZE = 1000
KEYS = 20


def _metrics(batch: int) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(f"m{i % KEYS}", float(i), now, batch * SIZE + i) for i in range(SIZE)]


def time_log_batch(uri: str, batches: int) -> float:
    """Median seconds per metric of ``log_batch`` over ``batches`` batches into a new run."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(f"bench-{uuid.uuid4().hex}")
    run_id = client.create_run(experiment_id).info.run_id
    durations = []
    for batch in range(batches):
        metrics = _metrics(batch)
        start = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        durations.append((time.perf_counter() - start) / SIZE)
    return statistics.median(durations)


_RAW_TABLE = ("CREATE TABLE IF NOT EXISTS raw_metrics (key VARCHAR(250), value FLOAT, "
              "timestamp BIGINT, step BIGINT, is_nan BOOLEAN, run_uuid VARCHAR(32), "
              "PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan))")


def _raw_rows(batch: int, run: str) -> list[tuple]:
    return [(m.key, m.value, m.timestamp, m.step, False, run) for m in _metrics(batch)]


def time_raw_sqlite(path: str, batches: int) -> float:
    """The same rows through the driver alone: one ``executemany`` and a commit per batch."""
    connection = sqlite3.connect(path)
    connection.execute(_RAW_TABLE)
    run, durations = uuid.uuid4().hex, []
    for batch in range(batches):
        rows = _raw_rows(batch, run)
        start = time.perf_counter()
        connection.executemany("INSERT INTO raw_metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
        connection.commit()
        durations.append((time.perf_counter() - start) / SIZE)
    connection.close()
    return statistics.median(durations)


def time_raw_postgres(uri: str, batches: int) -> float:
    engine = sa.create_engine(uri)
    with engine.begin() as connection:
        connection.exec_driver_sql(_RAW_TABLE)
    run, durations = uuid.uuid4().hex, []
    raw = engine.raw_connection()
    try:
        for batch in range(batches):
            rows = _raw_rows(batch, run)
            start = time.perf_counter()
            cursor = raw.cursor()
            cursor.executemany("INSERT INTO raw_metrics VALUES (%s, %s, %s, %s, %s, %s)", rows)
            raw.commit()
            durations.append((time.perf_counter() - start) / SIZE)
    finally:
        raw.close()
        engine.dispose()
    return statistics.median(durations)


def wal_database(path: Path) -> str:
    """A plain MLflow sqlite URI whose file is already in WAL mode (the mode persists)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return f"sqlite:///{path}"


@contextmanager
def postgres_databases(admin_uri: str, count: int) -> Iterator[list[str] | None]:
    """``count`` fresh databases on the server (dropped afterwards), or None without one."""
    admin = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    names = [f"bench_batch_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    try:
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError:
        print(f"no PostgreSQL at {admin_uri}: its rows are skipped")
        yield None
        return
    base = sa.engine.make_url(admin_uri)
    try:
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        sa.orm.close_all_sessions()
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def alternate(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            samples[name].append(measure())
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, postgres_databases(args.pg, 3) as databases:
        stores = {"plain sqlite (WAL)": wal_database(Path(tmp) / "plain.db"),
                  "prov sqlite": f"prov://{Path(tmp) / 'prov'}"}
        if databases:
            stores |= {"plain PostgreSQL": databases[0],
                       "prov PostgreSQL": "prov+" + databases[1]}
        for uri in stores.values():  # create and migrate each store before timing
            time_log_batch(uri, 1)
        measures: dict[str, Callable[[], float]] = {
            name: (lambda uri=uri: time_log_batch(uri, args.batches))
            for name, uri in stores.items()}
        measures["raw executemany sqlite"] = lambda: time_raw_sqlite(
            str(Path(tmp) / "raw.db"), args.batches)
        if databases:
            measures["raw executemany PostgreSQL"] = lambda: time_raw_postgres(
                databases[2], args.batches)
        samples = alternate(measures, args.rounds)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"log_batch({SIZE} metrics, {KEYS} keys), us per metric: median (range) of "
          f"{args.rounds} alternating rounds, each the median of {args.batches} batches")
    for name, values in samples.items():
        print(f"  {name:<28}{medians[name] * 1e6:>9.2f}  "
              f"({min(values) * 1e6:.2f}-{max(values) * 1e6:.2f})")
    for backend in ("sqlite", "PostgreSQL"):
        plain = next((v for k, v in medians.items() if k.startswith(f"plain {backend}")), None)
        prov = medians.get(f"prov {backend}")
        if plain and prov:
            print(f"  plain / prov on {backend}: {plain / prov:.2f}x (target >= 2)")


if __name__ == "__main__":
    main()
