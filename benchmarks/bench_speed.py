"""Export and capture speed against their limits, in one run with alternating rounds.

Export (sqlite, prov store of R runs x K metrics x S steps, 1 M points by default):

* ``raw SQL``: stdlib sqlite3 reads every metric row, one indexed query per run (the limit);
* ``fast read``: :mod:`mlflow_prov.fast_read` into numpy arrays, one query per run;
* ``get_metric_history``: MLflow's client API on one run (all of it would take minutes);
* ``export netcdf``: the whole experiment exported to NetCDF (store start-up included);
* ``export prov-json`` at 1x, 10x and 100x the points (S/100, S/10, S steps; same series):
  documents take their metric summaries from stored summaries, so the time should stay flat.

Both exports run twice: on the ``prov:`` URI, as users run them (the export then also checks
each run against its journal: chains, run rows, tags, params, and the metric series whose
stored count or change mark disagrees with it), and on the same database as a plain
``sqlite:`` URI, which skips those checks and shows what reading and writing alone cost. One
more PROV-JSON export of the 1 M points runs with ``--verify-metrics`` (every metric row
rehashed, as ``mlflow-prov verify`` does).

Capture (per single call; sqlite and, where a server answers, PostgreSQL): ``log_metric``,
``log_param`` and ``set_tag`` on plain MLflow (sqlite in its default journal mode and in
WAL), on the prov store, and a raw single-row insert with commit (WAL, sqlite3/psycopg2).

Every measurement is taken once per round, rounds alternate between the contenders (capture
contenders also take turns every ten calls within a round), and the report gives the median
and the range (min-max) over rounds: the machine may be shared.
The 1 M-point stores are built once through MLflow's ``log_batch`` (so every point has its
journal event, as in real use: the export's ``journalIntact`` check passes) and reused from
``--workdir``.

    python benchmarks/bench_speed.py [--workdir DIR] [--rounds 3] [--runs 10] [--metrics 20]
        [--steps 5000] [--calls 100] [--pg postgresql://postgres@127.0.0.1:5432/test]
        [--skip-export] [--skip-capture] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

T0 = 1_700_000_000_000
BATCH = 1000  # MLflow's most metrics per log_batch
BLOCK = 10  # capture contenders take turns every BLOCK calls, so load drift hits all alike


# --- stores ----------------------------------------------------------------------------------

def build_store(directory: Path, runs: int, metrics: int, steps: int) -> tuple[str, list[str]]:
    """A prov store with ``runs`` x ``metrics`` x ``steps`` points; reused when present."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uri = f"prov://{directory}"
    marker = directory / "run_ids.json"
    if marker.is_file():
        return uri, json.loads(marker.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("speed")
    run_ids = []
    for _ in range(runs):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_param(run_id, "lr", "0.01")
        client.set_terminated(run_id)
        run_ids.append(run_id)
    for run_id in run_ids:
        points = [Metric(f"metric_{k}", math.sin(i / 50) + k, T0 + i * 10, i)
                  for k in range(metrics) for i in range(steps)]
        for start in range(0, len(points), BATCH):  # through MLflow: the journal is real
            client.log_batch(run_id, metrics=points[start:start + BATCH])
    connection = sqlite3.connect(directory / "mlflow.db")
    connection.execute("ANALYZE")
    connection.close()
    marker.write_text(json.dumps(run_ids))
    return uri, run_ids


# --- export measurements ---------------------------------------------------------------------

def raw_read(uri: str, run_ids: list[str]) -> int:
    """Every metric row with stdlib sqlite3, one indexed query per run; returns rows read."""
    from mlflow_prov.uri import parse_prov_uri

    path = parse_prov_uri(uri).db_uri.removeprefix("sqlite:///")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    count = 0
    for run_id in run_ids:
        count += len(connection.execute(
            "SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? "
            "ORDER BY key, timestamp, step, value", (run_id,)).fetchall())
    connection.close()
    return count


def fast_read(uri: str, run_ids: list[str]) -> int:
    from mlflow_prov.fast_read import open_reader

    reader = open_reader(uri)
    return sum(series.values.size for run_id in run_ids for series in reader.run_series(run_id))


def metric_history(uri: str, run_ids: list[str]) -> int:
    """``get_metric_history`` for every key of the first run only."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    keys = client.get_run(run_ids[0]).data.metrics
    return sum(len(client.get_metric_history(run_ids[0], key)) for key in keys)


def export(uri: str, out: Path, formats: tuple[str, ...], every_row: bool = False) -> None:
    from exporters import ExportOptions, export

    shutil.rmtree(out, ignore_errors=True)
    export("speed", out, tracking_uri=uri,
           options=ExportOptions(formats=formats, show_progress=False,
                                 verify_metric_rows=every_row))


def _plain_uri(prov_uri: str) -> str:
    """The same database as a plain MLflow ``sqlite:`` URI: no journal, so the export skips
    the journal's checks (``verify`` reconciles every metric row of a run) and shows the cost
    of reading and writing alone."""
    from mlflow_prov.uri import parse_prov_uri

    return parse_prov_uri(prov_uri).db_uri


def timed(action: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def export_rounds(workdir: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per measurement per round; points in the ``points:`` entries."""
    sizes = {"1x": max(1, args.steps // 100), "10x": max(1, args.steps // 10),
             "100x": args.steps}
    stores = {label: build_store(workdir / f"store-{steps}", args.runs, args.metrics, steps)
              for label, steps in sizes.items()}
    uri, run_ids = stores["100x"]
    out = workdir / "out"
    results: dict[str, list[float]] = defaultdict(list)
    export(stores["1x"][0], out, ("prov-json",))  # warm imports and caches once
    for _ in range(args.rounds):
        seconds, rows = timed(lambda: raw_read(uri, run_ids))
        results["raw SQL read"].append(seconds)
        results["points: raw SQL read"] = [rows]
        seconds, rows = timed(lambda: fast_read(uri, run_ids))
        results["fast read (numpy)"].append(seconds)
        results["points: fast read (numpy)"] = [rows]
        seconds, rows = timed(lambda: metric_history(uri, run_ids))
        results["get_metric_history (1 run)"].append(seconds)
        results["points: get_metric_history (1 run)"] = [rows]
        points = len(run_ids) * args.metrics * args.steps
        for name, target in (("", uri), (" (sqlite: URI)", _plain_uri(uri))):
            seconds, _ = timed(lambda t=target: export(t, out, ("netcdf",)))
            results[f"export netcdf{name}"].append(seconds)
            results[f"points: export netcdf{name}"] = [points]
        seconds, _ = timed(lambda: export(uri, out, ("prov-json",), every_row=True))
        results["export prov-json 100x points (--verify-metrics)"].append(seconds)
        for label, (store_uri, _ids) in stores.items():
            for name, target in (("", store_uri), (" (sqlite: URI)", _plain_uri(store_uri))):
                seconds, _ = timed(lambda t=target: export(t, out, ("prov-json",)))
                results[f"export prov-json {label} points{name}"].append(seconds)
    return results


# --- capture measurements --------------------------------------------------------------------

def _plain_wal(uri: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments()  # creates the tables
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


class _Writer:
    """One contender's client and run; :meth:`block` times a few calls of each kind."""

    def __init__(self, uri: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        experiment_id = self.client.create_experiment(f"capture-{uuid.uuid4().hex[:8]}")
        self.run_id = self.client.create_run(experiment_id).info.run_id
        self.done = 0

    def block(self, calls: int) -> dict[str, float]:
        """Total seconds of ``calls`` log_metric, log_param and set_tag calls each."""
        client, run_id, first = self.client, self.run_id, self.done
        self.done += calls
        seconds = {}
        start = time.perf_counter()
        for i in range(first, first + calls):
            client.log_metric(run_id, "loss", 1.0 / (i + 1), T0 + i, i)
        seconds["log_metric"] = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(first, first + calls):
            client.log_param(run_id, f"p{i}", str(i))  # a param is set once: new key each
        seconds["log_param"] = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(first, first + calls):
            client.set_tag(run_id, "phase", f"v{i}")
        seconds["set_tag"] = time.perf_counter() - start
        return seconds


def _raw_sqlite_inserts(path: Path, calls: int) -> float:
    """One durable single-row insert per call: WAL, synchronous=FULL, commit each."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE IF NOT EXISTS m (key TEXT, value REAL, ts INTEGER, "
                       "step INTEGER, run TEXT)")
    start = time.perf_counter()
    for i in range(calls):
        connection.execute("INSERT INTO m VALUES (?, ?, ?, ?, ?)", ("loss", 0.5, i, i, "r"))
        connection.commit()
    seconds = (time.perf_counter() - start) / calls
    connection.close()
    return seconds


def _raw_pg_inserts(uri: str, calls: int) -> float:
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    connection = engine.raw_connection()
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS bench_raw (key TEXT, value DOUBLE PRECISION, "
                   "ts BIGINT, step BIGINT, run TEXT)")
    connection.commit()
    start = time.perf_counter()
    for i in range(calls):
        cursor.execute("INSERT INTO bench_raw VALUES (%s, %s, %s, %s, %s)",
                       ("loss", 0.5, i, i, "r"))
        connection.commit()
    seconds = (time.perf_counter() - start) / calls
    connection.close()
    engine.dispose()
    return seconds


def _pg_databases(admin_uri: str) -> tuple[list[str], Callable[[], None]]:
    """Two fresh databases (plain, prov) and a function that drops them."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    names = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_uri)
    uris = [url.set(database=name).render_as_string(hide_password=False) for name in names]

    def drop() -> None:
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return uris, drop


def capture_rounds(workdir: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    directory = Path(tempfile.mkdtemp(prefix="capture-", dir=workdir))
    contenders: dict[str, str] = {
        "sqlite plain (default)": f"sqlite:///{directory / 'plain.db'}",
        "sqlite plain (WAL)": f"sqlite:///{directory / 'wal.db'}",
        "sqlite prov": f"prov://{directory / 'prov'}",
    }
    _plain_wal(contenders["sqlite plain (WAL)"])
    drop = None
    if args.pg:
        try:
            (plain, prov), drop = _pg_databases(args.pg)
            contenders["postgresql plain"] = plain
            contenders["postgresql prov"] = f"prov+{prov}"
        except Exception as error:  # no server: report sqlite only, and say so
            print(f"PostgreSQL skipped: {error}", file=sys.stderr)
    results: dict[str, list[float]] = defaultdict(list)
    try:
        writers = {name: _Writer(uri) for name, uri in contenders.items()}
        for writer in writers.values():
            writer.block(5)  # warm caches and the statement cache
        for _ in range(args.rounds):
            totals: dict[str, float] = defaultdict(float)
            for _block in range(max(1, args.calls // BLOCK)):  # contenders take turns
                for name, writer in writers.items():
                    for call, seconds in writer.block(BLOCK).items():
                        totals[f"{call}: {name}"] += seconds
            for name, total in totals.items():
                results[name].append(total / (max(1, args.calls // BLOCK) * BLOCK))
            results["raw insert: sqlite (WAL, FULL)"].append(
                _raw_sqlite_inserts(directory / "raw.db", args.calls))
            if "postgresql plain" in contenders:
                results["raw insert: postgresql"].append(
                    _raw_pg_inserts(contenders["postgresql plain"], args.calls))
    finally:
        if drop is not None:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            for engine in SqlAlchemyStore._engine_map.values():
                engine.dispose()
            drop()
        shutil.rmtree(directory, ignore_errors=True)
    return results


# --- report ----------------------------------------------------------------------------------

def summarise(results: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {"median": statistics.median(values), "min": min(values),
                   "max": max(values), "rounds": len(values)}
            for name, values in results.items()}


def print_export(summary: dict[str, dict[str, float]]) -> None:
    print("\nexport (seconds; points/s from median and range)")
    for name, stats in summary.items():
        if name.startswith("points: "):
            continue
        points = summary.get(f"points: {name}", {}).get("median")
        line = (f"  {name:34s} {stats['median']:8.3f} s  "
                f"[{stats['min']:.3f}-{stats['max']:.3f}]")
        if points:
            line += (f"  {points / stats['median'] / 1000:8.1f} k points/s "
                     f"[{points / stats['max'] / 1000:.1f}-{points / stats['min'] / 1000:.1f}]")
        print(line)


def print_capture(summary: dict[str, dict[str, float]]) -> None:
    print("\ncapture (per call, ms; ratio to plain MLflow of the same backend)")
    for name, stats in summary.items():
        call, _, store = name.partition(": ")
        base = None
        if store.endswith("prov"):
            backend = store.split()[0]
            plain = "sqlite plain (WAL)" if backend == "sqlite" else "postgresql plain"
            base = summary.get(f"{call}: {plain}")
        line = (f"  {name:40s} {stats['median'] * 1000:7.3f} ms "
                f"[{stats['min'] * 1000:.3f}-{stats['max'] * 1000:.3f}]")
        if base:
            line += f"  x{stats['median'] / base['median']:.2f} vs {plain}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--pg", default=None, help="admin URI of a PostgreSQL server")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-capture", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-speed-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = {}
    if not args.skip_export:
        report["export"] = summarise(export_rounds(workdir, args))
        print_export(report["export"])
    if not args.skip_capture:
        report["capture"] = summarise(capture_rounds(workdir, args))
        print_capture(report["capture"])
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
