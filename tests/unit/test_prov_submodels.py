"""The PROV sub-models of a run share no mutable state: any order of ``MODELS`` gives the
same document, lineage across runs included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from exporters import prov_model
from exporters.lineage.prov import ExportLineage
from exporters.records import ArtifactRecord, DatasetRecord, ExperimentRecord, RunRecord

START = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = "file:///data/prepare/artifacts/features.csv"


def _run(run_id: str, **fields) -> RunRecord:
    return RunRecord(run_id=run_id, name=run_id, experiment_id="1", status="FINISHED",
                     lifecycle_stage="active", start_time=START, end_time=START, user="ann",
                     artifact_uri=f"file:///data/{run_id}/artifacts", **fields)


PRODUCER = _run("prepare", artifacts=(ArtifactRecord("features.csv", 3, "f" * 64, FEATURES),))
CONSUMER = _run("train", datasets=(DatasetRecord(
    "features", "d1", "local", json.dumps({"uri": FEATURES}), context="training"),),
    artifacts=(ArtifactRecord("model.bin", 5, "a" * 64,
                              "file:///data/train/artifacts/model.bin"),))
EXPERIMENT = ExperimentRecord("1", "lineage", "file:///data", "active", {}, START, START,
                              "prov:///data", True)


def _document(models: tuple) -> str:
    index = ExportLineage.build([PRODUCER, CONSUMER])
    doc = prov_model.new_document()
    bundle = doc.bundle(prov_model.bundle_id_of(CONSUMER.run_id))
    scope = prov_model.RunScope(bundle=bundle, run=CONSUMER, experiment=EXPERIMENT, index=index)
    for model in models:
        model(scope)
    return doc.get_provn()


@pytest.mark.parametrize("order", ["reversed", "lineage first"])
def test_reordering_the_sub_models_keeps_every_relation(order: str) -> None:
    models = prov_model.MODELS
    reordered = (tuple(reversed(models)) if order == "reversed"
                 else (prov_model.add_lineage, *(m for m in models
                                                 if m is not prov_model.add_lineage)))
    expected = _document(models)
    assert "wasInformedBy(mlflow:run.train, mlflow:run.prepare)" in expected
    assert sorted(_document(reordered).splitlines()) == sorted(expected.splitlines())
