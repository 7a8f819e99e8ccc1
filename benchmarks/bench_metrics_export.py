"""Streaming metric export: time and peak memory of exporting >= 2 million points to NetCDF.

Claim under test: the export never holds more than one metric series at a time, so its peak
memory is bounded by the largest single series, not by the experiment. Two experiments in
one sqlite store, every series the same length P:

* ``one``:  1 run x 1 series (P points)
* ``many``: R runs x K series (R*K*P points, 2 million by default)

Each measurement runs in a fresh interpreter (imports and caches do not leak between them):
reading the largest series alone, exporting ``one``, exporting ``many``. Python heap peaks
come from tracemalloc (numpy and MLflow's objects report to it), process peaks from
``ru_maxrss`` above the interpreter's own baseline. Streaming holds when
``many`` - ``one`` < half the single-series peak; holding everything would cost about
(R*K - 1) times that peak. Metrics are logged with ``MlflowClient.log_batch`` in chunks of
1000, MLflow's batch limit.

    python benchmarks/bench_metrics_export.py [--runs 4] [--series 5] [--points 100000]
        [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BATCH = 1000
MB = 1 << 20


@dataclass(frozen=True)
class Measurement:
    """One child process's result."""

    seconds: float
    traced_peak_bytes: int
    rss_increase_bytes: int
    rss_peak_bytes: int


def log_experiment(uri: str, name: str, runs: int, series: int, points: int) -> float:
    """Create ``name`` with ``runs`` x ``series`` series of ``points`` each; returns seconds."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(name)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(runs):
        run_id = client.create_run(experiment_id).info.run_id
        for k in range(series):
            values = rng.standard_normal(points)
            values[::997] = np.nan
            metrics = [Metric(f"metric_{k}", float(v), 1_700_000_000_000 + i, i)
                       for i, v in enumerate(values)]
            for offset in range(0, points, BATCH):
                client.log_batch(run_id, metrics=metrics[offset:offset + BATCH])
        client.set_terminated(run_id)
    return time.perf_counter() - start


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measure(action) -> Measurement:
    """Run ``action`` twice: untraced for its time and process peak above the baseline, then
    under tracemalloc (which slows it about twofold) for its Python heap peak."""
    baseline = _rss_bytes()
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    rss_peak = _rss_bytes()
    tracemalloc.start()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Measurement(seconds, peak, max(0, rss_peak - baseline), rss_peak)


def child_export(uri: str, experiment: str, out: str) -> Measurement:
    """Export ``experiment`` to NetCDF only (no documents that scale with anything else)."""
    from exporters import ExportOptions, export

    warm = Path(out) / "warm-up"
    export("one", warm, tracking_uri=uri, options=ExportOptions(formats=("netcdf",)))
    return _measure(lambda: export(experiment, Path(out) / experiment, tracking_uri=uri,
                                   options=ExportOptions(formats=("netcdf",))))


def child_series(uri: str, experiment: str) -> Measurement:
    """Read one series the way the export does (collector -> MetricSeries), keep nothing."""
    from mlflow import MlflowClient

    from exporters import collect
    from exporters.options import DEFAULT_CONTEXT_PREFIXES
    from exporters.records import RunRecord

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    run = client.search_runs([found.experiment_id], max_results=1)[0]
    record = RunRecord(run_id=run.info.run_id, name="", experiment_id=found.experiment_id,
                       status="FINISHED", lifecycle_stage="active", start_time=None,
                       end_time=None, user=None, artifact_uri="")
    key = sorted(run.data.metrics)[0]

    def read() -> None:
        for series in collect.metric_series(client, record, key, DEFAULT_CONTEXT_PREFIXES):
            del series

    return _measure(read)


def _in_child(*args: str) -> Measurement:
    """Run one measurement in a fresh interpreter and parse its JSON line."""
    done = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                          capture_output=True, text=True)
    return Measurement(**json.loads(done.stdout.strip().splitlines()[-1]))


def run(workdir: Path, runs: int, series: int, points: int, reuse: bool = False) -> dict:
    """Log both experiments (unless ``reuse``: a store an earlier run left in ``workdir``),
    measure, and return every figure (bytes and seconds)."""
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    log_seconds = 0.0
    if not reuse:
        log_seconds = log_experiment(uri, "one", 1, 1, points)
        log_seconds += log_experiment(uri, "many", runs, series, points)
    single = _in_child("series", uri, "many")
    one = _in_child("export", uri, "one", str(workdir / "out"))
    many = _in_child("export", uri, "many", str(workdir / "out"))
    growth = many.traced_peak_bytes - one.traced_peak_bytes
    return {"points_exported": runs * series * points, "series": runs * series,
            "points_per_series": points, "log_seconds": log_seconds,
            "single_series": asdict(single), "export_one": asdict(one),
            "export_many": asdict(many), "traced_growth_bytes": growth,
            "bounded": growth < single.traced_peak_bytes / 2}


def _report(result: dict) -> str:
    many, single = result["export_many"], result["single_series"]
    all_at_once = result["series"] * single["traced_peak_bytes"] / MB
    return "\n".join([
        f"exported {result['points_exported']:,} points in {result['series']} series of "
        f"{result['points_per_series']:,} ("
        + (f"logging them took {result['log_seconds']:.0f} s)" if result["log_seconds"]
           else "store reused)"),
        f"export time            {many['seconds']:.1f} s "
        f"({many['seconds'] / result['points_exported'] * 1e6:.1f} us/point)",
        f"peak Python heap       {many['traced_peak_bytes'] / MB:.1f} MiB "
        f"(one series alone: {single['traced_peak_bytes'] / MB:.1f} MiB, "
        f"1x1 export: {result['export_one']['traced_peak_bytes'] / MB:.1f} MiB)",
        f"peak RSS               {many['rss_peak_bytes'] / MB:.0f} MiB, of which "
        f"{many['rss_increase_bytes'] / MB:.1f} MiB above the process after a 1x1 warm-up "
        f"(one series alone: {single['rss_peak_bytes'] / MB:.0f} MiB)",
        f"holding every series would need ~{all_at_once:.0f} MiB of heap; "
        f"streaming bound {'HOLDS' if result['bounded'] else 'VIOLATED'}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--series", type=int, default=5)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the store an earlier run left in --workdir")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        measured = child_export(*rest) if kind == "export" else child_series(*rest)
        print(json.dumps(asdict(measured)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as scratch:
        result = run(args.workdir or Path(scratch), args.runs, args.series, args.points,
                     args.reuse and args.workdir is not None)
    print(json.dumps(result, indent=2) if args.json else _report(result))
    return 0 if result["bounded"] else 1


if __name__ == "__main__":
    sys.exit(main())
