"""How fast ``mlflow-prov log`` streams a journal: events per second, text and ``--json``.

The store is ``bench_questions.py``'s: 100 real runs written through MLflow, the journal
padded to ``--events`` events with hash-chained tag and metric events. Each round prints the
whole journal to ``/dev/null`` in process (what the command does after start-up, so the
figure is the streaming rate, not Python's and MLflow's import time) along the command's own
path (undecoded rows, :class:`exporters.journal_log.LogPrinter`), and for comparison along
the decoded path a server's events take (``read_events`` + ``LogPrinter.event``); the rounds
alternate. One run of the real command in a fresh process is timed too, start-up included.

    python benchmarks/bench_log.py [--events 100000] [--rounds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench_questions import build_store

from exporters.journal_log import LogFilters, LogPrinter, log_output
from mlflow_prov.journal import read_events


def stream(uri: str, as_json: bool) -> int:
    """The command's output, written to /dev/null; returns the characters written."""
    written = 0
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for piece in log_output(uri, LogFilters(), LogPrinter(as_json=as_json)):
            written += sink.write(piece)
    return written


def decoded(uri: str, as_json: bool) -> int:
    """The same events decoded first, one ``JournalEvent`` each."""
    printer = LogPrinter(as_json=as_json)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        return sum(sink.write(printer.event(event) + "\n") for event in read_events(uri))


def rates(paths: dict[str, Callable[[], int]], events: int, rounds: int) -> None:
    """Events per second of wall-clock time and per second of this process's CPU time (on a
    shared machine the second says what the code costs, the first what the load left)."""
    wall: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, run in paths.items():  # alternating: load on the machine hits each alike
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    for name in paths:
        for clock, taken in (("wall", wall[name]), ("cpu", cpu[name])):
            per_second = [events / s for s in taken]
            print(f"{name:38s} {clock:4s} median {statistics.median(per_second):9,.0f} events/s"
                  f"  range {min(per_second):9,.0f}–{max(per_second):9,.0f}")


def command_seconds(uri: str, extra: Iterable[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from exporters.cli import main; main()", "log",
                    "--tracking-uri", uri, *extra], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build the store here, or reuse it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        uri = f"prov://{folder / 'store'}"
        if not (folder / "store").exists():
            build_store(folder, 100, args.events)
        rates({"log (text)": lambda: stream(uri, False),
               "log --json": lambda: stream(uri, True),
               "decoded events (text), for reference": lambda: decoded(uri, False)},
              args.events, args.rounds)
        for extra in ((), ("--json",)):
            print(f"mlflow-prov log {' '.join(extra):7s} whole command, fresh process: "
                  f"{command_seconds(uri, extra):.2f} s")


if __name__ == "__main__":
    main()
