"""End to end: MLflow -> ``exporters.export`` / ``mlflow-prov export`` -> NetCDF, CSV and
RO-Crates -> validators and getters, compared with ``MlflowClient.get_metric_history``."""

from __future__ import annotations

import json
import math
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow_runs import client_for, log_series, new_run
from validators import cf_issues, seed_rocrate_cache, validate_crate

from exporters import ExportOptions, export, getters
from exporters.cli import main

# The collector undoes the SQL stores' inf -> +/-DBL_MAX substitution (collect._decode_value),
# so the files hold +/-inf where get_metric_history says +/-1.7976931348623157e308.
DBL_MAX = sys.float_info.max
SERIES = {
    "train/loss": [0.9, math.nan, 0.4, math.inf, -math.inf, 0.1 + 0.2, -0.0],
    "val/accuracy": [0.5, 0.75],
    "system/cpu_utilization_percentage": [10.0, 20.5, 30.25],
    "system/carbon/energy_consumed_kwh": [0.001, 0.004],
    "système/ü": [1.0],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """Two finished runs of one experiment in a sqlite store, with an artifact each."""
    tmp = tmp_path_factory.mktemp("e2e")
    client = client_for(tmp)
    for n in range(2):
        run_id = new_run(client, "e2e", tmp, params={"lr": str(0.1 * (n + 1))},
                         run_name=f"run-{n}")
        for key, values in SERIES.items():
            log_series(client, run_id, key, values)
        note = tmp / f"note{n}.txt"
        note.write_text(f"run {n}\n")
        client.log_artifact(run_id, str(note))
        client.set_terminated(run_id)
    return client, tmp


def _expected(history) -> np.ndarray:
    values = np.array([m.value for m in history], dtype=np.float64)
    values[values == DBL_MAX] = math.inf
    values[values == -DBL_MAX] = -math.inf
    return values


def _assert_series_match(client, doc) -> int:
    """Every metric of every run in ``doc`` equals MLflow's history; returns the count."""
    metrics = getters.list_metrics(doc)
    for row in metrics.itertuples():
        history = client.get_metric_history(row.run_id, row.key)
        series = getters.get_metric(doc, row.key, row.context, run_id=row.run_id)
        assert series["value"].dtype == np.float64
        np.testing.assert_array_equal(series["value"].to_numpy(), _expected(history))
        np.testing.assert_array_equal(series["step"].to_numpy(), [m.step for m in history])
        np.testing.assert_array_equal(series["timestamp"].to_numpy(),
                                      [m.timestamp for m in history])
    return len(metrics)


def test_export_netcdf_is_cf_clean_and_exact(store, tmp_path):
    client, _ = store
    result = export("e2e", tmp_path, tracking_uri=client.tracking_uri,
                    options=ExportOptions(formats=("prov-json", "netcdf")))
    nc_files = sorted(result.experiment_dir.glob("run-*/metrics.nc"))
    assert len(nc_files) == 2
    for path in nc_files:
        issues = cf_issues(path)
        assert issues["high"] == [] and issues["medium"] == [], issues
    for prov_json in result.experiment_dir.glob("run-*/prov.json"):
        assert _assert_series_match(client, getters.load(prov_json)) == len(SERIES)
    experiment_doc = getters.load(result.experiment_dir / "experiment.prov.json")
    assert _assert_series_match(client, experiment_doc) == 2 * len(SERIES)
    assert set(getters.list_runs(experiment_doc)["name"]) == {"run-0", "run-1"}


def test_export_csv_is_exact(store, tmp_path):
    client, _ = store
    result = export("e2e", tmp_path, tracking_uri=client.tracking_uri,
                    options=ExportOptions(formats=("prov-json",), metrics_format="csv"))
    assert len(list(result.experiment_dir.glob("run-*/metrics/*.csv"))) == 2 * len(SERIES)
    for prov_json in result.experiment_dir.glob("run-*/prov.json"):
        assert _assert_series_match(client, getters.load(prov_json)) == len(SERIES)


@pytest.mark.slow  # Graphviz subprocesses, roc-validator on three crates
def test_cli_export_netcdf_rocrate_validates(store, tmp_path):
    client, _ = store
    cache = seed_rocrate_cache(tmp_path)
    out = tmp_path / "out"
    outcome = CliRunner().invoke(main, [
        "export", "--tracking-uri", client.tracking_uri, "--experiment", "e2e",
        "--out", str(out), "--format", "prov-json,svg,netcdf,rocrate",
        "--max-artifact-bytes", "4"])
    assert outcome.exit_code == 0, outcome.output
    crates = sorted((out / "e2e").glob("*.crate.zip"))
    assert "experiment.crate.zip" in {c.name for c in crates} and len(crates) == 3
    for crate in crates:
        report = validate_crate(crate, cache, "REQUIRED")
        assert report.passed, (crate.name, report.issues)
        with zipfile.ZipFile(crate) as archive:
            graph = json.loads(archive.read("ro-crate-metadata.json"))["@graph"]
        files = [e for e in graph if "File" in _types(e) and e["@id"] != "ro-crate-metadata.json"]
        referenced = [f for f in files if f["@id"].startswith("file://")]
        assert referenced, "with --max-artifact-bytes 4 some artifact must be referenced by URI"
        assert all(len(f.get("sha256", "")) == 64 for f in files), [
            f["@id"] for f in files if len(f.get("sha256", "")) != 64]


def _types(entity: dict) -> list[str]:
    kinds = entity.get("@type", [])
    return [kinds] if isinstance(kinds, str) else kinds


def test_cli_crate_as_folder_holds_metrics_and_prov(store, tmp_path):
    client, _ = store
    out = tmp_path / "out"
    outcome = CliRunner().invoke(main, [
        "export", "--tracking-uri", client.tracking_uri, "--experiment", "e2e",
        "--out", str(out), "--format", "prov-json,rocrate", "--crate-as-folder"])
    assert outcome.exit_code == 0, outcome.output
    folders = sorted((out / "e2e").glob("run-*.crate"))
    assert len(folders) == 2
    for folder in folders:
        assert (folder / "metrics.nc").is_file() and (folder / "prov.json").is_file()
        doc = getters.load(folder / "prov.json")
        assert _assert_series_match(client, doc) == len(SERIES)
    experiment_crate = out / "e2e" / "experiment.crate"
    assert len(list(experiment_crate.glob("run-*/metrics.nc"))) == 2
    assert (experiment_crate / "experiment.prov.json").is_file()
