"""yProv4ML's PyTorch example (examples/prov4ml_torch.py of the seeds), with two changes only:
the import line, and MNIST replaced by a small synthetic tensor set of its shape (no network
here). Run by tests/integration/test_prov4ml_facade.py in a fresh interpreter."""

import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlflow_prov import prov4ml

BATCH_SIZE = 16
EPOCHS = 2
DEVICE = "cpu"
SAVE_DIR = sys.argv[1] if len(sys.argv) > 1 else "prov"

prov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="experiment_name",
    provenance_save_dir=SAVE_DIR,
    save_after_n_logs=100,
    collect_all_processes=True,
    metrics_file_type="netcdf" if "--netcdf" in sys.argv else "zarr",
    use_compressor=True,
)


class MNISTModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Sequential(
            torch.nn.Linear(28 * 28, 10),
            torch.nn.ReLU(),
        )

    def forward(self, x):
        return self.model(x.view(x.size(0), -1))


mnist_model = MNISTModel().to(DEVICE)

generator = torch.Generator().manual_seed(0)
tform = "ToTensor()"
# log the dataset transformation as one-time parameter
prov4ml.log_param("dataset transformation", tform)

train_ds = TensorDataset(torch.rand(BATCH_SIZE * 4, 1, 28, 28, generator=generator),
                         torch.randint(0, 10, (BATCH_SIZE * 4,), generator=generator))
train_loader = DataLoader(train_ds, batch_size=BATCH_SIZE, shuffle=True)
prov4ml.log_dataset(train_loader, "train_dataset")

test_ds = TensorDataset(torch.rand(BATCH_SIZE * 2, 1, 28, 28, generator=generator),
                        torch.randint(0, 10, (BATCH_SIZE * 2,), generator=generator))
test_loader = DataLoader(test_ds, batch_size=BATCH_SIZE)
prov4ml.log_dataset(test_loader, "val_dataset", context=prov4ml.Context.VALIDATION)

optim = torch.optim.Adam(mnist_model.parameters(), lr=0.001)
prov4ml.log_param("optimizer", "Adam")

loss_fn = nn.MSELoss().to(DEVICE)
prov4ml.register_final_metric("MSE_test", 10, prov4ml.FoldOperation.MIN)
prov4ml.register_final_metric("MSE_train", 10, prov4ml.FoldOperation.MIN)

losses = []
for epoch in range(EPOCHS):
    mnist_model.train()
    for i, (x, y) in enumerate(train_loader):  # noqa: B007  (the seeds' code as written)
        x, y = x.to(DEVICE), y.to(DEVICE)
        optim.zero_grad()
        y_hat = mnist_model(x)
        y = F.one_hot(y, 10).float()
        loss = loss_fn(y_hat, y)
        loss.backward()
        optim.step()
        losses.append(loss.item())

        # log system and carbon metrics (once per epoch), as well as the execution time
        prov4ml.log_metric("MSE_train", loss.item(), context=prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_flops_per_batch("train_flops", mnist_model, (x, y), prov4ml.Context.TRAINING,
                                    step=epoch)

    prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)
    prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=epoch)
    prov4ml.log_current_execution_time("train_epoch_time", prov4ml.Context.TRAINING, epoch)
    # save incremental model versions
    prov4ml.save_model_version(mnist_model, f"mnist_model_version_{epoch}",
                               prov4ml.Context.TRAINING, epoch)

    mnist_model.eval()
    with torch.no_grad():
        for i, (x, y) in enumerate(test_loader):  # noqa: B007  (the seeds' code as written)
            x, y = x.to(DEVICE), y.to(DEVICE)
            y_hat = mnist_model(x)
            y2 = F.one_hot(y, 10).float()
            loss = loss_fn(y_hat, y2)
            prov4ml.log_metric("MSE_test", loss.item(), prov4ml.Context.VALIDATION, step=epoch)
            prov4ml.log_metric("MSE_tuning", loss.item(), "TrainingButDifferent", step=epoch)

prov4ml.log_model(mnist_model, "mnist_model_final")

prov4ml.end_run(create_graph=True, create_svg=True, crate_ro_crate=True)
