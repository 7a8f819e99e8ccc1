"""Getters on yProv4ML's provenance, generations v0-v3, from tests/data/yprov4ml/samples/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
from validators import YPROV4ML_SAMPLES

from exporters import getters
from exporters.getters import ProvenanceReadError

V0 = "dataset_v0-distributed_provgraph_3B.json"
V1 = "dataset_v1-inline_MetricsType.TXT_False_None_0.json"
V2 = "dataset_v2-contexts_prov_MetricsType.NETCDF_False_GR0_0.json"
V3 = "v3_demo_0/prov_demo_GR0_0.json"
SAMPLES = {V0: "yprov4ml-v0", V1: "yprov4ml-v1", V2: "yprov4ml-v2", V3: "yprov4ml-v3"}


def sample(name: str) -> Path:
    return YPROV4ML_SAMPLES / name


@pytest.mark.parametrize(("name", "generation"), SAMPLES.items())
def test_every_sample_loads_into_dataframes(name, generation):
    doc = getters.load(sample(name))
    assert doc.generation == generation
    runs = getters.list_runs(doc)
    assert len(runs) == 1 and runs.loc[0, "name"]
    metrics = getters.list_metrics(doc)
    assert list(metrics.columns[:5]) == ["key", "context", "source", "count", "file"]
    assert len(metrics) >= 2
    assert not getters.get_params(doc).empty
    assert len(getters.get_lineage(doc)) > 0
    assert list(getters.get_artifacts(doc).columns) == ["run_id", "path", "size", "sha256",
                                                        "uri", "kind"]


def test_v0_inline_series_read_exactly():
    path = sample(V0)
    raw = json.loads(path.read_text())["entity"]["Loss_Context.TRAINING"]
    series = getters.get_metric(getters.load(path), "loss", context="training")
    assert list(series.columns) == ["step", "timestamp", "value", "epoch"]
    assert series["value"].tolist() == json.loads(raw["prov-ml:metric_value_list"])
    assert series["timestamp"].tolist() == json.loads(raw["prov-ml:metric_timestamp_list"])
    assert series["epoch"].tolist() == series["step"].tolist()
    assert series["value"].dtype == np.float64


def test_v1_truncated_inline_list_is_an_error_naming_file_and_reason():
    doc = getters.load(sample(V1))
    with pytest.raises(ProvenanceReadError, match="truncated") as caught:
        getters.get_metric(doc, "MSE_train", "Context.TRAINING")
    assert caught.value.path == doc.path
    assert "MSE_train_Context.TRAINING_GR0.txt is missing" in str(caught.value)


def test_v1_untruncated_inline_list_reads_with_numpy_spacing():
    doc = getters.load(sample(V1))
    series = getters.get_metric(doc, "MSE_test")
    metrics = getters.list_metrics(doc).set_index("key")
    assert len(series) == metrics.loc["MSE_test", "count"] > 100
    assert series["value"].iloc[-1] == 0.06334709


def test_v1_truncated_list_falls_back_to_its_text_file(tmp_path):
    copy = tmp_path / V1
    shutil.copy(sample(V1), copy)
    txt = tmp_path / "prov/MetricsType.TXT_False_None_0/artifacts/metrics"
    txt.mkdir(parents=True)
    (txt / "MSE_train_Context.TRAINING_GR0.txt").write_text(
        "MSE_train,Context.TRAINING,custom_metric\n0,0.5,1749030903315\n1,0.25,1749030903322\n")
    series = getters.get_metric(getters.load(copy), "MSE_train")
    assert series.to_dict("list") == {"step": [0, 1], "timestamp": [1749030903315, 1749030903322],
                                      "value": [0.5, 0.25], "epoch": [0, 1]}


def test_v2_missing_netcdf_is_an_error_and_present_one_is_read(tmp_path):
    doc = getters.load(sample(V2))
    with pytest.raises(ProvenanceReadError, match="missing") as caught:
        getters.get_metric(doc, "MSE", context="validation")
    assert caught.value.path.name == "MSE_Context.VALIDATION_GR0.nc"
    copy = tmp_path / V2
    shutil.copy(sample(V2), copy)
    folder = tmp_path / "prov/MetricsType.NETCDF_False_0/metrics"
    folder.mkdir(parents=True)
    with netCDF4.Dataset(folder / "MSE_Context.VALIDATION_GR0.nc", "w") as ds:  # its layout
        ds.createDimension("time", None)
        ds.createVariable("epochs", "i4", ("time",))[:] = [0, 1]
        ds.createVariable("values", "f4", ("time",))[:] = [0.5, 0.125]
        ds.createVariable("timestamps", "i8", ("time",))[:] = [1756650122341, 1756650122400]
    series = getters.get_metric(getters.load(copy), "MSE", context="VALIDATION")
    assert series["value"].tolist() == [0.5, 0.125]
    assert series["timestamp"].tolist() == [1756650122341, 1756650122400]


def test_v3_csv_series_and_context_lookup():
    path = sample(V3)
    doc = getters.load(path)
    with pytest.raises(KeyError, match="ambiguous"):
        getters.get_metric(doc, "Loss")
    series = getters.get_metric(doc, "Loss", context="training")
    csv = pd.read_csv(path.parent / "metrics_GR0/Loss_TRAINING_None_GR0.csv")
    assert series["value"].tolist() == csv["value"].tolist()
    assert series["step"].tolist() == csv["epoch"].tolist()
    assert series["timestamp"].tolist() == csv["timestep"].tolist()
    params = getters.get_params(doc).set_index("name")
    assert params.loc["lr", "value"] == "0.001" and params.loc["lr", "context"] == "TRAINING"
    artifacts = getters.get_artifacts(doc)
    assert "prov/demo_0/artifacts_GR0/notes.txt" in artifacts["path"].tolist()


def test_inline_lists_are_never_evaluated(tmp_path):
    data = json.loads(sample(V0).read_text())
    data["entity"]["Loss_Context.TRAINING"]["prov-ml:metric_value_list"] = \
        "[__import__('os').remove('x')]"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProvenanceReadError, match="non-number"):
        getters.get_metric(getters.load(path), "loss")


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not readable as JSON"),
    ('{"hello": 1}', "not a PROV-JSON document"),
    ('{"prefix": {"x": "urn:x"}, "entity": {}}', "neither mlflow-prov's nor yProv4ML's"),
])
def test_unreadable_documents_name_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "doc.json"
    path.write_text(content)
    with pytest.raises(ProvenanceReadError, match=reason) as caught:
        getters.load(path)
    assert caught.value.path == path and str(path) in str(caught.value)


def test_missing_document(tmp_path):
    with pytest.raises(ProvenanceReadError, match="file not found"):
        getters.load(tmp_path / "absent.json")
