"""Metric-file exports grow linearly with the number of series in a run.

Claim under test: exporting a run with ten times as many metric series takes about ten times
as long (not a hundred) for each metric format (``netcdf``, ``zarr``, ``csv``) and for an
RO-Crate that packs the NetCDF file. Two runs in one ``prov:///`` store, every series
``--points`` long: ``small`` with ``--series`` series, ``large`` with ten times as many,
logged through ``MlflowClient.log_batch`` 1000 metrics a call (MLflow's batch limit).

Each round exports both runs in every format, the small and the large one in turn (the
large first in odd rounds) so machine drift hits both alike; the report gives each one's
median and range over the rounds and the ratio of the medians (10 = linear).

    python benchmarks/bench_series_export.py [--series 800] [--points 3] [--rounds 3]
        [--formats netcdf,zarr,csv,rocrate] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BATCH = 1000
FORMATS = ("netcdf", "zarr", "csv", "rocrate")


def log_run(uri: str, experiment: str, series: int, points: int) -> float:
    """Create ``experiment`` with one run of ``series`` series of ``points`` each; seconds."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment(experiment)).info.run_id
    metrics = [Metric(f"series_{k:05d}", float(k + i), 1_700_000_000_000 + i, i)
               for k in range(series) for i in range(points)]
    start = time.perf_counter()
    for offset in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[offset:offset + BATCH])
    client.set_terminated(run_id)
    return time.perf_counter() - start


def export_seconds(uri: str, experiment: str, fmt: str, out: Path) -> float:
    """Wall time of one export of ``experiment`` in ``fmt`` into a fresh folder."""
    from exporters import ExportOptions, export

    shutil.rmtree(out, ignore_errors=True)
    formats = ("rocrate",) if fmt == "rocrate" else (fmt,)
    start = time.perf_counter()
    export(experiment, out, tracking_uri=uri,
           options=ExportOptions(formats=formats, show_progress=False))
    return time.perf_counter() - start


def measure(uri: str, sizes: dict[str, int], formats: list[str], rounds: int,
            out: Path) -> dict[tuple[str, str], list[float]]:
    """Seconds per (format, experiment), the sizes alternating in order round by round."""
    found: dict[tuple[str, str], list[float]] = {}
    names = list(sizes)
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for fmt in formats:
            for name in order:
                seconds = export_seconds(uri, name, fmt, out / f"{fmt}-{name}")
                found.setdefault((fmt, name), []).append(seconds)
                print(f"  round {round_index + 1} {fmt:8} {sizes[name]:6} series "
                      f"{seconds:7.2f} s", file=sys.stderr, flush=True)
    return found


def report(found: dict[tuple[str, str], list[float]], sizes: dict[str, int],
           formats: list[str]) -> str:
    small, large = sizes
    lines = [f"{'format':8} {sizes[small]:>6} series (median, range)   "
             f"{sizes[large]:>6} series (median, range)   ratio"]
    for fmt in formats:
        a, b = found[(fmt, small)], found[(fmt, large)]
        ratio = statistics.median(b) / statistics.median(a)
        lines.append(f"{fmt:8} {statistics.median(a):7.2f} s ({min(a):.2f}-{max(a):.2f})      "
                     f"{statistics.median(b):8.2f} s ({min(b):.2f}-{max(b):.2f})     "
                     f"{ratio:5.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=800)
    parser.add_argument("--points", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    sizes = {"small": args.series, "large": 10 * args.series}
    with tempfile.TemporaryDirectory(prefix="bench-series-") as scratch:
        workdir = args.workdir or Path(scratch)
        uri = f"prov://{workdir / 'store'}"
        if not (workdir / "store").exists():
            for name, count in sizes.items():
                seconds = log_run(uri, name, count, args.points)
                print(f"logged {count} series x {args.points} points in {seconds:.1f} s",
                      file=sys.stderr)
        found = measure(uri, sizes, formats, args.rounds, workdir / "out")
    print(report(found, sizes, formats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
