"""What a transparency-log checkpoint check costs, against rehashing every event.

Builds a sqlite journal of ``--events`` chained events (``--chains`` chains, payloads of
about 200 bytes, as a metric batch's), then times, alternating, ``--rounds`` times each:
the checkpoint check (read the hash column, build the Merkle tree, prove and verify
consistency with a checkpoint of half the events) and the full rehash (read every event and
recompute its hash, as a chain check does). Prints medians and ranges.

    python benchmarks/bench_tlog.py [--events 200000] [--chains 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from exporters.journal_tree import extends, journal_tree
from mlflow_prov.journal import canonical_json, ensure_tables, event_hash, events_table, read_events


def build_journal(database: Path, events: int, chains: int) -> str:
    engine = sa.create_engine(f"sqlite:///{database}")
    ensure_tables(engine)
    previous: dict[str, str | None] = {}
    rows = []
    for index in range(events):
        chain = f"run:{index % chains:032x}"
        payload = canonical_json({"keys": ["loss", "acc"], "count": 2, "steps": [index, index],
                                  "digest": f"{index:064x}"})
        writer = canonical_json({"user": "bench", "host": "localhost"})
        digest = event_hash(previous.get(chain), chain, index, "run.metrics_logged", "1",
                            chain[4:], payload, writer)
        rows.append({"time_us": index, "chain": chain, "experiment_id": "1",
                     "run_id": chain[4:], "kind": "run.metrics_logged", "payload": payload,
                     "writer": writer, "prev_hash": previous.get(chain), "hash": digest})
        previous[chain] = digest
    with engine.begin() as connection:
        connection.execute(events_table.insert(), rows)
    engine.dispose()
    return f"prov+sqlite:///{database}"


def checkpoint_check(uri: str, old) -> None:
    tree = journal_tree(uri)
    assert extends(tree, old) is None


def full_rehash(uri: str) -> None:
    for event in read_events(uri):
        event_hash(event.prev_hash, event.chain, event.time_us, str(event.kind),
                   event.experiment_id, event.run_id, canonical_json(event.payload),
                   canonical_json(event.writer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        uri = build_journal(Path(folder) / "journal.db", args.events, args.chains)
        old = journal_tree(uri).checkpoint(args.events // 2)
        times: dict[str, list[float]] = {"checkpoint check": [], "full rehash": []}
        for _ in range(args.rounds):
            for name, work in (("checkpoint check", lambda: checkpoint_check(uri, old)),
                               ("full rehash", lambda: full_rehash(uri))):
                started = time.perf_counter()
                work()
                times[name].append(time.perf_counter() - started)
    summary = {name: {"median_s": round(statistics.median(values), 3),
                      "range_s": [round(min(values), 3), round(max(values), 3)]}
               for name, values in times.items()}
    ratio = summary["full rehash"]["median_s"] / summary["checkpoint check"]["median_s"]
    print(json.dumps({"events": args.events, "rounds": args.rounds, **summary,
                      "rehash_over_check": round(ratio, 2)}, indent=1))


if __name__ == "__main__":
    main()
