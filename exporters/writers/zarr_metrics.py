"""Zarr metric stores: every metric series of a run in one ``metrics.zarr`` (Zarr format 3).

yProv4ML's default metrics format was Zarr, so its users keep it. The store mirrors the NetCDF
file (:mod:`exporters.writers.netcdf`) array for array and attribute for attribute: per metric a
value array ``<var>`` (float64), ``<var>_time`` (float64 seconds since the Unix epoch) and
``<var>_step`` (int64), each on dimension ``<var>_obs`` (Zarr 3 ``dimension_names``, which
xarray reads), with the same CF attributes and the same global attributes on the group. A
reader that knows one layout knows the other; ``exporters.getters`` reads both.

Each array is one chunk (a series is written once, whole), compressed with Zarr's default
codec (zstd). Streaming like the other sinks: a series is written in ``add`` and dropped.
The store is a folder; ``close`` returns every file in it so an RO-Crate packs all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from exporters.layout import ZARR_STORE
from exporters.records import MetricLocation, MetricSeries, RunRecord
from exporters.writers.netcdf import (
    STEP_ATTRIBUTES,
    TIME_ATTRIBUTES,
    _unique,
    global_attributes,
    sanitize_name,
    value_attributes,
)

STORE_NAME = ZARR_STORE


class ZarrSink:
    """Writes one run's metric series into ``run_dir/metrics.zarr`` as they stream past."""

    def __init__(self, run: RunRecord, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / STORE_NAME
        self._group = zarr.open_group(str(self.path), mode="w", zarr_format=3)
        self._group.attrs.update(global_attributes(run))

    def _taken(self, name: str) -> bool:
        return any(n in self._group for n in (name, f"{name}_time", f"{name}_step"))

    def add(self, series: MetricSeries) -> MetricLocation:
        """Write one series now and keep nothing of it but its array name."""
        candidates = [sanitize_name(series.key)]
        if series.context:
            candidates.append(sanitize_name(f"{series.key}_{series.context}"))
        name = _unique(candidates, self._taken)
        seconds = np.asarray(series.timestamps_ms, dtype=np.int64) / 1000.0
        arrays: tuple[tuple[str, np.ndarray, dict[str, Any]], ...] = (
            (f"{name}_time", seconds, dict(TIME_ATTRIBUTES)),
            (f"{name}_step", np.asarray(series.steps, dtype=np.int64), dict(STEP_ATTRIBUTES)),
            (name, np.asarray(series.values, dtype=np.float64),
             dict(value_attributes(name, series))))
        for array_name, data, attributes in arrays:
            array = self._group.create_array(
                array_name, shape=data.shape, dtype=data.dtype, chunks=(max(1, len(data)),),
                dimension_names=[f"{name}_obs"], fill_value=None, attributes=attributes)
            array[:] = data
        return MetricLocation(file=STORE_NAME, variable=name)

    def close(self) -> list[Path]:
        """Every array is complete when ``add`` returns; report the store's files."""
        return sorted(p for p in self.path.rglob("*") if p.is_file())
