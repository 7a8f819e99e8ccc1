"""Train a small PyTorch classifier with provenance: stock MLflow calls plus mlflow-prov.

The data is generated (a random "teacher" network labels Gaussian points), so nothing is
downloaded. System metrics are on through MLflow's own switch (``log_system_metrics=True``),
which also starts mlflow-prov's monitors; the run is exported at the end.

    python examples/train_torch.py --tracking-uri prov:///tmp/prov-demo --out /tmp/prov-export
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import mlflow
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlflow_prov import torch as prov_torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="prov:prov-runs")
    parser.add_argument("--experiment", default="train-torch")
    parser.add_argument("--out", type=Path, default=Path("prov-export"),
                        help="where `mlflow-prov export` writes its files")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--sampling-interval", type=float, default=1.0,
                        help="system-metrics sampling interval in seconds")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_data(samples: int, features: int, classes: int, seed: int) -> dict[str, TensorDataset]:
    """Points labelled by a random teacher network, split 70/15/15."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=generator)
    teacher = torch.randn(features, classes, generator=generator)
    y = (torch.tanh(x) @ teacher).argmax(dim=1)
    train, val = int(samples * 0.7), int(samples * 0.85)
    return {
        "training": TensorDataset(x[:train], y[:train]),
        "validation": TensorDataset(x[train:val], y[train:val]),
        "testing": TensorDataset(x[val:], y[val:]),
    }


def make_model(features: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(hidden, classes),
    )


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy over ``loader``."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    return loss_sum / count, correct / count


def train(args: argparse.Namespace) -> str:
    """One run: log params, datasets, model info, FLOPs, per-epoch metrics and versions."""
    torch.manual_seed(args.seed)
    data = make_data(args.samples, args.features, args.classes, args.seed)
    loaders = {
        context: DataLoader(dataset, batch_size=args.batch_size, shuffle=context == "training")
        for context, dataset in data.items()
    }
    model = make_model(args.features, args.hidden, args.classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    mlflow.set_system_metrics_sampling_interval(args.sampling_interval)
    with mlflow.start_run(run_name="mlp", log_system_metrics=True) as run:
        mlflow.log_params({k: v for k, v in vars(args).items()
                           if k in {"epochs", "samples", "hidden", "batch_size", "lr", "seed"}})
        prov_torch.log_model_info(model, "mlp")
        for context, loader in loaders.items():
            prov_torch.log_dataset(loader, f"teacher-{context}", context=context)
        prov_torch.log_flops_per_batch("flops_per_batch", model, next(iter(loaders["training"])),
                                       context="training", step=0)
        prov_torch.register_final_metric("val/loss", "min")
        prov_torch.register_final_metric("val/accuracy", "max")
        prov_torch.register_final_metric("train/epoch_seconds", "sum")

        for epoch in range(args.epochs):
            with prov_torch.execution_time("epoch_seconds", context="training", step=epoch):
                model.train()
                for x, y in loaders["training"]:
                    optimizer.zero_grad()
                    loss = nn.functional.cross_entropy(model(x), y)
                    loss.backward()
                    optimizer.step()
            prov_torch.log_flops_per_epoch("flops_per_epoch", model, loaders["training"],
                                           context="training", step=epoch)
            train_loss, train_acc = evaluate(model, loaders["training"])
            val_loss, val_acc = evaluate(model, loaders["validation"])
            for key, value, context in [("loss", train_loss, "training"),
                                        ("accuracy", train_acc, "training"),
                                        ("loss", val_loss, "validation"),
                                        ("accuracy", val_acc, "validation")]:
                prov_torch.log_context_metric(key, value, context, step=epoch)
            prov_torch.save_model_version(model, "mlp", step=epoch)
            print(f"epoch {epoch}: train loss {train_loss:.3f} val loss {val_loss:.3f} "
                  f"val accuracy {val_acc:.3f}")

        test_loss, test_acc = evaluate(model, loaders["testing"])
        prov_torch.log_context_metric("loss", test_loss, "testing")
        prov_torch.log_context_metric("accuracy", test_acc, "testing")
    return run.info.run_id


def export(tracking_uri: str, experiment: str, out: Path) -> None:
    """Export the experiment with the ``mlflow-prov export`` command, as a user would."""
    script = Path(sys.executable).with_name("mlflow-prov")
    command = [str(script) if script.exists() else "mlflow-prov", "export",
               "--tracking-uri", tracking_uri, "--experiment", experiment, "--out", str(out)]
    subprocess.run(command, check=True)
    print(f"exported to {out.resolve()}:")
    for path in sorted(out.rglob("*")):
        if path.is_file():
            print(f"  {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    run_id = train(args)
    print(f"run {run_id} in {args.tracking_uri}")
    if not args.no_export:
        export(args.tracking_uri, args.experiment, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
