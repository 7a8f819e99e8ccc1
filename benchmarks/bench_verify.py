"""What the metric-row digests cost at write time, and what ``mlflow-prov verify`` costs.

Write side: the digest work itself, timed directly (seconds per metric row hashed), the
only work the journal adds per metric row. Verify side: wall time of
:func:`exporters.verify.verify_store` on one run holding ``--rows`` metric rows (plus a few
tags and params), replaying its journal, and its rate in rows per second.

    python benchmarks/bench_verify.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import timeit
from types import SimpleNamespace

from mlflow import MlflowClient
from mlflow.entities import Metric


def _run(client: MlflowClient) -> str:
    return client.create_run(client.create_experiment(f"bench-{time.time_ns()}")).info.run_id


def time_digest() -> float:
    """Seconds per metric row of the digest a metrics event records."""
    from mlflow_prov.stored_rows import metric_rows_digest

    rows = [SimpleNamespace(key=f"m{i % 20}", value=float(i), timestamp=i, step=i,
                            is_nan=False) for i in range(1000)]
    return min(timeit.repeat(lambda: metric_rows_digest(rows), number=10, repeat=5)) / 10_000


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
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(f"digest work: {time_digest() * 1e6:.2f} us per metric row")
    if args.rows:
        elapsed, rows = time_verify(args.rows)
        print(f"verify: {rows} metric rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s)")


if __name__ == "__main__":
    main()
