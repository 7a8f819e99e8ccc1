"""Capture overhead: plain MLflow ``sqlite:///`` against ``prov:///`` on the same workload.

Prints the median per-call ``log_metric`` time and the median per-metric ``log_batch(1000)``
time for both stores, and their ratios. A third store, plain ``sqlite:///`` switched to WAL
(the journal mode the prov store sets), isolates the cost of the journal itself from the
gain of WAL. Rounds alternate between the two stores so that
drift in the machine's speed (other load, thermal state, page cache) hits both equally.

    python benchmarks/bench_capture.py [--rounds 7] [--calls 200] [--batches 5]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric


def _client_and_run(uri: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(f"bench-{time.time_ns()}")
    return client, client.create_run(experiment_id).info.run_id


def time_log_metric(uri: str, calls: int) -> float:
    """Median seconds per ``log_metric`` call over ``calls`` calls."""
    client, run_id = _client_and_run(uri)
    durations = []
    for step in range(calls):
        start = time.perf_counter()
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def time_log_batch(uri: str, batches: int, size: int = 1000) -> float:
    """Median seconds per metric of ``log_batch`` with ``size`` metrics a batch."""
    client, run_id = _client_and_run(uri)
    durations = []
    for batch in range(batches):
        now = int(time.time() * 1000)
        metrics = [Metric(f"m{i % 20}", float(i), now, batch * size + i) for i in range(size)]
        start = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        durations.append((time.perf_counter() - start) / size)
    return statistics.median(durations)


def wal_database(path: Path) -> str:
    """A plain MLflow sqlite URI whose file is already in WAL mode (the mode persists)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return f"sqlite:///{path}"


def alternate(stores: dict[str, str], rounds: int, measure: Callable[[str], float]) -> dict:
    samples: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(rounds):
        for name, uri in stores.items():
            samples[name].append(measure(uri))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": f"sqlite:///{Path(tmp) / 'plain.db'}",
                  "sqlite-wal": wal_database(Path(tmp) / "wal.db"),
                  "prov": f"prov://{Path(tmp) / 'prov'}"}
        for uri in stores.values():
            _client_and_run(uri)
        single = alternate(stores, args.rounds, lambda uri: time_log_metric(uri, args.calls))
        batch = alternate(stores, args.rounds, lambda uri: time_log_batch(uri, args.batches))
    print(f"{'workload':<28}{'sqlite:///':>12}{'prov:///':>12}{'ratio':>8}"
          f"{'sqlite WAL':>12}{'journal cost':>14}")
    for label, scale, result in (("log_metric (ms/call)", 1e3, single),
                                 ("log_batch(1000) (us/metric)", 1e6, batch)):
        print(f"{label:<28}{result['sqlite'] * scale:>12.3f}{result['prov'] * scale:>12.3f}"
              f"{result['prov'] / result['sqlite']:>8.3f}{result['sqlite-wal'] * scale:>12.3f}"
              f"{result['prov'] / result['sqlite-wal']:>14.3f}")
    print(f"medians of {args.rounds} alternating rounds; target ratio <= 1.05 "
          "(journal cost = prov / sqlite WAL)")


if __name__ == "__main__":
    main()
