"""Trace logging overhead: an agent traced with 20 spans per request, plain MLflow against
``prov:///``.

By default trace logging is switched to synchronous (``MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=false``)
so that every store write of a trace (each span, its info) happens inside the timed request:
the worst case for the journal, one ``log_spans`` write per span. ``--async`` keeps MLflow's
default (a background thread batching spans) and times the requests plus the final flush.
Three stores: plain ``sqlite:///``, plain sqlite switched to WAL (the journal mode the prov
store sets, so the journal's own cost is isolated), and ``prov:///``. Rounds alternate the
order of the stores so that drift in the machine's speed hits all of them alike; each round
times ``--requests`` requests per store and keeps the median per request.

    python benchmarks/bench_traces.py [--rounds 6] [--requests 5] [--spans 20] [--async]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import mlflow


def make_agent(spans: int):
    """A traced function whose every request makes ``spans`` spans (one root, the rest tools)."""

    @mlflow.trace(span_type="TOOL")
    def tool(step: int, text: str) -> str:
        return f"{text}|{step}"

    @mlflow.trace(span_type="AGENT")
    def agent(question: str) -> str:
        text = question
        for step in range(spans - 1):
            text = tool(step, text)
        return text

    return agent


def time_requests(uri: str, agent, requests: int) -> float:
    """Median seconds per traced request on the store at ``uri``."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-traces")
    if os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] == "true":
        start = time.perf_counter()
        for index in range(requests):
            agent(f"question {index}")
        mlflow.flush_trace_async_logging()
        return (time.perf_counter() - start) / requests
    durations = []
    for index in range(requests):
        start = time.perf_counter()
        agent(f"question {index}")
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def wal_database(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return f"sqlite:///{path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--spans", type=int, default=20)
    parser.add_argument("--async", dest="background", action="store_true",
                        help="MLflow's default background trace logging")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "true" if args.background else "false"
    folder = Path(tempfile.mkdtemp(prefix="bench-traces-"))
    stores = {"sqlite": f"sqlite:///{folder / 'plain.db'}",
              "sqlite-wal": wal_database(folder / "wal.db"),
              "prov": f"prov://{folder / 'prov'}"}
    agent = make_agent(args.spans)
    for uri in stores.values():  # create and migrate each store outside the timing
        time_requests(uri, agent, 1)
    results: dict[str, list[float]] = {name: [] for name in stores}
    for round_index in range(args.rounds):
        order = list(stores) if round_index % 2 == 0 else list(reversed(stores))
        for name in order:
            results[name].append(time_requests(stores[name], agent, args.requests))
    mode = "background logging, flushed" if args.background else "synchronous logging"
    print(f"{args.spans} spans per request, {mode}, {args.requests} requests x {args.rounds} "
          "rounds (median ms per request; range of round medians)")
    for name, values in results.items():
        print(f"  {name:11s} {statistics.median(values) * 1e3:8.2f} ms "
              f"[{min(values) * 1e3:.2f} .. {max(values) * 1e3:.2f}]")
    for baseline in ("sqlite", "sqlite-wal"):
        ratios = [p / b for p, b in zip(results["prov"], results[baseline], strict=True)]
        print(f"  prov / {baseline:10s} {statistics.median(ratios):.3f}x "
              f"[{min(ratios):.3f} .. {max(ratios):.3f}]")


if __name__ == "__main__":
    main()
