"""Page and API load times of ``mlflow server --app-name prov`` on a big store.

Builds a ``prov:///`` store with an experiment of ``--runs`` runs (params and tags by
``log_batch``, every other run using a dataset another run produced, so lineage has edges)
and one run with ``--events`` journal events (tag changes, appended to its hash chain in
one transaction, the journal's own write path, since 100,000 separate MLflow writes would
take minutes) and one run with ``--metric-events`` metric events (one per ``log_metric``
call of a training loop, as the journal records them, between two tag changes: the run page
folds them into one row), starts a real server on 127.0.0.1 and times each page and API
call over ``--rounds`` rounds: median and range, in milliseconds.

    python benchmarks/bench_pages.py [--runs 1000] [--events 100000]
        [--metric-events 100000] [--rounds 5] [--folder DIR] [--store-uri URI]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Param, RunTag
from sqlalchemy.orm import Session

from exporters.app.tokens import PAGE_TOKEN_SECRET_ENV
from mlflow_prov.journal import (
    NewEvent,
    append_event,
    append_events,
    now_us,
    read_events_page,
)
from mlflow_prov.uri import parse_prov_uri
from mlflow_prov.vocabulary import DATASET_CONTEXT_TAG, EventKind, run_chain

STARTUP_SECONDS = 600
EVENTS_PER_APPEND = 100
TOKEN_SECRET = "bench-pages-token-secret"  # page tokens the benchmark signs, as the server


def build(uri: str, runs: int, events: int, metric_events: int) -> dict[str, str]:
    """The store: one experiment of ``runs`` runs, one run with ``events`` events, one with
    ``metric_events`` metric events."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("bench-runs")
    producer = client.create_run(experiment_id, run_name="producer").info.run_id
    source = f'{{"uri": "runs:/{producer}/data/train.csv"}}'
    dataset = DatasetInput(Dataset("train.csv", "d1g35t", "mlflow_run_artifact", source),
                           [InputTag(DATASET_CONTEXT_TAG, "training")])
    run_ids = [producer]
    for index in range(runs - 1):
        run_id = client.create_run(experiment_id, run_name=f"run-{index:04d}").info.run_id
        client.log_batch(run_id, params=[Param("lr", str(0.001 * index)), Param("seed", "7")],
                         tags=[RunTag("phase", "train")])
        if index % 2 == 0:
            client.log_inputs(run_id, datasets=[dataset])
        client.set_terminated(run_id)
        run_ids.append(run_id)
    big_experiment = client.create_experiment("bench-events")
    big = client.create_run(big_experiment, run_name="long-run").info.run_id
    _append_tag_events(uri, big_experiment, big, events)
    metrics_run = client.create_run(big_experiment, run_name="training-loop").info.run_id
    client.set_tag(metrics_run, "phase", "warmup")
    _append_metric_events(uri, big_experiment, metrics_run, metric_events)
    client.set_tag(metrics_run, "phase", "done")
    return {"experiment": experiment_id, "big_experiment": big_experiment, "big_run": big,
            "consumer": run_ids[1], "producer": producer, "metrics_run": metrics_run}


def _append_tag_events(uri: str, experiment_id: str, run_id: str, count: int) -> None:
    engine = MlflowClient(uri)._tracking_client.store.engine
    writer = {"user": "bench", "host": "bench-host", "pid": os.getpid()}
    with Session(engine) as session, session.begin():
        for index in range(count):
            append_event(session, chain=run_chain(run_id), kind=EventKind.RUN_TAGS_SET,
                         experiment_id=experiment_id, run_id=run_id,
                         payload={"tags": {"epoch": str(index)},
                                  "old": {"epoch": str(index - 1) if index else None}},
                         writer=writer, time_us=now_us())


