"""The OpenLineage event builder shared by the live emitter and ``mlflow-prov openlineage``:
the mappings a reader of the events relies on, on values MLflow can hold."""

from __future__ import annotations

import json
import math
import uuid

from openlineage.client.serde import Serde

from mlflow_prov.openlineage_events import (
    LineageDataset,
    MetricFacts,
    RunFacts,
    dataset_name,
    openlineage_run_id,
    run_events,
    schema_fields,
)


def test_run_ids_become_the_uuid_of_the_same_bits_or_a_stable_name_based_one():
    assert openlineage_run_id("0" * 31 + "1") == "00000000-0000-0000-0000-000000000001"
    odd = openlineage_run_id("not-hex")
    assert uuid.UUID(odd).version == 5 and odd == openlineage_run_id("not-hex")


def test_schemas_mlflow_records_become_columns_and_anything_else_none():
    colspec = json.dumps({"mlflow_colspec": [{"type": "double", "name": "x"},
                                             {"type": {"type": "array"}, "name": "y"}]})
    assert schema_fields(colspec) == (("x", "double"), ("y", "array"))
    tensors = json.dumps({"mlflow_tensorspec": [{"type": "float32"}]})
    assert schema_fields(tensors) == (("column_0", "float32"),)
    for unreadable in (None, "", "{not json", '{"mlflow_colspec": 3}'):
        assert schema_fields(unreadable) == ()


def test_a_dataset_from_a_run_artifact_is_named_as_that_artifact():
    source = json.dumps({"uri": "runs:/abc/data/train.csv"})
    assert dataset_name(source, "train") == "runs/abc/artifacts/data/train.csv"
    assert dataset_name(json.dumps({"uri": "s3://b/k"}), "train") == "datasets/train"
    assert dataset_name("not json", "train") == "datasets/train"


def test_a_running_run_has_only_start_and_infinite_metrics_are_named():
    facts = RunFacts(run_id="a" * 32, experiment_name="e", status="RUNNING", start_ms=0,
                     inputs=(LineageDataset("datasets/d", "digest"),))
    (start,) = run_events(facts)
    assert start.eventType.value == "START" and start.eventTime == "1970-01-01T00:00:00.000Z"
    ended = RunFacts(run_id="a" * 32, experiment_name="e", status="KILLED", start_ms=0,
                     metrics=(MetricFacts("up", math.inf, min=-math.inf, max=math.nan),))
    abort = json.loads(Serde.to_json(run_events(ended)[-1]))
    assert abort["eventType"] == "ABORT"
    assert abort["run"]["facets"]["mlflowprov_metrics"]["metrics"] == {
        "up": {"last": "Infinity", "min": "-Infinity", "max": "NaN"}}
