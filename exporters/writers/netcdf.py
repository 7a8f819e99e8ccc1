"""CF NetCDF metric files: every metric series of a run in one ``metrics.nc``.

Layout (chosen because compliance-checker 6.1.0 can check it, see docs/internals.md,
"Validators"):
the root group only; per metric one dimension ``<var>_obs``, one data variable ``<var>`` and
two auxiliary coordinate variables ``<var>_time`` (float64 seconds since the Unix epoch) and
``<var>_step`` (int64). Each metric gets its own dimension because MLflow series have
independent lengths and timestamps; groups would hide them from CF checkers, and contiguous
ragged arrays crash the checker at CF >= 1.9. The data variable has no ``_FillValue``, so
every value the sink receives (NaN, +/-inf, any float64) reads back bit for bit.

The sink is streaming: each series is written to disk in :meth:`NetCDFSink.add` and dropped,
so peak memory is the largest single series, not the run or the experiment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np

from exporters.layout import NETCDF_FILE
from exporters.records import MetricLocation, MetricSeries, RunRecord
from exporters.versions import package_version
from mlflow_prov.vocabulary import unit_for_key

FILE_NAME = NETCDF_FILE
CONVENTIONS = "CF-1.11"
TIME_UNITS = "seconds since 1970-01-01 00:00:00"
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]")


def sanitize_name(text: str) -> str:
    """A CF-recommended variable name (``[A-Za-z][A-Za-z0-9_]*``) for an MLflow key.

    Keys may hold ``/``, ``.``, ``-``, spaces or any unicode; those become ``_`` here and the
    original key is kept in the ``mlflow_key`` attribute.
    """
    name = _INVALID_NAME_CHARS.sub("_", text)
    return name if name[:1].isalpha() else f"m_{name}"


def _unique(candidates: list[str], taken: Callable[[str], bool]) -> str:
    """The first candidate not yet taken, else the last one with a counter appended."""
    for candidate in candidates:
        if not taken(candidate):
            return candidate
    base, counter = candidates[-1], 2
    while taken(f"{base}_{counter}"):
        counter += 1
    return f"{base}_{counter}"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


TIME_ATTRIBUTES = {"standard_name": "time", "long_name": "time the value was logged",
                   "units": TIME_UNITS, "calendar": "standard",
                   "units_metadata": "leap_seconds: none", "axis": "T"}
STEP_ATTRIBUTES = {"long_name": "MLflow step", "units": "1"}


def value_attributes(name: str, series: MetricSeries) -> dict[str, str]:
    """The attributes of a metric's value variable (NetCDF and Zarr alike)."""
    attributes = {"long_name": series.key, "mlflow_key": series.key,
                  "source": series.source, "coordinates": f"{name}_time {name}_step"}
    unit = unit_for_key(series.key)
    if unit:
        attributes["units"] = unit.udunits
    optional = {"context": series.context, "dataset_digest": series.dataset_digest,
                "model_id": series.model_id}
    attributes.update({k: v for k, v in optional.items() if v})
    return attributes


def global_attributes(run: RunRecord) -> dict[str, str]:
    """The file-level attributes of a run's metric store (NetCDF and Zarr alike)."""
    now = datetime.now(tz=UTC).isoformat(timespec="seconds")
    return {
        "Conventions": CONVENTIONS,
        "title": f"Metrics of MLflow run {run.name or run.run_id}",
        "source": f"MLflow run {run.run_id} (experiment {run.experiment_id})",
        "history": f"{now} written by mlflow-prov {package_version('mlflow-prov')} from MLflow",
        "comment": "one dimension per metric series; time and step are auxiliary "
                   "coordinates; read with auto-masking off (no _FillValue is set)",
        "mlflow_run_id": run.run_id,
        "mlflow_run_name": run.name or "",
        "mlflow_experiment_id": run.experiment_id,
        "mlflow_run_status": run.status,
        "mlflow_run_start_time": _iso(run.start_time),
        "mlflow_run_end_time": _iso(run.end_time),
    }


class NetCDFSink:
    """Writes one run's metric series into ``run_dir/metrics.nc`` as they stream past."""

    def __init__(self, run: RunRecord, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / FILE_NAME
        self._dataset = netCDF4.Dataset(self.path, "w", format="NETCDF4")
        self._write_global_attributes(run)

    def _write_global_attributes(self, run: RunRecord) -> None:
        self._dataset.setncatts(global_attributes(run))

    def _variable_name(self, series: MetricSeries) -> str:
        candidates = [sanitize_name(series.key)]
        if series.context:
            candidates.append(sanitize_name(f"{series.key}_{series.context}"))
        return _unique(candidates, self._taken)

    def _taken(self, name: str) -> bool:
        """Whether a metric named ``name`` would clash with any variable or dimension so far
        (``loss`` owns ``loss_time``, so a key ``loss_time`` must get another name)."""
        variables = self._dataset.variables
        return (f"{name}_obs" in self._dataset.dimensions
                or any(n in variables for n in (name, f"{name}_time", f"{name}_step")))

    def add(self, series: MetricSeries) -> MetricLocation:
        """Write one series to disk now and keep nothing of it but its variable name."""
        name = self._variable_name(series)
        dim = f"{name}_obs"
        self._dataset.createDimension(dim, len(series.values))
        self._add_time(name, dim, series.timestamps_ms)
        self._add_step(name, dim, series.steps)
        self._add_values(name, dim, series)
        return MetricLocation(file=FILE_NAME, variable=name)

    def _add_time(self, name: str, dim: str, timestamps_ms: np.ndarray) -> None:
        time = self._dataset.createVariable(f"{name}_time", "f8", (dim,), fill_value=False)
        time.setncatts(TIME_ATTRIBUTES)
        time[:] = np.asarray(timestamps_ms, dtype=np.int64) / 1000.0

    def _add_step(self, name: str, dim: str, steps: np.ndarray) -> None:
        step = self._dataset.createVariable(f"{name}_step", "i8", (dim,), fill_value=False)
        step.setncatts(STEP_ATTRIBUTES)
        step[:] = np.asarray(steps, dtype=np.int64)

    def _add_values(self, name: str, dim: str, series: MetricSeries) -> None:
        var = self._dataset.createVariable(name, "f8", (dim,), fill_value=False)
        var.setncatts(value_attributes(name, series))
        var[:] = np.asarray(series.values, dtype=np.float64)

    def close(self) -> list[Path]:
        """Close the file (flushing HDF5 buffers) and return it."""
        if self._dataset.isopen():
            self._dataset.close()
        return [self.path]