def _append_metric_events(uri: str, experiment_id: str, run_id: str, count: int) -> None:
    """``count`` metric events as ``log_metric`` writes them: ``loss`` and ``accuracy``
    alternately, one value each, step by step; appended :data:`EVENTS_PER_APPEND` at a time
    (one journal write each: the events are the same, the run's fold counters move once per
    write, not once per event as 100,000 transactions of one ``log_metric`` each would)."""
    engine = MlflowClient(uri)._tracking_client.store.engine
    writer = {"user": "bench", "host": "bench-host", "pid": os.getpid()}
    start_ms = int(time.time() * 1000)
    with Session(engine) as session, session.begin():
        for first in range(0, count, EVENTS_PER_APPEND):
            events = []
            for index in range(first, min(first + EVENTS_PER_APPEND, count)):
                step, moment = index // 2, start_ms + index
                events.append(NewEvent(
                    EventKind.RUN_METRICS_LOGGED, experiment_id, run_id,
                    {"keys": [("loss", "accuracy")[index % 2]], "count": 1, "step_min": step,
                     "step_max": step, "time_min": moment, "time_max": moment}))
            append_events(session, run_chain(run_id), events, writer=writer, time_us=now_us())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(uri: str, folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "prov",
         "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        start_new_session=True, env={**os.environ, PAGE_TOKEN_SECRET_ENV: TOKEN_SECRET})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health", timeout=2).ok:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit(f"server did not start; see {folder / 'server.log'}")


def calls(base: str, ids: dict[str, str], uri: str, events: int) -> dict[str, str]:
    """The URLs to time, by what they show."""
    from exporters.app.history import journal_token
    from exporters.app.tokens import PageTokens

    middle = read_events_page(uri, run_id=ids["big_run"], limit=max(1, events // 2))
    # the token the server would hand out there: it signs with the secret given to it
    deep = journal_token(PageTokens(TOKEN_SECRET.encode()), middle.next_after_seq)
    return {
        "/prov/ (experiments)": f"{base}/prov/",
        "/prov/experiments/<1,000 runs> (first 100 runs + lineage)":
            f"{base}/prov/experiments/{ids['experiment']}",
        "/prov/runs/<100k events> (first 100 events)":
            f"{base}/prov/runs/{ids['big_run']}",
        "/prov/runs/<100k metric events> (folded into one row)":
            f"{base}/prov/runs/{ids['metrics_run']}",
        "/prov/runs/<100k events> page in the middle":
            f"{base}/prov/runs/{ids['big_run']}?page_token={deep}",
        "/prov/api/events run (100 events)":
            f"{base}/prov/api/events?run_id={ids['big_run']}",
        "/prov/api/events run, page in the middle":
            f"{base}/prov/api/events?run_id={ids['big_run']}&page_token={deep}",
        "/prov/api/events experiment, kind filter":
            f"{base}/prov/api/events?experiment_id={ids['experiment']}&kind=run.inputs_logged",
        "/prov/api/verify run (100k events)":
            f"{base}/prov/api/verify?run_id={ids['big_run']}",
        "/prov/api/verify experiment (1,000 runs)":
            f"{base}/prov/api/verify?experiment_id={ids['experiment']}",
        "/prov/api/lineage run": f"{base}/prov/api/lineage?run_id={ids['producer']}",
    }


def time_calls(urls: dict[str, str], rounds: int) -> None:
    for name, url in urls.items():
        durations = []
        for _ in range(rounds):
            start = time.perf_counter()
            response = requests.get(url, timeout=600)
            durations.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
        print(f"{name:62s} median {statistics.median(durations):8.1f} ms  "
              f"range {min(durations):8.1f}–{max(durations):8.1f} ms  "
              f"({len(response.content) / 1024:.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--metric-events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--folder", type=Path,
                        help="Keep the store (and the server log) here; a store already "
                             "built there is reused.")
    parser.add_argument("--store-uri",
                        help="Build the store here instead of a sqlite store in the folder, "
                             "e.g. prov+postgresql://postgres@127.0.0.1:5432/bench_pages (an "
                             "empty database; with --folder, reused as the folder's ids say)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        uri = args.store_uri or f"prov://{folder / 'store'}"
        ids_file = folder / "ids.json"
        if ids_file.exists():
            ids = json.loads(ids_file.read_text())
        else:
            start = time.perf_counter()
            ids = build(uri, args.runs, args.events, args.metric_events)
            ids_file.write_text(json.dumps(ids))
            print(f"built {args.runs} runs, a run of {args.events} events and one of "
                  f"{args.metric_events} metric events in "
                  f"{time.perf_counter() - start:.0f} s ({parse_prov_uri(uri).db_uri})")
        process, base = serve(uri, folder)
        try:
            time_calls(calls(base, ids, uri, args.events), args.rounds)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
