"""What recording a large artifact costs, against ``sha256sum`` on the same file.

The goal (issue 18): recording a 1 GB artifact takes at most 1.2x ``sha256sum``'s time,
i.e. one SHA-256 pass over the bytes plus a journal statement. Alternating rounds, each:

- ``sha256sum FILE`` (coreutils, a subprocess),
- the run's end on a prov store whose artifact folder holds FILE (``set_terminated``: MLflow's
  update, the manifest's one pass over the bytes, the journal events),
- an upload's hashing as the ``prov`` server app does it: the file read in MLflow's upload
  chunks through :class:`mlflow_prov.artifact_uploads.HashingStream`.

The file is made in a temporary folder and deleted at the end. Usage::

    PYTHONPATH=. python benchmarks/bench_artifact_hash.py [--size-mb 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20  # mlflow.store.artifact.artifact_repo.ARTIFACT_STREAM_CHUNK_SIZE


def _write(path: Path, size_mb: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as handle:
        for _ in range(size_mb):
            handle.write(block)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _stream(path: Path) -> None:
    from mlflow_prov.artifact_uploads import HashingStream

    with path.open("rb") as raw:
        stream = HashingStream(raw)
        while stream.read(CHUNK):
            pass
        stream.hexdigest()


def _require_recorded(uri: str, run_id: str, rounds: int) -> None:
    """Every timed run end journaled its manifest (else the numbers measure nothing)."""
    from mlflow_prov.journal import read_events

    manifests = [event for event in read_events(uri, run_id=run_id)
                 if event.kind == "run.artifacts_recorded"]
    if len(manifests) != rounds:
        raise SystemExit(f"expected {rounds} manifests, found {len(manifests)}: is this "
                         "checkout's mlflow_prov the one imported (PYTHONPATH=.)?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    from mlflow import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="bench-artifact-hash-"))
    try:
        client = MlflowClient(f"prov://{folder / 'store'}")
        run_id = client.create_run("0").info.run_id
        root = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
        root.mkdir(parents=True)
        artifact = root / "model.bin"
        _write(artifact, options.size_mb)
        subprocess.run(["sha256sum", str(artifact)], check=True, capture_output=True)  # warm
        times: dict[str, list[float]] = {"sha256sum": [], "run end (record)": [],
                                         "upload hashing": []}
        for _ in range(options.rounds):
            times["sha256sum"].append(_timed(lambda: subprocess.run(
                ["sha256sum", str(artifact)], check=True, capture_output=True)))
            times["run end (record)"].append(_timed(lambda: client.set_terminated(run_id)))
            times["upload hashing"].append(_timed(lambda: _stream(artifact)))
        _require_recorded(client.tracking_uri, run_id, options.rounds)
        baseline = statistics.median(times["sha256sum"])
        print(f"{options.size_mb} MiB file, {options.rounds} alternating rounds "
              f"(median, range in s; ratio of medians to sha256sum)")
        for name, found in times.items():
            median = statistics.median(found)
            print(f"  {name:<18} {median:7.3f}  [{min(found):.3f} .. {max(found):.3f}]  "
                  f"x{median / baseline:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
