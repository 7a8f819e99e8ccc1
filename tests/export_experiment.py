"""A real experiment built with stock MLflow calls, covering what the PROV export must show.

Nested runs, datasets with contexts, an artifact written by one run and used as the dataset
source of another, a logged model, NaN and inf values, unicode and slash keys, an overwritten
tag, a secret-looking param, a failed run and a deleted run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

EXPERIMENT = "demo/ëxp ../x"


@dataclass(frozen=True)
class SampleExperiment:
    """Ids of the runs the tests assert on."""

    tracking_uri: str
    name: str
    experiment_id: str
    parent: str
    producer: str
    consumer: str
    failed: str
    deleted: str
    model_id: str
    artifact_path: str


def build(tracking_uri: str, workdir: Path) -> SampleExperiment:
    """Log the sample experiment into ``tracking_uri`` through the fluent API and client."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return _build(tracking_uri, workdir)
    finally:
        mlflow.set_tracking_uri(previous)


def _build(tracking_uri: str, workdir: Path) -> SampleExperiment:
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(workdir / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    csv = workdir / "features.csv"
    frame.to_csv(csv, index=False)
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="producer", nested=True) as producer:
            mlflow.log_params({"lr": "0.01", "api_token": "abc123", "optimizer/β": "adam"})
            mlflow.log_input(mlflow.data.from_pandas(frame, name="raw"), context="training")
            for step, value in enumerate([1.0, math.nan, 0.5, math.inf]):
                mlflow.log_metric("train/loss", value, step=step)
            mlflow.log_metric("val/accuracy", 0.8, step=3)
            mlflow.log_metric("métrique/ü", -math.inf, step=0)
            mlflow.log_artifact(str(csv), artifact_path="data")
            mlflow.set_tag("stage", "draft")
            mlflow.set_tag("stage", "final")
            model = mlflow.initialize_logged_model(name="clf", params={"depth": "3"})
            mlflow.log_metric("train/loss", 0.25, step=4, model_id=model.model_id)
        artifact_path = "data/features.csv"
        source_uri = f"{producer.info.artifact_uri}/{artifact_path}"
        with mlflow.start_run(run_name="consumer", nested=True) as consumer:
            dataset = mlflow.data.from_pandas(pd.read_csv(csv), source=source_uri,
                                              name="features")
            mlflow.log_input(dataset, context="train")
            mlflow.log_param("batch_size", "32")
            mlflow.log_metric("test/f1", 0.7, step=0)
            (workdir / "report.txt").write_text("consumer output\n", encoding="utf-8")
            mlflow.log_artifact(str(workdir / "report.txt"))
    with mlflow.start_run(run_name="failed") as failed:
        mlflow.log_param("lr", "10")
    client.set_terminated(failed.info.run_id, status="FAILED")
    with mlflow.start_run(run_name="deleted") as deleted:
        mlflow.log_metric("loss", 1.0)
    client.delete_run(deleted.info.run_id)
    return SampleExperiment(
        tracking_uri=tracking_uri, name=EXPERIMENT, experiment_id=experiment_id,
        parent=parent.info.run_id, producer=producer.info.run_id,
        consumer=consumer.info.run_id, failed=failed.info.run_id,
        deleted=deleted.info.run_id, model_id=model.model_id, artifact_path=artifact_path)
