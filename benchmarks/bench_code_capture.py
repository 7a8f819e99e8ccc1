"""What recording the code and environment costs a ``create_run`` (mlflow_prov/code_capture.py).

Prints, for the process running this script (inside the mlflow-prov checkout, so git has a
real repository to read):

* the first ``capture_code`` of the process (git asked, distributions listed) and the later
  ones (both cached), median and range;
* ``create_run`` on plain MLflow ``sqlite:///``, on ``prov:///``, and on ``prov:///`` with
  the code section left out (``capture_code`` replaced by a stub), median and range per run.
  Rounds alternate between the three so drift in the machine's speed hits all alike.

    python benchmarks/bench_code_capture.py [--rounds 5] [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mlflow import MlflowClient

from mlflow_prov import code_capture, events


def _spread(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"median {statistics.median(ms):7.3f} ms  range {min(ms):.3f}-{max(ms):.3f} ms"


def time_capture(calls: int) -> tuple[float, list[float]]:
    """Seconds of the process's first ``capture_code``, then of ``calls`` later ones."""
    code_capture.git_state.cache_clear()
    code_capture.requirements.cache_clear()
    session = type("Session", (), {"info": {}})()
    start = time.perf_counter()
    code_capture.capture_code(session, None)
    first = time.perf_counter() - start
    later = []
    for _ in range(calls):
        start = time.perf_counter()
        code_capture.capture_code(session, None)
        later.append(time.perf_counter() - start)
    return first, later


def time_create_run(client: MlflowClient, experiment_id: str, runs: int) -> list[float]:
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        client.create_run(experiment_id)
        durations.append(time.perf_counter() - start)
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    first, later = time_capture(200)
    print(f"capture_code, first call of the process: {first * 1000:.1f} ms")
    print(f"capture_code, later calls (cached):      {_spread(later)}")

    root = Path(tempfile.mkdtemp(prefix="bench-code-"))
    real = events.capture_code
    stores: dict[str, tuple[MlflowClient, str, Callable[..., object]]] = {}
    for name, uri, capture in (("plain sqlite", f"sqlite:///{root / 'plain.db'}", real),
                               ("prov", f"prov://{root / 'prov'}", real),
                               ("prov, no code section", f"prov://{root / 'prov2'}",
                                lambda session, artifact_uri: None)):
        client = MlflowClient(uri)
        experiment_id = client.create_experiment(f"bench-{uuid.uuid4().hex}")
        client.create_run(experiment_id)  # warm: engine, caches, first capture
        stores[name] = client, experiment_id, capture
    samples: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(args.rounds):
        for name, (client, experiment_id, capture) in stores.items():
            events.capture_code = capture  # type: ignore[assignment]
            try:
                samples[name] += time_create_run(client, experiment_id, args.runs)
            finally:
                events.capture_code = real
    for name, durations in samples.items():
        print(f"create_run, {name:22s} {_spread(durations)}")


if __name__ == "__main__":
    main()
