"""NetCDF and CSV metric sinks against real MLflow runs: exact read-back, CF compliance."""

from __future__ import annotations

import math
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
from mlflow_runs import client_for, log_series, metric_series, new_run, run_record
from validators import cf_issues

from exporters.records import MetricSeries
from exporters.writers.csv_metrics import CsvSink, safe_stem
from exporters.writers.netcdf import NetCDFSink, sanitize_name, unit_for_key

SPECIAL = [1.5, math.nan, math.inf, -math.inf, 0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308,
           9.969209968386869e36]
KEYS = {
    "loss": SPECIAL,
    "train/accuracy": [0.5, 0.75, 0.875],
    "system/cpu_utilization_percentage": [12.5, 50.0],
    "system/system_memory_usage_megabytes": [1024.0, 2048.5],
    "system/gpu_0_power_usage_watts": [150.0],
    "system/carbon/energy_consumed_kwh": [0.001, 0.002],
    "métrique ü/ñ": [3.0, 2.0],
    "1st-score": [1.0],
}


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory: pytest.TempPathFactory):
    """One MLflow run holding awkward keys and every non-finite value MLflow can store."""
    tmp = tmp_path_factory.mktemp("mlflow")
    client = client_for(tmp)
    run_id = new_run(client, "metrics", tmp)
    for key, values in KEYS.items():
        steps = [0, 0, 1, 1, 2, 3, 4, 4, 5][:len(values)]  # repeated steps are legal
        log_series(client, run_id, key, values, steps)
    client.set_terminated(run_id)
    return client, run_id


def _export(sink_class, client, run_id, out: Path):
    sink = sink_class(run_record(client, run_id), out)
    locations = {series.key: sink.add(series) for series in metric_series(client, run_id)}
    return locations, sink.close()


