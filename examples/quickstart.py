"""Quickstart: train a tiny model with stock MLflow calls into a prov store, then export it.

The only mlflow-prov-specific line in the training part is the tracking URI. Run:

    python examples/quickstart.py [--store runs] [--out prov-export] [--epochs 20]

It prints where the store and the exported files are, and where to look next: the
interactive HTML view (opens from disk), the ``mlflow-prov ui`` command for the provenance
pages, and the ``mlflow ui`` command that browses the same store. Without Graphviz it says the
SVG picture was skipped and how to get it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from exporters import ExportOptions, export


def make_data(seed: int = 0, samples: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two Gaussian blobs, split 80/20: generated here, nothing is downloaded."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    features = rng.normal(size=(samples, 2)) + labels[:, None] * 1.5
    frame = pd.DataFrame({"x1": features[:, 0], "x2": features[:, 1], "label": labels * 1.0})
    split = int(samples * 0.8)
    return frame.iloc[:split], frame.iloc[split:]


def loss_and_accuracy(weights: np.ndarray, frame: pd.DataFrame) -> tuple[float, float]:
    inputs = np.c_[frame[["x1", "x2"]].to_numpy(), np.ones(len(frame))]
    probabilities = 1.0 / (1.0 + np.exp(-inputs @ weights))
    labels = frame["label"].to_numpy()
    eps = 1e-12
    loss = -np.mean(labels * np.log(probabilities + eps)
                    + (1 - labels) * np.log(1 - probabilities + eps))
    return float(loss), float(np.mean((probabilities > 0.5) == labels))


def gradient(weights: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    inputs = np.c_[frame[["x1", "x2"]].to_numpy(), np.ones(len(frame))]
    probabilities = 1.0 / (1.0 + np.exp(-inputs @ weights))
    return inputs.T @ (probabilities - frame["label"].to_numpy()) / len(frame)


def train(epochs: int, learning_rate: float) -> str:
    """A logistic regression trained with plain MLflow logging; returns the run id."""
    train_frame, val_frame = make_data()
    with mlflow.start_run(run_name="logistic-regression") as run:
        mlflow.log_params({"epochs": epochs, "learning_rate": learning_rate, "model": "logreg"})
        mlflow.log_input(mlflow.data.from_pandas(train_frame, name="blobs-train",
                                                 targets="label"), context="training")
        mlflow.log_input(mlflow.data.from_pandas(val_frame, name="blobs-val", targets="label"),
                         context="validation")
        weights = np.zeros(3)
        for epoch in range(epochs):
            weights -= learning_rate * gradient(weights, train_frame)
            train_loss, train_accuracy = loss_and_accuracy(weights, train_frame)
            val_loss, val_accuracy = loss_and_accuracy(weights, val_frame)
            mlflow.log_metrics({"train/loss": train_loss, "train/accuracy": train_accuracy,
                                "val/loss": val_loss, "val/accuracy": val_accuracy}, step=epoch)
        mlflow.log_dict({"weights": weights.tolist()}, "model/weights.json")
        mlflow.set_tag("stage", "trained")
    return run.info.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("runs"),
                        help="folder of the prov store (default: ./runs)")
    parser.add_argument("--out", type=Path, default=Path("prov-export"),
                        help="folder for the exported provenance (default: ./prov-export)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    args = parser.parse_args()

    store_uri = f"prov://{args.store.resolve()}"
    mlflow.set_tracking_uri(store_uri)
    mlflow.set_experiment("quickstart")
    run_id = train(args.epochs, args.learning_rate)

    formats = ["prov-json", "provn", "dot", "html", "netcdf", "rocrate"]
    has_graphviz = shutil.which("dot") is not None
    if has_graphviz:
        formats.insert(3, "svg")
    result = export("quickstart", args.out, tracking_uri=store_uri,
                    options=ExportOptions(formats=tuple(formats), show_progress=False))

    print(f"\ntrained run {run_id}")
    print(f"store:     {args.store.resolve()} (sqlite mlflow.db + artifacts/ + provenance journal)")
    print(f"exported:  {result.experiment_dir.resolve()}")
    for path in sorted(result.files):
        print(f"  {Path(path).resolve().relative_to(result.experiment_dir.resolve())}")
    run_dir = result.experiment_dir.resolve() / f"run-{run_id}"
    print("\nwhere to look:")
    print(f"  interactive view (open in a browser, works offline): {run_dir / 'graph.html'}")
    print(f"  whole experiment: {result.experiment_dir.resolve() / 'experiment.html'}")
    if has_graphviz:
        print(f"  picture: {run_dir / 'graph.svg'}")
    else:
        print("  picture: SVG skipped because Graphviz's 'dot' is not installed "
              "(apt-get install graphviz / brew install graphviz), graph.dot was written")
    print(f"  provenance pages (/prov/): mlflow-prov ui --backend-store-uri {store_uri}")
    print(f"  MLflow's own UI:           mlflow ui --backend-store-uri {store_uri}")


if __name__ == "__main__":
    main()
