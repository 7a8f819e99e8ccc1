"""Lineage question times on stores of 2,000 runs with 30,000 and 300,000 journal events.

The stores come from ``benchmarks/lineage_store.py`` (built once and kept in ``--folder``;
run it first). For each store this prints, as medians and ranges over ``--rounds`` rounds:

* how long the first open by a writer took (it builds the lineage tables of a journal written
  before they existed, once);
* a question three hops deep in process: upstream of a run in the middle of the chain, depth 3
  (run -> dataset -> artifact -> producer run), on the journal's lineage tables;
* the same question as ``mlflow-prov lineage`` asks it: resolving a shortened run id, both
  directions, run details through MLflow's client;
* ``/prov/api/lineage?run_id=…`` on a real ``mlflow server --app-name prov``, and the same
  question as ``?q=<8-char prefix>&depth=3``;

and, per database, how much slower the 300,000-event store answered than the 30,000 one.
Both stores are served at once and each question's rounds alternate between them.

    python benchmarks/lineage_store.py sqlite /tmp/lineage-bench 30000 300000
    python benchmarks/bench_lineage.py --folder /tmp/lineage-bench [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from mlflow import MlflowClient

sys.path.insert(0, str(Path(__file__).parent))
from bench_pages import _free_port  # noqa: E402  (the benchmarks folder is no package)

from exporters.lineage import Walker, lineage_trees  # noqa: E402
from exporters.lineage.keys import run_key  # noqa: E402
from mlflow_prov.lineage_edges import open_lineage  # noqa: E402

SIZES = (30_000, 300_000)
CHECKOUT = Path(__file__).resolve().parents[1]  # the server runs this checkout's code
STARTUP_SECONDS = 600


def line(name: str, durations: list[float]) -> float:
    median = statistics.median(durations)
    print(f"  {name:74s} median {median:7.1f} ms  range {min(durations):7.1f}–"
          f"{max(durations):7.1f} ms", flush=True)
    return median


def serve(uri: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "prov",
         "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent,
        start_new_session=True, env={**os.environ, "PYTHONPATH": str(CHECKOUT)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health", timeout=2).ok:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit(f"server did not start; see {log_path}")


Question = tuple[str, Callable[[], object]]


def questions(uri: str, run_ids: list[str], base: str) -> dict[str, Question]:
    """What is timed on one store, by short name: (what it is, the call)."""
    middle = run_ids[len(run_ids) // 2]
    tree = Walker(open_lineage(uri)).tree(run_key(middle), "upstream", 3)
    reached = {t.node.id for t in tree.walk()}
    assert f"run:{run_ids[len(run_ids) // 2 - 1]}" in reached, reached
    url = f"{base}/prov/api/lineage?run_id={middle}"
    assert requests.get(url, timeout=60).json()["nodes"]
    asked = f"{base}/prov/api/lineage?q={middle[:8]}&depth=3"
    return {
        "walk": ("3 hops upstream of a run, in process",
                 lambda: Walker(open_lineage(uri)).tree(run_key(middle), "upstream", 3)),
        "cli": ("mlflow-prov lineage <8-char prefix> --depth 3 (both ways)",
                lambda: lineage_trees(uri, middle[:8], depth=3)),
        "api": ("/prov/api/lineage?run_id=… (real server)",
                lambda: requests.get(url, timeout=60).raise_for_status()),
        "api_q": ("/prov/api/lineage?q=<8-char prefix>&depth=3",
                  lambda: requests.get(asked, timeout=60).raise_for_status()),
    }


def first_open(uri: str, size: int) -> None:
    start = time.perf_counter()
    MlflowClient(uri).search_experiments(max_results=1)  # the first open by a writer
    print(f"  {f'{size:,} events: first open (lineage tables built from the journal)':74s} "
          f"{(time.perf_counter() - start) * 1000:7.0f} ms", flush=True)


def measure(uris: dict[int, str], run_ids: list[str], folder: Path,
            rounds: int) -> dict[int, dict[str, float]]:
    """Each question on every store, the stores' rounds alternating (so that a loaded
    machine slows them alike); the medians by store size and question."""
    for size, uri in uris.items():
        first_open(uri, size)
    servers = {size: serve(uri, folder / f"server-{size}.log") for size, uri in uris.items()}
    try:
        asked = {size: questions(uri, run_ids, servers[size][1]) for size, uri in uris.items()}
        medians: dict[int, dict[str, float]] = {size: {} for size in uris}
        for name in next(iter(asked.values())):
            durations: dict[int, list[float]] = {size: [] for size in uris}
            for size in uris:
                asked[size][name][1]()  # warm-up
            for _ in range(rounds):
                for size in uris:
                    begin = time.perf_counter()
                    asked[size][name][1]()
                    durations[size].append((time.perf_counter() - begin) * 1000)
            for size in uris:
                medians[size][name] = line(f"{size:,} events: {asked[size][name][0]}",
                                           durations[size])
        return medians
    finally:
        for process, _ in servers.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/lineage-bench"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kinds", default="sqlite,postgresql")
    args = parser.parse_args()
    for kind in args.kinds.split(","):
        ids = json.loads((args.folder / f"{kind}-ids.json").read_text())["runs"]
        uris = {}
        for size in SIZES:
            done = args.folder / f"{kind}-{size}.done"
            if done.exists():
                uris[size] = done.read_text().strip()
            else:
                print(f"{kind} {size}: not built (benchmarks/lineage_store.py)")
        print(f"{kind}, {len(ids)} runs:", flush=True)
        results = measure(uris, ids, args.folder, args.rounds)
        if len(results) == len(SIZES):
            small, big = (results[size] for size in SIZES)
            print(f"  {kind}: 300k / 30k = " + ", ".join(
                f"{name} {big[name] / small[name]:.2f}x" for name in small), flush=True)

if __name__ == "__main__":
    main()
