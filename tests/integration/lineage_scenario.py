"""Two experiments linked by lineage, written through MLflow's fluent API.

``features/prepare-data`` writes ``data/features.csv`` (and changes a tag: warmup → main);
``training/train-model`` uses that artifact as its training dataset and logs a model, which
``training/evaluate`` (a child of train-model) uses. Used by the provenance-page tests and
runnable as a script against a server: ``python lineage_scenario.py http://127.0.0.1:PORT``
prints the ids as JSON.
"""

from __future__ import annotations

import json
import sys

import mlflow

import mlflow_prov

SECRET = "hunter2-not-for-readers"


def write(tracking_uri: str) -> dict[str, str]:
    """Write the scenario; returns the run, model and experiment ids by role."""
    mlflow.set_tracking_uri(tracking_uri)
    features = mlflow.set_experiment("features").experiment_id
    with mlflow.start_run(run_name="prepare-data") as producer:
        mlflow.log_param("rows", 3)
        mlflow.set_tag("phase", "warmup")
        mlflow.set_tag("phase", "main")
        mlflow.set_tag("db_password", SECRET)
        mlflow.log_text("x,y\n1,2\n3,4\n5,6\n", "data/features.csv")
        mlflow.log_metric("carbon/emissions_kgco2eq", 0.00012)
        mlflow.log_metric("carbon/energy_consumed_kwh", 0.0004)
    training = mlflow.set_experiment("training").experiment_id
    with mlflow.start_run(run_name="train-model") as consumer:
        mlflow_prov.log_run_artifact_as_dataset(
            f"runs:/{producer.info.run_id}/data/features.csv", context="training")
        mlflow.log_param("lr", 0.01)
        model = mlflow.initialize_logged_model(name="classifier")
        mlflow.finalize_logged_model(model.model_id, "READY")
        with mlflow.start_run(run_name="evaluate", nested=True) as child:
            mlflow_prov.log_model_input(f"models:/{model.model_id}")
            mlflow.set_tag("verdict", "pending")
            mlflow.set_tag("verdict", "accepted")
    return {"features": features, "training": training, "producer": producer.info.run_id,
            "consumer": consumer.info.run_id, "child": child.info.run_id,
            "model": model.model_id}


if __name__ == "__main__":
    print(json.dumps(write(sys.argv[1])))
