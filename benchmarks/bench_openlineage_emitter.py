"""The live OpenLineage emitter against an unreachable endpoint: does it slow training writes?

Two prov stores in one process, one opened with ``MLFLOW_PROV_OPENLINEAGE_URL`` pointing at
a closed port on 127.0.0.1 (every event fails to connect, in the emitter's thread), one
without. Each round trains ``--runs`` runs in each store, alternating which store goes first,
so drift in the machine's speed hits both alike (keep rounds short and many on a busy
machine: one run per round by default); a run is what a training loop writes:
``create_run``, ``log_batch`` of params, ``--metrics`` ``log_metric`` calls, and
``set_terminated`` (so each run sends a START and a COMPLETE). Prints, per store, the
median and range over rounds of the wall-clock and the process CPU time per run, and the
ratios emitter / none (the claim: within 1.05).

    python benchmarks/bench_openlineage_emitter.py [--rounds 60] [--runs 1] [--metrics 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Param

from mlflow_prov.openlineage_emitter import URL_VARIABLE


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def open_store(folder: Path, url: str | None) -> tuple[MlflowClient, str]:
    """A client on a new prov store; the emitter is decided when the store is built."""
    if url:
        os.environ[URL_VARIABLE] = url
    try:
        client = MlflowClient(tracking_uri=f"prov:///{folder}")
        experiment_id = client.create_experiment("bench")
    finally:
        os.environ.pop(URL_VARIABLE, None)
    return client, experiment_id


def time_runs(client: MlflowClient, experiment_id: str, runs: int,
              metrics: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds per run of a small training loop's writes (the
    CPU time counts the emitter's thread too, and moves less with other load on the
    machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(runs):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, params=[Param(f"p{i}", str(i)) for i in range(5)])
        for step in range(metrics):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        client.set_terminated(run_id, "FINISHED")
    return (time.perf_counter() - wall) / runs, (time.process_time() - cpu) / runs


def report(label: str, times: dict[str, list[float]]) -> None:
    """Median and range per store, the ratio of medians and the per-round ratios."""
    for name, values in times.items():
        print(f"{label} {name:30s} median {statistics.median(values) * 1000:7.2f} ms/run  "
              f"range {min(values) * 1000:7.2f} - {max(values) * 1000:7.2f}")
    plain, emitting = (statistics.median(v) for v in times.values())
    ratios = [e / p for p, e in zip(*times.values(), strict=True)]
    print(f"{label} ratio emitter / none: {emitting / plain:.3f} (claim: <= 1.05); per round "
          f"median {statistics.median(ratios):.3f}, range {min(ratios):.3f} - "
          f"{max(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--metrics", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"no emitter": open_store(Path(tmp) / "plain", None),
                  "emitter, endpoint unreachable": open_store(
                      Path(tmp) / "emitting", f"http://127.0.0.1:{closed_port()}")}
        for client, experiment_id in stores.values():  # warm both (first-run set-up)
            time_runs(client, experiment_id, 2, args.metrics)
            emitter = client._tracking_client.store._openlineage
            if emitter is not None:  # the client's import and first refusal, before timing
                emitter.drain(30)
        walls: dict[str, list[float]] = {name: [] for name in stores}
        cpus: dict[str, list[float]] = {name: [] for name in stores}
        for round_number in range(args.rounds):
            order = list(stores) if round_number % 2 == 0 else list(reversed(stores))
            for name in order:
                wall, cpu = time_runs(*stores[name], args.runs, args.metrics)
                walls[name].append(wall)
                cpus[name].append(cpu)
    report("wall", walls)
    report("cpu ", cpus)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
