"""What the row digests cost at write time, and what ``mlflow-prov verify`` costs.

Write side: median ``log_batch(1000)`` time per metric and median ``set_tag`` time on a
``prov:///`` store, with the digests on and with them switched off in-process (the same
store code otherwise), rounds alternating so machine drift hits both equally.
Verify side: wall time of :func:`exporters.verify.verify_store` on one run holding
``--rows`` metric rows (plus a few tags and params), and its rate in rows per second.

    python benchmarks/bench_verify.py [--rounds 5] [--batches 5] [--tags 50] [--rows 100000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow import MlflowClient
from mlflow.entities import Metric

import mlflow_prov.events as events
import mlflow_prov.store as store


@contextmanager
def digests_off() -> Iterator[None]:
    """The store without row digests: what capture cost before they existed."""
    saved = store.state_recorder, events.metric_rows_digest
    store.state_recorder = lambda chain, kind, run_id: None
    events.metric_rows_digest = lambda rows: {}
    try:
        yield
    finally:
        store.state_recorder, events.metric_rows_digest = saved


def _run(client: MlflowClient) -> str:
    return client.create_run(client.create_experiment(f"bench-{time.time_ns()}")).info.run_id


def time_batches(client: MlflowClient, batches: int, size: int = 1000) -> float:
    run_id = _run(client)
    durations = []
    for batch in range(batches):
        now = int(time.time() * 1000)
        metrics = [Metric(f"m{i % 20}", float(i), now, batch * size + i) for i in range(size)]
        start = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        durations.append((time.perf_counter() - start) / size)
    return statistics.median(durations)


def time_tags(client: MlflowClient, tags: int) -> float:
    run_id = _run(client)
    durations = []
    for index in range(tags):
        start = time.perf_counter()
        client.set_tag(run_id, f"tag{index}", "x" * 40)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def time_digests(client: MlflowClient, tags: int) -> tuple[float, float]:
    """The digests' own work, timed directly (the A/B above drowns in a loaded machine's
    noise): seconds per metric row hashed, and per state digest of a run with ``tags`` tags
    and 10 params (three indexed reads on the transaction's cursor plus their hashing)."""
    from types import SimpleNamespace

    from mlflow_prov.journal import _engine_for
    from mlflow_prov.stored_rows import metric_rows_digest, run_state

    rows = [SimpleNamespace(key=f"m{i % 20}", value=float(i), timestamp=i, step=i,
                            is_nan=False) for i in range(1000)]
    per_row = min(timeit.repeat(lambda: metric_rows_digest(rows), number=10, repeat=5)) / 10_000
    run_id = _run(client)
    for index in range(tags):
        client.set_tag(run_id, f"tag{index}", "x" * 40)
    for index in range(10):
        client.log_param(run_id, f"p{index}", str(index))
    with _engine_for(client.tracking_uri).connect() as connection:
        per_state = min(timeit.repeat(lambda: run_state(connection, run_id), number=50,
                                      repeat=5)) / 50
    return per_row, per_state


def time_verify(rows: int) -> tuple[float, int]:
    from exporters.verify import verify_store

    uri = f"prov://{tempfile.mkdtemp(prefix='bench-verify-')}"
    client = MlflowClient(uri)
    run_id = _run(client)
    for index in range(10):
        client.log_param(run_id, f"p{index}", str(index))
        client.set_tag(run_id, f"t{index}", str(index))
    for start in range(0, rows, 1000):
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(f"m{i % 10}", float(i), now, i)
                                          for i in range(start, min(rows, start + 1000))])
    started = time.perf_counter()
    report = verify_store(uri)
    elapsed = time.perf_counter() - started
    assert report.ok, report.problems[:3]
    return elapsed, report.metric_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    client = MlflowClient(f"prov://{tempfile.mkdtemp(prefix='bench-digests-')}")
    batch = {"on": [], "off": []}
    tag = {"on": [], "off": []}
    for _ in range(args.rounds):
        batch["on"].append(time_batches(client, args.batches))
        tag["on"].append(time_tags(client, args.tags))
        with digests_off():
            batch["off"].append(time_batches(client, args.batches))
            tag["off"].append(time_tags(client, args.tags))
    for name, found, unit, scale in (("log_batch(1000) per metric", batch, "us", 1e6),
                                     ("set_tag per call", tag, "ms", 1e3)):
        on, off = statistics.median(found["on"]), statistics.median(found["off"])
        print(f"{name}: digests on {on * scale:.1f} {unit} "
              f"(rounds {min(found['on']) * scale:.1f}-{max(found['on']) * scale:.1f}), "
              f"off {off * scale:.1f} {unit} "
              f"(rounds {min(found['off']) * scale:.1f}-{max(found['off']) * scale:.1f}), "
              f"ratio {on / off:.3f}")
    per_row, per_state = time_digests(client, args.tags)
    print(f"digest work: {per_row * 1e6:.2f} us per metric row, {per_state * 1e3:.3f} ms per "
          f"state digest ({args.tags} tags, 10 params)")
    if args.rows:
        elapsed, rows = time_verify(args.rows)
        print(f"verify: {rows} metric rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s)")


if __name__ == "__main__":
    main()
