"""CSV metric files: one ``step,timestamp,value`` file per metric series, for spreadsheets.

Files go to ``run_dir/metrics/<name>.csv``; the name is the MLflow key made safe for every
file system (``/`` and other characters become ``_``), with the context appended when two
series would collide. ``timestamp`` is MLflow's integer milliseconds since the Unix epoch;
values are written with Python's shortest round-trip repr, so they read back bit-exact, and
non-finite values as ``nan``, ``inf`` and ``-inf`` (what pandas and numpy parse).

Streaming like the NetCDF sink: a series is written out in ``add`` and not kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from exporters.layout import CSV_DIR
from exporters.records import MetricLocation, MetricSeries, RunRecord

METRICS_DIR = CSV_DIR
COLUMNS = ("step", "timestamp", "value")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_STEM = 120


def safe_stem(text: str) -> str:
    """A portable file stem: ASCII letters, digits, ``_ . -``; never hidden, never empty."""
    stem = _UNSAFE_FILE_CHARS.sub("_", text).lstrip(".")[:_MAX_STEM]
    return stem or "metric"


class CsvSink:
    """Writes each metric series of one run to its own CSV file as it streams past."""

    def __init__(self, run: RunRecord, run_dir: Path) -> None:
        self.run_id = run.run_id
        self.directory = run_dir / METRICS_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stems: set[str] = set()
        self._written: list[Path] = []

    def _stem(self, series: MetricSeries) -> str:
        """A stem unique within the run; compared case-insensitively for macOS/Windows."""
        candidates = [safe_stem(series.key)]
        if series.context:
            candidates.append(safe_stem(f"{series.key}_{series.context}"))
        for candidate in candidates:
            if candidate.lower() not in self._stems:
                return candidate
        counter = 2
        while f"{candidates[-1]}_{counter}".lower() in self._stems:
            counter += 1
        return f"{candidates[-1]}_{counter}"

    def add(self, series: MetricSeries) -> MetricLocation:
        """Write one series to ``metrics/<stem>.csv`` now and keep only its file name."""
        stem = self._stem(series)
        self._stems.add(stem.lower())
        path = self.directory / f"{stem}.csv"
        frame = pd.DataFrame({"step": series.steps.astype("int64", copy=False),
                              "timestamp": series.timestamps_ms.astype("int64", copy=False),
                              "value": series.values.astype("float64", copy=False)})
        frame.to_csv(path, index=False, na_rep="nan", lineterminator="\n")
        self._written.append(path)
        return MetricLocation(file=f"{METRICS_DIR}/{path.name}", variable="value")

    def close(self) -> list[Path]:
        """Every file is complete when ``add`` returns; this only reports them."""
        return list(self._written)
