"""Two experiments linked by lineage, written through MLflow's fluent API.

``features/prepare-data`` writes ``data/features.csv`` (and changes a tag: warmup → main);
``training/train-model`` uses that artifact as its training dataset and logs a model, which
``training/evaluate`` (a child of train-model) uses; ``scoring/score-copy`` uses a copy of
``data/features.csv`` kept outside MLflow, a dataset linked to its producer only by its
SHA-256 digest (the same bytes, so the same dataset). Used by the provenance-page tests and
runnable as a script against a server: ``python lineage_scenario.py http://127.0.0.1:PORT``
prints the ids as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import mlflow

import mlflow_prov

SECRET = "hunter2-not-for-readers"
FEATURES = "x,y\n1,2\n3,4\n5,6\n"


def write(tracking_uri: str) -> dict[str, str]:
    """Write the scenario; returns the run, model and experiment ids by role."""
    mlflow.set_tracking_uri(tracking_uri)
    features = mlflow.set_experiment("features").experiment_id
    with mlflow.start_run(run_name="prepare-data") as producer:
        mlflow.log_param("rows", 3)
        mlflow.set_tag("phase", "warmup")
        mlflow.set_tag("phase", "main")
        mlflow.set_tag("db_password", SECRET)
        mlflow.log_text(FEATURES, "data/features.csv")
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
    scoring = mlflow.set_experiment("scoring").experiment_id
    with mlflow.start_run(run_name="score-copy") as copy_user:
        copy = _sha256_linked_copy()
    return {"features": features, "training": training, "scoring": scoring,
            "producer": producer.info.run_id, "consumer": consumer.info.run_id,
            "child": child.info.run_id, "model": model.model_id,
            "copy_user": copy_user.info.run_id, "digest": copy.digest}


def _sha256_linked_copy():
    """Log, as the active run's input, a copy of the producer's features under another name
    and a local path: only its digest (SHA-256 of the bytes) ties it to the producer."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    from mlflow_prov.inputs import file_digest

    path = Path(tempfile.mkdtemp(prefix="features-copy-")) / "features-copy.csv"
    path.write_text(FEATURES)
    dataset = MetaDataset(source=LocalArtifactDatasetSource(str(path)),  # type: ignore[abstract]
                          name="features-copy.csv", digest=file_digest(path))
    mlflow.log_input(dataset, context="evaluation")
    return dataset


if __name__ == "__main__":
    print(json.dumps(write(sys.argv[1])))
