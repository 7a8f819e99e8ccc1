"""``mlflow-prov import-yprov4ml`` over the compatibility corpus (tests/data/yprov4ml): every
generation becomes a run with its params, full series, times and user; a re-import adds
nothing; the source digest is in a run tag and in the journal; imported runs export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from store_templates import prov_store

from exporters import ExportOptions, export, getters
from exporters.cli import main
from exporters.yprov4ml_import import file_digest
from mlflow_prov.journal import read_events
from mlflow_prov.vocabulary import YPROV4ML_GENERATION_TAG, YPROV4ML_SOURCE_DIGEST_TAG

CORPUS = Path(__file__).resolve().parents[1] / "data" / "yprov4ml"
DOCUMENTS = 7  # real v0, v1, v2, v3 and three generated documents


def run_import(uri: str, *args: str) -> str:
    outcome = CliRunner().invoke(main, ["import-yprov4ml", *args, "--tracking-uri", uri])
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def all_runs(uri: str) -> list:
    client = mlflow.MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    uri = prov_store(tmp_path_factory.mktemp("import") / "runs")
    output = run_import(uri, str(CORPUS))
    return uri, output


def test_every_generation_becomes_one_run(imported):
    uri, output = imported
    runs = all_runs(uri)
    assert len(runs) == DOCUMENTS
    assert {r.data.tags[YPROV4ML_GENERATION_TAG] for r in runs} == {
        "yprov4ml-v0", "yprov4ml-v1", "yprov4ml-v2", "yprov4ml-v3"}
    points = int(re.search(r"imported 7 run\(s\), (\d+) points", output).group(1))
    assert points == sum(len(mlflow.MlflowClient(uri).get_metric_history(r.info.run_id, k))
                         for r in runs for k in r.data.metrics)
    assert "points/s" in output


def test_series_params_times_and_user_match_the_document(imported):
    uri, _ = imported
    client = mlflow.MlflowClient(uri)
    source = CORPUS / "samples" / "dataset_v0-distributed_provgraph_3B.json"
    (run,) = [r for r in all_runs(uri)
              if r.data.tags[YPROV4ML_SOURCE_DIGEST_TAG] == file_digest(source)]
    doc = getters.load(source)
    expected = getters.get_metric(doc, "Loss_Context.TRAINING")
    history = client.get_metric_history(run.info.run_id, "train/loss")
    np.testing.assert_array_equal([m.value for m in history], expected["value"])
    assert [m.timestamp for m in history] == expected["timestamp"].tolist()
    assert [m.step for m in history] == expected["step"].tolist()
    info = getters.list_runs(doc).iloc[0]
    assert run.info.start_time == int(info["start_time"].timestamp() * 1000)
    assert run.info.end_time == int(info["end_time"].timestamp() * 1000)
    assert run.data.tags["mlflow.user"] == info["user"]
    params = getters.get_params(doc)
    assert run.data.params == {str(n): str(v) for n, v in zip(params["name"], params["value"],
                                                              strict=True)}
    listed = json.loads(Path(client.download_artifacts(run.info.run_id,
                                                       "yprov4ml/artifacts.json")).read_text())
    assert {a["path"] for a in listed} == set(getters.get_artifacts(doc)["path"])


def test_full_copies_and_contexts_and_refusals(imported):
    uri, output = imported
    client = mlflow.MlflowClient(uri)
    source = CORPUS / "generated" / "v1_full_copies" / "prov.json"
    (run,) = [r for r in all_runs(uri)
              if r.data.tags[YPROV4ML_SOURCE_DIGEST_TAG] == file_digest(source)]
    for name in ("MSE_txt", "MSE_semicolon", "MSE_nc", "MSE_zarr2", "MSE_zarr3"):
        assert len(client.get_metric_history(run.info.run_id, f"train/{name}")) == 1500
    assert "val/acc" in run.data.metrics
    assert "left out MSE_lost (Context.TRAINING): inline list of metric 'MSE_lost'" in output
    assert "left out MSE_list_txt (Context.TRAINING): per-step list values" in output


def test_reimport_creates_no_duplicates_and_the_digest_is_journaled(imported):
    uri, _ = imported
    before = {r.info.run_id for r in all_runs(uri)}
    output = run_import(uri, str(CORPUS / "samples" / "v3_demo_0" / "prov_demo_GR0_0.json"),
                        str(CORPUS))
    assert {r.info.run_id for r in all_runs(uri)} == before
    assert output.count("already imported as run") == DOCUMENTS + 1
    run = next(r for r in all_runs(uri) if r.data.tags[YPROV4ML_GENERATION_TAG] == "yprov4ml-v3")
    payloads = [json.dumps(e.payload) for e in read_events(uri, run_id=run.info.run_id)]
    assert any(run.data.tags[YPROV4ML_SOURCE_DIGEST_TAG] in p for p in payloads)


def test_imported_runs_export_like_any_other(imported, tmp_path):
    uri, _ = imported
    run = next(r for r in all_runs(uri) if r.data.tags[YPROV4ML_GENERATION_TAG] == "yprov4ml-v3")
    experiment = mlflow.MlflowClient(uri).get_experiment(run.info.experiment_id).name
    result = export(experiment, tmp_path, tracking_uri=uri, run_ids=[run.info.run_id],
                    options=ExportOptions(formats=("prov-json",), metrics_format="netcdf"))
    doc = getters.load(result.experiment_dir / f"run-{run.info.run_id}")
    assert set(getters.list_metrics(doc)["key"]) == set(run.data.metrics)


def test_a_file_that_is_not_yprov4ml_is_named_with_the_reason(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    output = run_import(prov_store(tmp_path / "runs"), str(bad))
    assert f"skipped {bad}: not a PROV-JSON document" in output