def _read_netcdf(path: Path, variable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        var = ds[variable]
        time_name, step_name = var.coordinates.split()
        return ds[step_name][:], np.rint(ds[time_name][:] * 1000).astype(np.int64), var[:]


def test_netcdf_series_equal_metric_history(mlflow_run, tmp_path):
    client, run_id = mlflow_run
    locations, files = _export(NetCDFSink, client, run_id, tmp_path)
    assert files == [tmp_path / "metrics.nc"]
    for key in KEYS:
        history = client.get_metric_history(run_id, key)
        steps, times, values = _read_netcdf(files[0], locations[key].variable)
        assert values.dtype == np.float64
        np.testing.assert_array_equal(values, [m.value for m in history], strict=True)
        assert np.array_equal(np.signbit(values), np.signbit([m.value for m in history]))
        np.testing.assert_array_equal(steps, [m.step for m in history])
        np.testing.assert_array_equal(times, [m.timestamp for m in history])


def test_netcdf_passes_cf_1_11(mlflow_run, tmp_path):
    client, run_id = mlflow_run
    _, files = _export(NetCDFSink, client, run_id, tmp_path)
    issues = cf_issues(files[0])
    assert issues["high"] == [] and issues["medium"] == [], issues


def test_netcdf_attributes_keep_keys_units_and_run(mlflow_run, tmp_path):
    client, run_id = mlflow_run
    locations, files = _export(NetCDFSink, client, run_id, tmp_path)
    with netCDF4.Dataset(files[0]) as ds:
        assert ds.Conventions == "CF-1.11"
        assert ds.mlflow_run_id == run_id and ds.mlflow_experiment_id
        assert len(ds.groups) == 0
        by_key = {ds[v].mlflow_key: ds[v] for v in ds.variables if "mlflow_key" in ds[v].ncattrs()}
        assert set(by_key) == set(KEYS)
        assert by_key["métrique ü/ñ"].name == locations["métrique ü/ñ"].variable
        assert by_key["system/cpu_utilization_percentage"].units == "percent"
        assert by_key["system/system_memory_usage_megabytes"].units == "Mbyte"
        assert by_key["system/carbon/energy_consumed_kwh"].source == "carbon"
        assert by_key["system/gpu_0_power_usage_watts"].source == "system"
        assert "units" not in by_key["loss"].ncattrs()
        time = ds[f"{locations['loss'].variable}_time"]
        assert time.dtype == np.float64 and time.units == "seconds since 1970-01-01 00:00:00"
        assert time.standard_name == "time" and time.calendar == "standard"


def _series(key: str, values, context: str | None = None) -> MetricSeries:
    n = len(values)
    return MetricSeries(run_id="r", key=key, context=context, source="user",
                        steps=np.arange(n, dtype=np.int64),
                        timestamps_ms=np.arange(n, dtype=np.int64) + 1_700_000_000_000,
                        values=np.asarray(values, dtype=np.float64))


def test_netcdf_preserves_true_infinities_and_same_key_in_two_contexts(tmp_path, mlflow_run):
    client, run_id = mlflow_run
    sink = NetCDFSink(run_record(client, run_id), tmp_path)
    first = sink.add(_series("loss", [math.inf, -math.inf, math.nan], "training"))
    second = sink.add(_series("loss", [1.0], "validation"))
    path = sink.close()[0]
    assert first.variable != second.variable
    values = _read_netcdf(path, first.variable)[2]
    assert values[0] == math.inf and values[1] == -math.inf and math.isnan(values[2])
    with netCDF4.Dataset(path) as ds:
        assert ds[second.variable].context == "validation"


def test_netcdf_names_never_clash_with_coordinates_of_other_metrics(tmp_path, mlflow_run):
    client, run_id = mlflow_run
    sink = NetCDFSink(run_record(client, run_id), tmp_path)
    keys = ["loss", "loss_time", "loss/step", "loss_obs", "empty"]
    locations = [sink.add(_series(key, [float(n)] * (n + 1) if key != "empty" else []))
                 for n, key in enumerate(keys)]
    path = sink.close()[0]
    assert len({loc.variable for loc in locations}) == len(keys)
    with netCDF4.Dataset(path) as ds:
        assert [ds[loc.variable].mlflow_key for loc in locations] == keys
        assert [ds[loc.variable].size for loc in locations] == [1, 2, 3, 4, 0]


def test_csv_series_equal_metric_history(mlflow_run, tmp_path):
    client, run_id = mlflow_run
    locations, files = _export(CsvSink, client, run_id, tmp_path)
    assert len(files) == len(KEYS) and len({f.name for f in files}) == len(KEYS)
    for key in KEYS:
        path = tmp_path / locations[key].file
        assert path in files
        frame = pd.read_csv(path)
        assert list(frame.columns) == ["step", "timestamp", "value"]
        history = client.get_metric_history(run_id, key)
        np.testing.assert_array_equal(frame["value"].to_numpy(), [m.value for m in history])
        np.testing.assert_array_equal(frame["step"].to_numpy(), [m.step for m in history])
        np.testing.assert_array_equal(frame["timestamp"].to_numpy(),
                                      [m.timestamp for m in history])


@pytest.mark.parametrize(("key", "expected"), [
    ("loss", "loss"), ("train/loss", "train_loss"), ("1x", "m_1x"), ("_x", "m__x"),
    ("ü", "m__")])
def test_sanitize_name(key, expected):
    assert sanitize_name(key) == expected


@pytest.mark.parametrize(("key", "expected"), [
    ("../etc/passwd", "_etc_passwd"), ("a/b c", "a_b_c"), (".hidden", "hidden"), ("", "metric")])
def test_safe_stem(key, expected):
    assert safe_stem(key) == expected


@pytest.mark.parametrize(("key", "udunits"), [
    ("system/disk_usage_megabytes", "Mbyte"), ("system/gpu_0_temperature_celsius", "degC"),
    ("system/carbon/emissions_kg", "kg"), ("system/carbon/energy_joules", "J"), ("loss", None)])
def test_unit_for_key(key, udunits):
    unit = unit_for_key(key)
    assert (unit.udunits if unit else None) == udunits
