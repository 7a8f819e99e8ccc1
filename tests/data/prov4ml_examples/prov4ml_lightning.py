"""yProv4ML's PyTorch Lightning example (examples/prov4ml_lightning.py of the seeds), with the
import line changed, the accelerator set to cpu (it was "mps") and MNIST replaced by a small
synthetic tensor set of its shape (no network here)."""

import sys

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch.utils.data import DataLoader, TensorDataset

from mlflow_prov import prov4ml as yprov4ml

BATCH_SIZE = 16
EPOCHS = 2
SAVE_DIR = sys.argv[1] if len(sys.argv) > 1 else "prov"

# start the run in the same way as with mlflow
yprov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="experiment_name",
    provenance_save_dir=SAVE_DIR,
    save_after_n_logs=100,
    disable_codecarbon=True,
)


class MNISTModel(LightningModule):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Sequential(
            torch.nn.Linear(28 * 28, 10),
        )

    def forward(self, x):
        return self.model(x.view(x.size(0), -1))

    def training_step(self, batch, _):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        yprov4ml.log_metric("MSE", loss, yprov4ml.Contexts.TRAINING, step=self.current_epoch)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        # change the context to VALIDATION to log the metric as evaluation metric
        yprov4ml.log_metric("MSE", loss, yprov4ml.Contexts.VALIDATION, step=self.current_epoch)
        return loss

    def test_step(self, batch, _):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        # change the context to EVALUATION to log the metric as evaluation metric
        yprov4ml.log_metric("MSE", loss, yprov4ml.Contexts.TESTING, step=self.current_epoch)
        return loss

    def on_train_epoch_end(self) -> None:
        yprov4ml.log_metric("epoch", self.current_epoch, yprov4ml.Contexts.TRAINING,
                            step=self.current_epoch)
        yprov4ml.save_model_version(f"model_version_{self.current_epoch}", self,
                                    yprov4ml.Contexts.TRAINING, step=self.current_epoch)
        yprov4ml.log_system_metrics(yprov4ml.Contexts.TRAINING, step=self.current_epoch)
        yprov4ml.log_carbon_metrics(yprov4ml.Contexts.TRAINING, step=self.current_epoch)
        yprov4ml.log_current_execution_time("train_epoch_time", yprov4ml.Contexts.TRAINING,
                                            self.current_epoch)

    def configure_optimizers(self):
        optim = torch.optim.Adam(self.parameters(), lr=0.0002)
        yprov4ml.log_param("optimizer", optim)
        return optim


mnist_model = MNISTModel()

generator = torch.Generator().manual_seed(0)
tform = "Compose(RandomRotation(10), RandomHorizontalFlip(), RandomVerticalFlip(), ToTensor())"
# log the dataset transformation as one-time parameter
yprov4ml.log_param("dataset_transformation", tform)

train_ds = TensorDataset(torch.rand(BATCH_SIZE * 10, 1, 28, 28, generator=generator),
                         torch.randint(0, 10, (BATCH_SIZE * 10,), generator=generator))
val_ds = TensorDataset(torch.rand(BATCH_SIZE, 1, 28, 28, generator=generator),
                       torch.randint(0, 10, (BATCH_SIZE,), generator=generator))
train_loader = DataLoader(train_ds, batch_size=BATCH_SIZE)
val_loader = DataLoader(val_ds, batch_size=BATCH_SIZE)

yprov4ml.log_dataset("train_dataset", train_loader)
yprov4ml.log_dataset("val_dataset", val_loader)

trainer = L.Trainer(
    accelerator="cpu",
    devices=1,
    max_epochs=EPOCHS,
    logger=[],
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)

trainer.fit(mnist_model, train_loader, val_dataloaders=val_loader)
# log final version of the model
# it also logs the model architecture as an artifact by default
yprov4ml.log_model("model_version_final", mnist_model)

test_ds = TensorDataset(torch.rand(BATCH_SIZE * 2, 1, 28, 28, generator=generator),
                        torch.randint(0, 10, (BATCH_SIZE * 2,), generator=generator))
test_loader = DataLoader(test_ds, batch_size=BATCH_SIZE)

yprov4ml.log_dataset("test_dataset", test_loader)

result = trainer.test(mnist_model, test_loader)

# save the provenance graphs
yprov4ml.end_run(create_graph=True, create_svg=True)
