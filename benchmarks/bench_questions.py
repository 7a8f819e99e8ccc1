"""Time the question commands (log, lineage, plot, convert, collect) on a store with 100 runs
and 100,000 journal events, as a user runs them: each command in a fresh process, so the
figures include Python's and MLflow's start-up.

The store: 100 real runs in one experiment, chained by lineage (run i logs ``data.csv`` and
reads run i-1's ``data.csv`` through ``mlflow_prov.log_run_artifact_as_dataset``), each with
3 metrics x 30 steps, params and tags, written through MLflow. MLflow's own writes make only
a few thousand events; to reach 100,000 without a 10-minute logging loop the journal is then
padded with hash-chained ``run.tags_set`` (1 in 20) and ``run.metrics_logged`` events,
appended with the journal's own ``append_event`` (the events ``mlflow.set_tag`` /
``log_metric`` write, minus the MLflow rows), spread over the 100 runs. Reading costs the
same per event either way.

    python benchmarks/bench_questions.py [--events 100000] [--runs 100] [--repeat 3]
        [--keep DIR] [--only NAME-PART]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag

CLI = [str(Path(sys.executable).with_name("mlflow-prov"))]


def build_store(workdir: Path, runs: int, events: int) -> tuple[str, list[str]]:
    """The store described above; returns its URI and the run ids, oldest first."""
    import mlflow_prov

    uri = f"prov://{workdir / 'store'}"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("questions")
    now = int(time.time() * 1000)
    ids: list[str] = []
    for index in range(runs):
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"step-{index:03d}") as run:
            if ids:
                mlflow_prov.log_run_artifact_as_dataset(f"runs:/{ids[-1]}/data.csv")
            data = workdir / "data.csv"
            data.write_text(f"x,y\n{index},{index * 2}\n")
            mlflow.log_artifact(str(data))
            metrics = [Metric(key, 1.0 / (step + 1 + index), now + step * 1000, step)
                       for step in range(30) for key in ("train/loss", "val/loss", "accuracy")]
            client.log_batch(run.info.run_id, metrics=metrics,
                             params=[Param("lr", str(0.1 / (index + 1)))],
                             tags=[RunTag("stage", "dev")])
        ids.append(run.info.run_id)
    pad_journal(uri, experiment_id, ids, events)
    mlflow.set_tracking_uri(None)
    return uri, ids


def pad_journal(uri: str, experiment_id: str, run_ids: list[str], events: int) -> None:
    """Append tag and metric events until the journal holds ``events`` events."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from mlflow_prov.journal import _engine_for, append_event, events_table, now_us
    from mlflow_prov.vocabulary import EventKind, run_chain

    engine = _engine_for(uri)
    with engine.connect() as connection:
        existing = connection.execute(sa.select(sa.func.count()).select_from(events_table))
        missing = events - existing.scalar_one()
    writer = {"host": "bench", "pid": os.getpid(), "user": "bench"}
    written = 0
    while written < missing:
        with Session(engine) as session, session.begin():
            for _ in range(min(5000, missing - written)):
                run_id = run_ids[written % len(run_ids)]
                step = written // len(run_ids)
                if written % 20 == 0:  # a tag change among 19 metric batches
                    kind, payload = EventKind.RUN_TAGS_SET, {
                        "tags": {"stage": f"s{step}"}, "old": {"stage": f"s{step - 1}"}}
                else:
                    kind, payload = EventKind.RUN_METRICS_LOGGED, {
                        "keys": ["train/loss"], "count": 1, "step_min": step,
                        "step_max": step}
                append_event(session, chain=run_chain(run_id), kind=str(kind),
                             experiment_id=experiment_id, run_id=run_id, payload=payload,
                             writer=writer, time_us=now_us())
                written += 1


def timed(args: list[str], repeat: int) -> tuple[list[float], str | None]:
    """Wall-clock seconds of ``mlflow-prov ARGS`` in a fresh process, ``repeat`` times, and
    the error line of a failed run (timings stop at the first failure)."""
    found = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([*CLI, *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        found.append(time.perf_counter() - start)
        if done.returncode != 0:
            return found, (done.stderr.strip().splitlines() or ["?"])[-1]
    return found, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="Run only the cases whose name contains this.")
    parser.add_argument("--keep", type=Path,
                        help="Build the store (and export) in this folder, or reuse them.")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = options.keep or Path(temporary)
        uri = f"prov://{work / 'store'}"
        started = time.perf_counter()
        if not (work / "store").exists():
            build_store(work, options.runs, options.events)
            print(f"store: {options.runs} runs, {options.events} events, built in "
                  f"{time.perf_counter() - started:.0f} s")
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name("questions")
        ids = [r.info.run_id for r in client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time ASC"],
            max_results=options.runs)]
        export = work / "export"
        if not export.exists():
            subprocess.run([*CLI, "export", "--tracking-uri", uri, "--experiment", "questions",
                            "--out", str(export), "--format", "prov-json"], check=True,
                           stdout=subprocess.DEVNULL)
        experiment_doc = next(export.glob("*/experiment.prov.json"))
        run_doc = next(export.glob("*/run-*/prov.json"))
        middle = ids[len(ids) // 2]
        cases = {
            "log (all 100k events, text)": ["log", "--tracking-uri", uri],
            "log --json (all events)": ["log", "--tracking-uri", uri, "--json"],
            "log --run R --key stage": ["log", "--tracking-uri", uri, "--run", middle,
                                        "--key", "stage"],
            "log --kind run.updated": ["log", "--tracking-uri", uri, "--kind", "run.updated"],
            "lineage RUN (both ways, depth 10)": ["lineage", "--tracking-uri", uri, middle],
            "lineage RUN --upstream --depth 100": ["lineage", "--tracking-uri", uri,
                                                   ids[-1], "--upstream", "--depth", "100"],
            "plot (100 runs, 3 metrics)": ["plot", "--tracking-uri", uri, "--experiment",
                                           "questions", "--out", str(work / "plots")],
            "convert experiment -> provo-ttl": ["convert", str(experiment_doc), "--to",
                                                "provo-ttl", "--out", str(work / "e.ttl")],
            "convert experiment -> jsonld": ["convert", str(experiment_doc), "--to", "jsonld",
                                             "--out", str(work / "e.jsonld")],
            "convert experiment -> prov-xml": ["convert", str(experiment_doc), "--to",
                                               "prov-xml", "--out", str(work / "e.xml")],
            "convert run -> svg": ["convert", str(run_doc), "--to", "svg",
                                   "--out", str(work / "r.svg")],
            "convert experiment -> svg": ["convert", str(experiment_doc), "--to", "svg",
                                          "--out", str(work / "e.svg")],
            "collect (101 files)": ["collect", str(export), "--out", str(work / "all.json")],
            "mlflow-prov --help (start-up only)": ["--help"],
        }
        print(f"{'command':40} {'median s':>9} {'min s':>7} {'max s':>7}")
        for name, args in cases.items():
            if options.only and options.only not in name:
                continue
            found, error = timed(args, options.repeat)
            print(f"{name:40} {statistics.median(found):9.2f} {min(found):7.2f} "
                  f"{max(found):7.2f}" + (f"  FAILED: {error}" if error else ""), flush=True)


if __name__ == "__main__":
    main()
