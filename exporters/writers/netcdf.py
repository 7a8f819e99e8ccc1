"""CF NetCDF metric files: every metric series of a run in one ``metrics.nc``.

Layout (chosen because compliance-checker 6.1.0 can check it, see docs/internals.md,
"Validators"):
the root group only; per metric one dimension ``<var>_obs``, one data variable ``<var>`` and
two auxiliary coordinate variables ``<var>_time`` (float64 seconds since the Unix epoch) and
``<var>_step`` (int64). Each metric gets its own dimension because MLflow series have
independent lengths and timestamps; groups would hide them from CF checkers, and contiguous
ragged arrays crash the checker at CF >= 1.9. The data variable has no ``_FillValue``, so
every value the sink receives (NaN, +/-inf, any float64) reads back bit for bit.

The sink is streaming: each series is spilled to disk in :meth:`NetCDFSink.add` and dropped,
so peak memory is the largest single series, not the run or the experiment; the file itself
is written in :meth:`NetCDFSink.close`, all definitions first (see the class for why).
"""

from __future__ import annotations

import re
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np

from exporters.layout import NETCDF_FILE
from exporters.records import MetricLocation, MetricSeries, RunRecord
from exporters.sanitize import TEXT_NOTE, xml_safe_text, xml_unsafe
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


SANITIZED_ATTRIBUTE = "mlflowprov_sanitized"


def _set_text_attributes(target: netCDF4.Dataset | netCDF4.Variable,
                         attributes: dict[str, str]) -> None:
    """Set string attributes; netCDF cuts a string at NUL, so a value XML 1.0 cannot hold
    is written with :func:`~exporters.sanitize.xml_safe_text` escapes and named in the
    ``mlflowprov_sanitized`` attribute (PROV's ``mlflowprov:sanitized``)."""
    changed = [name for name, value in attributes.items() if xml_unsafe(value)]
    safe = {name: xml_safe_text(value) for name, value in attributes.items()}
    if changed:
        safe[SANITIZED_ATTRIBUTE] = f"{' '.join(changed)}: {TEXT_NOTE}"
    target.setncatts(safe)


@dataclass(frozen=True)
class _Pending:
    """A series waiting in the spill file: its variable name, length and value attributes."""

    name: str
    length: int
    attributes: dict[str, str]


class NetCDFSink:
    """Writes one run's metric series into ``run_dir/metrics.nc``: each series is spilled to
    an anonymous temporary file as it streams past, and :meth:`close` defines every
    variable, then writes every series, in one pass.

    Why not write each series in :meth:`add`: netCDF-4 rewrites the metadata of every
    variable in the file each time it leaves define mode, which writing after a definition
    does, so series-by-series writing costs O(series²) (8,000 series took minutes). Defining
    first leaves define mode once. Peak memory stays one series (read back one at a time).
    """

    def __init__(self, run: RunRecord, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / FILE_NAME
        self._global_attributes = global_attributes(run)
        self._spill = tempfile.TemporaryFile(dir=run_dir)
        weakref.finalize(self, self._spill.close)  # an export that failed never calls close
        self._pending: list[_Pending] = []
        self._variables: set[str] = set()
        self._dimensions: set[str] = set()

    def _variable_name(self, series: MetricSeries) -> str:
        candidates = [sanitize_name(series.key)]
        if series.context:
            candidates.append(sanitize_name(f"{series.key}_{series.context}"))
        return _unique(candidates, self._taken)

    def _taken(self, name: str) -> bool:
        """Whether a metric named ``name`` would clash with any variable or dimension so far
        (``loss`` owns ``loss_time``, so a key ``loss_time`` must get another name)."""
        return (f"{name}_obs" in self._dimensions
                or any(n in self._variables for n in (name, f"{name}_time", f"{name}_step")))

    def add(self, series: MetricSeries) -> MetricLocation:
        """Spill one series (time, step, values) and keep only its name and attributes."""
        name = self._variable_name(series)
        self._dimensions.add(f"{name}_obs")
        self._variables.update((name, f"{name}_time", f"{name}_step"))
        for data in _columns(series):
            data.tofile(self._spill)
        self._pending.append(_Pending(name, len(series.values), value_attributes(name, series)))
        return MetricLocation(file=FILE_NAME, variable=name)

    def close(self) -> list[Path]:
        """Write ``metrics.nc``: every dimension and variable, then every series' points."""
        if self._spill.closed:
            return [self.path]
        self._spill.flush()
        self._spill.seek(0)
        with netCDF4.Dataset(self.path, "w", format="NETCDF4") as dataset:
            _set_text_attributes(dataset, self._global_attributes)
            variables = [_define(dataset, pending) for pending in self._pending]
            for pending, targets in zip(self._pending, variables, strict=True):
                for target, dtype in zip(targets, (np.float64, np.int64, np.float64),
                                         strict=True):
                    target[:] = np.fromfile(self._spill, dtype=dtype, count=pending.length)
        self._spill.close()
        return [self.path]


def _columns(series: MetricSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the file stores of a series: float64 seconds, int64 steps, float64 values."""
    return (np.asarray(series.timestamps_ms, dtype=np.int64) / 1000.0,
            np.asarray(series.steps, dtype=np.int64),
            np.asarray(series.values, dtype=np.float64))


def _define(dataset: netCDF4.Dataset,
            pending: _Pending) -> tuple[netCDF4.Variable, netCDF4.Variable, netCDF4.Variable]:
    """The dimension and the time, step and value variables of one series, with attributes."""
    name, dim = pending.name, f"{pending.name}_obs"
    dataset.createDimension(dim, pending.length)
    time = dataset.createVariable(f"{name}_time", "f8", (dim,), fill_value=False)
    time.setncatts(TIME_ATTRIBUTES)
    step = dataset.createVariable(f"{name}_step", "i8", (dim,), fill_value=False)
    step.setncatts(STEP_ATTRIBUTES)
    value = dataset.createVariable(name, "f8", (dim,), fill_value=False)
    _set_text_attributes(value, pending.attributes)
    return time, step, value
