"""The single-call mix (``log_param`` + ``set_tag`` + ``log_metric``): plain MLflow against the
prov store on sqlite (WAL) and PostgreSQL, with the raw database's floor beside them.

Prints, per store, the median and range over alternating rounds of the time one mix takes
(each round the median of ``--calls`` mixes on a new run), the ratios prov / plain (targets:
<= 1.05 on sqlite in WAL mode, <= 1.10 on PostgreSQL) and the raw floor: the same three rows
inserted and committed through the driver alone, one transaction each, as MLflow commits each
call.

    python benchmarks/bench_single_writes.py [--rounds 7] [--calls 100] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from bench_batch import alternate, postgres_databases, wal_database
from mlflow import MlflowClient


def time_mix(uri: str, calls: int) -> float:
    """Median seconds of one ``log_param`` + ``set_tag`` + ``log_metric`` on a new run."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(f"bench-{uuid.uuid4().hex}")
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "stage", "warm")
    durations = []
    for call in range(calls):
        start = time.perf_counter()
        client.log_param(run_id, f"p{call}", str(call))
        client.set_tag(run_id, "stage", str(call))
        client.log_metric(run_id, "loss", 1.0 / (call + 1), step=call)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


_RAW_TABLES = ("CREATE TABLE IF NOT EXISTS raw_kv (run VARCHAR(32), key VARCHAR(250), "
               "value VARCHAR(8000), PRIMARY KEY (run, key))",
               "CREATE TABLE IF NOT EXISTS raw_metric (run VARCHAR(32), key VARCHAR(250), "
               "value FLOAT, step BIGINT, PRIMARY KEY (run, key, step))")


def _raw_mix(execute: Callable[[str, tuple], None], commit: Callable[[], None], run: str,
             call: int, mark: str) -> None:
    upsert = (f"INSERT INTO raw_kv VALUES ({mark}, {mark}, {mark}) ON CONFLICT (run, key) "
              "DO UPDATE SET value = excluded.value")
    execute(upsert, (run, f"p{call}", str(call)))
    commit()
    execute(upsert, (run, "stage", str(call)))
    commit()
    execute(f"INSERT INTO raw_metric VALUES ({mark}, {mark}, {mark}, {mark})",
            (run, "loss", 1.0 / (call + 1), call))
    commit()


def time_raw_sqlite(path: str, calls: int) -> float:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    for table in _RAW_TABLES:
        connection.execute(table)
    run, durations = uuid.uuid4().hex, []
    for call in range(calls):
        start = time.perf_counter()
        _raw_mix(connection.execute, connection.commit, run, call, "?")
        durations.append(time.perf_counter() - start)
    connection.close()
    return statistics.median(durations)


def time_raw_postgres(uri: str, calls: int) -> float:
    engine = sa.create_engine(uri)
    with engine.begin() as connection:
        for table in _RAW_TABLES:
            connection.exec_driver_sql(table)
    raw = engine.raw_connection()
    run, durations = uuid.uuid4().hex, []
    try:
        cursor = raw.cursor()
        for call in range(calls):
            start = time.perf_counter()
            _raw_mix(cursor.execute, raw.commit, run, call, "%s")
            durations.append(time.perf_counter() - start)
    finally:
        raw.close()
        engine.dispose()
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, postgres_databases(args.pg, 3) as databases:
        stores = {"plain sqlite (WAL)": wal_database(Path(tmp) / "plain.db"),
                  "prov sqlite": f"prov://{Path(tmp) / 'prov'}"}
        if databases:
            stores |= {"plain PostgreSQL": databases[0],
                       "prov PostgreSQL": "prov+" + databases[1]}
        for uri in stores.values():  # create and migrate each store before timing
            time_mix(uri, 2)
        measures: dict[str, Callable[[], float]] = {
            name: (lambda uri=uri: time_mix(uri, args.calls)) for name, uri in stores.items()}
        measures["raw sqlite (WAL)"] = lambda: time_raw_sqlite(str(Path(tmp) / "raw.db"),
                                                               args.calls)
        if databases:
            measures["raw PostgreSQL"] = lambda: time_raw_postgres(databases[2], args.calls)
        samples = alternate(measures, args.rounds)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"log_param + set_tag + log_metric, ms per mix: median (range) of {args.rounds} "
          f"alternating rounds, each the median of {args.calls} mixes")
    for name, values in samples.items():
        print(f"  {name:<22}{medians[name] * 1e3:>9.3f}  "
              f"({min(values) * 1e3:.3f}-{max(values) * 1e3:.3f})")
    for backend, target in (("sqlite", 1.05), ("PostgreSQL", 1.10)):
        plain = next((v for k, v in medians.items() if k.startswith(f"plain {backend}")), None)
        prov = medians.get(f"prov {backend}")
        if plain and prov:
            ratios = [p / q for p, q in zip(samples[f"prov {backend}"],
                                            next(v for k, v in samples.items()
                                                 if k.startswith(f"plain {backend}")),
                                            strict=True)]
            print(f"  prov / plain on {backend}: {prov / plain:.3f} (per-round "
                  f"{min(ratios):.3f}-{max(ratios):.3f}; target <= {target})")


if __name__ == "__main__":
    main()
