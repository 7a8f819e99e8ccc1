"""Distributed data-parallel training on CPU (gloo), every rank logging into one store.

Layout: the launcher opens a parent run (parameters, system metrics for the whole process
tree, so carbon is counted once for the node); each rank opens a child run ``rank-<r>``
with its own loss curve, tagged with its rank. The ``prov`` store also journals RANK and
LOCAL_RANK with every write. Rank 0 saves the model versions and final figures. The
experiment, parent and children, is exported as one.

    python examples/ddp_ranks.py --world-size 2 --tracking-uri prov:///tmp/prov-ddp
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import mlflow
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from mlflow_prov import torch as prov_torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_torch import export  # noqa: E402  (the examples share one export step)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="prov:prov-runs")
    parser.add_argument("--experiment", default="ddp-ranks")
    parser.add_argument("--out", type=Path, default=Path("prov-export-ddp"))
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--world-size", type=int, default=2, choices=range(1, 5))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--sampling-interval", type=float, default=1.0)
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_dataset(samples: int, features: int) -> TensorDataset:
    """A noisy linear regression every rank regenerates identically (same seed)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, features, generator=generator)
    weights = torch.randn(features, 1, generator=generator)
    return TensorDataset(x, x @ weights + 0.1 * torch.randn(samples, 1, generator=generator))


def run_rank(rank: int, args: argparse.Namespace, parent_run_id: str, port: int) -> None:
    """One process: join the gloo group, train its shard, log into its child run."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank),
                       "WORLD_SIZE": str(args.world_size), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=args.world_size)
    torch.manual_seed(0)
    try:
        dataset = make_dataset(args.samples, args.features)
        sampler = DistributedSampler(dataset, num_replicas=args.world_size, rank=rank)
        loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
        model = DistributedDataParallel(nn.Linear(args.features, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

        mlflow.set_tracking_uri(args.tracking_uri)
        mlflow.set_experiment(args.experiment)
        with mlflow.start_run(run_name=f"rank-{rank}", parent_run_id=parent_run_id,
                              log_system_metrics=False,
                              tags={"rank": str(rank), "world_size": str(args.world_size)}):
            prov_torch.log_dataset(loader, "linear-regression", context="training")
            if rank == 0:
                prov_torch.log_model_info(model.module, "linear")
                prov_torch.register_final_metric("train/loss", "last")
            for epoch in range(args.epochs):
                sampler.set_epoch(epoch)
                total, count = 0.0, 0
                with prov_torch.execution_time("epoch_seconds", "training", step=epoch):
                    for x, y in loader:
                        optimizer.zero_grad()
                        loss = nn.functional.mse_loss(model(x), y)
                        loss.backward()  # DDP all-reduces the gradients over gloo here
                        optimizer.step()
                        total, count = total + loss.item() * len(y), count + len(y)
                prov_torch.log_context_metric("loss", total / count, "training", step=epoch)
                if rank == 0:
                    prov_torch.save_model_version(model.module, "linear", step=epoch)
            dist.barrier()
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    mlflow.set_system_metrics_sampling_interval(args.sampling_interval)
    with mlflow.start_run(run_name="ddp", log_system_metrics=True) as parent:
        mlflow.log_params({"world_size": args.world_size, "backend": "gloo",
                           "epochs": args.epochs, "batch_size": args.batch_size,
                           "lr": args.lr, "samples": args.samples})
        mp.spawn(run_rank, args=(args, parent.info.run_id, _free_port()),
                 nprocs=args.world_size, join=True)
    print(f"parent run {parent.info.run_id} with {args.world_size} rank runs in "
          f"{args.tracking_uri}")
    if not args.no_export:
        export(args.tracking_uri, args.experiment, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
