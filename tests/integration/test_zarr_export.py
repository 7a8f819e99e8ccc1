"""Zarr metric stores end to end: MLflow -> ``mlflow-prov export --metrics-format zarr`` ->
the getters read back MLflow's exact history; the store mirrors ``metrics.nc`` variable for
variable and attribute for attribute; an RO-Crate carries it; ``--compress`` zips run folders."""

from __future__ import annotations

import json
import math
import sys
import zipfile

import netCDF4
import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from mlflow_runs import client_for, log_series, new_run
from validators import seed_rocrate_cache, validate_crate

from exporters import getters
from exporters.cli import main

DBL_MAX = sys.float_info.max
SERIES = {
    "train/loss": [0.9, math.nan, 0.4, math.inf, -math.inf, 0.1 + 0.2],
    "val/accuracy": [0.5, 0.75],
    "system/cpu_utilization_percentage": [10.0, 20.5, 30.25],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One finished run in a sqlite store."""
    tmp = tmp_path_factory.mktemp("zarr")
    client = client_for(tmp)
    run_id = new_run(client, "zarr-e2e", tmp, params={"lr": "0.1"}, run_name="run-z")
    for key, values in SERIES.items():
        log_series(client, run_id, key, values)
    client.set_terminated(run_id)
    return client, run_id


def _export(client, out, *extra: str) -> None:
    outcome = CliRunner().invoke(main, ["export", "--tracking-uri", client.tracking_uri,
                                        "--experiment", "zarr-e2e", "--out", str(out), *extra])
    assert outcome.exit_code == 0, outcome.output


def test_zarr_store_reads_back_exactly_and_mirrors_netcdf(store, tmp_path):
    client, run_id = store
    _export(client, tmp_path / "z", "--format", "prov-json", "--metrics-format", "zarr")
    _export(client, tmp_path / "n", "--format", "prov-json,netcdf")
    run_dir = tmp_path / "z" / "zarr-e2e" / f"run-{run_id}"
    doc = getters.load(run_dir / "prov.json")
    metrics = getters.list_metrics(doc)
    assert set(metrics["file"].map(lambda f: f.rsplit("/", 1)[-1])) == {"metrics.zarr"}
    for row in metrics.itertuples():
        history = client.get_metric_history(run_id, row.key)
        expected = np.array([m.value for m in history])
        expected[expected == DBL_MAX], expected[expected == -DBL_MAX] = math.inf, -math.inf
        series = getters.get_metric(doc, row.key, row.context)
        np.testing.assert_array_equal(series["value"].to_numpy(), expected)
        assert series["timestamp"].tolist() == [m.timestamp for m in history]
        assert series["step"].tolist() == [m.step for m in history]

    group = zarr.open_group(str(run_dir / "metrics.zarr"), mode="r")
    assert group.metadata.zarr_format == 3
    with netCDF4.Dataset(tmp_path / "n" / "zarr-e2e" / f"run-{run_id}" / "metrics.nc") as nc:
        assert set(group.array_keys()) == set(nc.variables)
        skip = {"history"}  # the time each file was written
        assert {k: v for k, v in group.attrs.items() if k not in skip} == \
               {k: nc.getncattr(k) for k in nc.ncattrs() if k not in skip}
        for name in nc.variables:
            variable = nc[name]
            assert dict(group[name].attrs) == {k: variable.getncattr(k)
                                               for k in variable.ncattrs()}
            assert group[name].metadata.dimension_names == variable.dimensions
            np.testing.assert_array_equal(group[name][:], variable[:])


@pytest.mark.slow  # roc-validator
def test_zarr_as_format_goes_into_a_valid_crate_and_compress_zips_runs(store, tmp_path):
    client, run_id = store
    out = tmp_path / "out"
    _export(client, out, "--format", "prov-json,zarr,rocrate", "--compress")
    experiment = out / "zarr-e2e"
    crate = experiment / f"run-{run_id}.crate.zip"
    report = validate_crate(crate, seed_rocrate_cache(tmp_path), "REQUIRED")
    assert report.passed, report.issues
    with zipfile.ZipFile(crate) as archive:
        names = set(archive.namelist())
        graph = json.loads(archive.read("ro-crate-metadata.json"))["@graph"]
    assert "metrics.zarr/zarr.json" in names
    assert "metrics.zarr/zarr.json" in {e["@id"] for e in graph}
    with zipfile.ZipFile(experiment / f"run-{run_id}.zip") as archive:
        names = set(archive.namelist())
    assert f"run-{run_id}/prov.json" in names
    assert f"run-{run_id}/metrics.zarr/zarr.json" in names
