"""What the row digests cost at write time, and what ``mlflow-prov verify`` costs.

Write side: median ``log_batch(1000)`` time per metric and median ``set_tag`` time on a
``prov:///`` store, with the digests on and with them switched off in-process (the same
store code otherwise), call by call in turn so machine drift hits both alike; and the
digests' own work timed directly.
Verify side: wall time of :func:`exporters.verify.verify_store` on one run holding
``--rows`` metric rows (plus a few tags and params), and its rate in rows per second.

    python benchmarks/bench_verify.py [--batches 20] [--calls 200] [--tags 30] [--rows 100000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mlflow import MlflowClient
from mlflow.entities import Metric

import mlflow_prov.events as events
import mlflow_prov.store as store


@contextmanager
def digests_off() -> Iterator[None]:
    """The store without row digests: what capture cost before they existed."""
    saved = store.state_recorder, events.metric_rows_digest
    store.state_recorder = lambda *described: None
    events.metric_rows_digest = lambda rows: {}
    try:
        yield
    finally:
        store.state_recorder, events.metric_rows_digest = saved


def _run(client: MlflowClient) -> str:
    return client.create_run(client.create_experiment(f"bench-{time.time_ns()}")).info.run_id


def interleaved(client: MlflowClient, calls: int, write: Callable[[str, int], float]
                ) -> dict[str, list[float]]:
    """``write(run_id, index)`` timed ``calls`` times with the digests on and as often off,
    call by call in turn: a loaded machine's drift then hits both sides alike."""
    run_id = _run(client)
    found: dict[str, list[float]] = {"on": [], "off": []}
    for index in range(2 * calls):
        if index % 2:
            found["on"].append(write(run_id, index))
        else:
            with digests_off():
                found["off"].append(write(run_id, index))
    return found


def log_batch_per_metric(client: MlflowClient, size: int = 1000) -> Callable[[str, int], float]:
    def write(run_id: str, index: int) -> float:
        now = int(time.time() * 1000)
        metrics = [Metric(f"m{i % 20}", float(i), now, index * size + i) for i in range(size)]
        start = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        return (time.perf_counter() - start) / size
    return write


def set_tag_call(client: MlflowClient, keys: int) -> Callable[[str, int], float]:
    def write(run_id: str, index: int) -> float:
        start = time.perf_counter()
        client.set_tag(run_id, f"tag{index % keys}", f"value {index}")
        return time.perf_counter() - start
    return write


def time_digests(client: MlflowClient, tags: int) -> tuple[float, float]:
    """The digests' own work, timed directly: seconds per metric row hashed, and per state
    digest of a run with ``tags`` tags and 10 params (three indexed reads on the
    transaction's cursor plus their hashing)."""
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
    parser.add_argument("--batches", type=int, default=20, help="log_batch calls per side")
    parser.add_argument("--calls", type=int, default=200, help="set_tag calls per side")
    parser.add_argument("--tags", type=int, default=30, help="distinct tag keys of the run")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    client = MlflowClient(f"prov://{tempfile.mkdtemp(prefix='bench-digests-')}")
    batch = interleaved(client, args.batches, log_batch_per_metric(client))
    tag = interleaved(client, args.calls, set_tag_call(client, args.tags))
    for name, found, unit, scale in (("log_batch(1000) per metric", batch, "us", 1e6),
                                     ("set_tag per call", tag, "ms", 1e3)):
        on, off = statistics.median(found["on"]), statistics.median(found["off"])
        quartiles_on = statistics.quantiles(found["on"], n=4)
        quartiles_off = statistics.quantiles(found["off"], n=4)
        print(f"{name}: digests on {on * scale:.2f} {unit} (quartiles "
              f"{quartiles_on[0] * scale:.2f}-{quartiles_on[2] * scale:.2f}), off "
              f"{off * scale:.2f} {unit} (quartiles {quartiles_off[0] * scale:.2f}-"
              f"{quartiles_off[2] * scale:.2f}), ratio {on / off:.3f}")
    per_row, per_state = time_digests(client, args.tags)
    print(f"digest work: {per_row * 1e6:.2f} us per metric row, {per_state * 1e3:.3f} ms per "
          f"state digest ({args.tags} tags, 10 params)")
    if args.rows:
        elapsed, rows = time_verify(args.rows)
        print(f"verify: {rows} metric rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s)")


if __name__ == "__main__":
    main()
