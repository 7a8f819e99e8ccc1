"""The PyTorch helpers against a real ``prov`` store in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import mlflow
import pytest
from machine import scaled_timeout
from store_templates import prov_store

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset  # noqa: E402

from mlflow_prov import torch as prov_torch  # noqa: E402


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module (creating one costs seconds); each test has its experiment."""
    return prov_store(tmp_path_factory.mktemp("torch-helpers") / "runs")


@pytest.fixture
def client(store_uri, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(store_uri)
    mlflow.set_experiment(request.node.name)
    yield mlflow.MlflowClient(store_uri)
    while mlflow.active_run():
        mlflow.end_run()


def history(client, run_id, key):
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def dataset(n=10, features=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, features, generator=generator), torch.zeros(n))


def test_context_names_and_key_prefixes_match_the_exporter(client):
    from exporters import collect
    from exporters.options import ExportOptions
    from exporters.privacy import Pseudonymizer

    logged = {"train": "training", "Validation": "validation", "testing": "testing",
              "eval": "evaluation", "tuning": "tuning", "Tuning": "tuning", None: None}
    with mlflow.start_run() as run:
        keys = {prov_torch.log_context_metric("loss", 0.5, context, step=0): expected
                for context, expected in logged.items()}
    assert set(keys) == {"train/loss", "val/loss", "test/loss", "eval/loss", "tuning/loss",
                         "loss"}
    options = ExportOptions()
    record = collect.run_record(client, client.get_run(run.info.run_id), options=options,
                                pseudonymize=Pseudonymizer(False), models=[], history=[])
    exported = {series.key: series.context for key in keys
                for series in collect.metric_series(client, record, key,
                                                    options.context_prefixes)}
    assert exported == keys


def test_helpers_need_an_active_run(client):
    with pytest.raises(RuntimeError, match="start_run"):
        prov_torch.log_model_info(nn.Linear(2, 2))


def test_log_model_info(client):
    model = nn.Sequential(nn.Linear(10, 5), nn.BatchNorm1d(5))
    model[0].bias.requires_grad_(False)
    with mlflow.start_run() as run:
        info = prov_torch.log_model_info(model, "net", optimizer_states_per_parameter=2)
    # Linear 50 + 5, BatchNorm 5 + 5 weights; buffers: 2 x 5 float32 + one int64 counter
    assert info["total_parameters"] == 65 and info["trainable_parameters"] == 60
    assert info["parameter_bytes"] == 65 * 4 and info["buffer_bytes"] == 10 * 4 + 8
    assert info["estimated_training_memory_bytes"] == 65 * 4 + 48 + 60 * 4 * 3
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["model/net/total_parameters"] == 65


def test_log_dataset_records_context_sizes_and_digest(client):
    data = dataset(n=10)
    loader = DataLoader(data, batch_size=4, shuffle=True, drop_last=True)
    with mlflow.start_run() as run:
        logged = prov_torch.log_dataset(loader, "points", context="train")
        prov_torch.log_dataset(data, "points-raw", context="test")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    tags = {i.dataset.name: {t.key: t.value for t in i.tags} for i in inputs}
    assert tags["points"] == {"mlflow.data.context": "training", "num_samples": "10",
                              "batch_size": "4", "shuffle": "true", "drop_last": "true",
                              "samples_per_epoch": "10", "batches_per_epoch": "2"}
    assert tags["points-raw"] == {"mlflow.data.context": "testing", "num_samples": "10"}
    assert logged.digest == prov_torch.dataset_digest(dataset(n=10))
    assert logged.digest != prov_torch.dataset_digest(dataset(n=10, seed=1))


def test_log_dataset_counts_a_distributed_shard(client):
    sampler = DistributedSampler(dataset(n=10), num_replicas=4, rank=1, shuffle=False)
    loader = DataLoader(sampler.dataset, batch_size=2, sampler=sampler)
    with mlflow.start_run() as run:
        prov_torch.log_dataset(loader, "shard", context="training")
    (given,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    tags = {t.key: t.value for t in given.tags}
    assert (tags["num_samples"], tags["samples_per_epoch"], tags["batches_per_epoch"],
            tags["shuffle"]) == ("10", "3", "2", "false")


def test_flops_are_per_batch_and_per_epoch_not_running_totals(client):
    model = nn.Sequential(nn.Linear(10, 5), nn.BatchNorm1d(5))
    model.train()
    running_mean = model[1].running_mean.clone()
    loader = DataLoader(dataset(n=12), batch_size=4)
    with mlflow.start_run() as run:
        for step, batch in enumerate(loader):
            assert prov_torch.log_flops_per_batch("flops", model, batch, "training", step) == 400
        for epoch in range(2):
            prov_torch.log_flops_per_epoch("epoch_flops", model, loader, "training", epoch)
    assert history(client, run.info.run_id, "train/flops") == [(0, 400), (1, 400), (2, 400)]
    assert history(client, run.info.run_id, "train/epoch_flops") == [(0, 1200), (1, 1200)]
    assert model.training and torch.equal(model[1].running_mean, running_mean)


def test_save_model_version_one_file_per_version(client, tmp_path):
    model = nn.Linear(3, 1)
    with mlflow.start_run() as run:
        first = prov_torch.save_model_version(model, "lin", step=0)
        with torch.no_grad():
            model.weight.fill_(2.0)
        second = prov_torch.save_model_version(model, "lin")
    assert (first, second) == ("models/lin/v0001_step0.pt", "models/lin/v0002.pt")
    paths = [a.path for a in client.list_artifacts(run.info.run_id, "models/lin")]
    assert paths == [first, second]
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=second,
                                                dst_path=str(tmp_path / "dl"))
    assert torch.equal(torch.load(local)["weight"], torch.full((1, 3), 2.0))


def test_execution_time_logs_seconds_only_on_success(client):
    with mlflow.start_run() as run:
        with prov_torch.execution_time("epoch_seconds", "validation", step=3):
            pass
        with pytest.raises(KeyError), prov_torch.execution_time("failed_seconds"):
            raise KeyError("x")
    ((step, seconds),) = history(client, run.info.run_id, "val/epoch_seconds")
    assert step == 3 and 0 <= seconds < 1
    assert "failed_seconds" not in client.get_run(run.info.run_id).data.metrics


def test_final_metrics_fire_at_the_end_of_a_stock_with_block(client):
    with mlflow.start_run() as run:
        prov_torch.register_final_metric("val/loss", "min")
        prov_torch.register_final_metric("val/acc", "last")
        prov_torch.register_final_metric("train/seconds", "sum")
        prov_torch.register_final_metric("val/spread", lambda v: max(v) - min(v))
        for step, (loss, acc) in enumerate([(0.9, 0.5), (0.4, 0.8), (0.6, 0.7)]):
            mlflow.log_metrics({"val/loss": loss, "val/acc": acc, "val/spread": loss,
                                "train/seconds": 2.0}, step=step)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["final/val/loss"] == 0.4
    assert metrics["final/val/acc"] == 0.7
    assert metrics["final/train/seconds"] == 6.0
    assert metrics["final/val/spread"] == pytest.approx(0.5)


def test_final_metrics_fire_on_explicit_end_run_and_skip_missing_keys(client, caplog):
    mlflow.start_run()
    run_id = mlflow.active_run().info.run_id
    prov_torch.register_final_metric("loss", "mean")
    prov_torch.register_final_metric("never_logged", "max")
    for step, value in enumerate([1.0, 2.0, 6.0]):
        mlflow.log_metric("loss", value, step=step)
    mlflow.end_run()
    metrics = client.get_run(run_id).data.metrics
    assert metrics["final/loss"] == 3.0 and "final/never_logged" not in metrics
    assert "never_logged" in caplog.text
    with mlflow.start_run(), pytest.raises(ValueError, match="unknown fold"):
        prov_torch.register_final_metric("loss", "median")


@pytest.mark.slow
def test_final_metrics_fire_at_interpreter_exit(tmp_path):
    uri = f"prov://{tmp_path / 'runs'}"
    script = textwrap.dedent(f"""
        import mlflow
        from mlflow_prov import torch as prov_torch
        mlflow.set_tracking_uri({uri!r})
        run = mlflow.start_run()
        prov_torch.register_final_metric("loss", "min")
        mlflow.log_metric("loss", 3.0, step=0)
        mlflow.log_metric("loss", 1.0, step=1)
        print(run.info.run_id)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=scaled_timeout(120))
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    run = mlflow.MlflowClient(uri).get_run(run_id)
    assert run.data.metrics["final/loss"] == 1.0 and run.info.status == "FINISHED"


def test_a_finished_runs_datasets_and_version_counters_are_forgotten(client):
    with mlflow.start_run() as run:
        prov_torch.log_dataset(dataset(), "points", context="train")
        prov_torch.save_model_version(nn.Linear(2, 2), "net")
        assert any(k[0] == run.info.run_id for k in prov_torch._datasets)
    run_id = run.info.run_id
    assert not [k for k in prov_torch._datasets if k[0] == run_id]
    assert not [k for k in prov_torch._model_versions if k[0] == run_id]
    with mlflow.start_run(run_id=run_id):  # resumed: numbering continues from the files
        assert prov_torch.save_model_version(nn.Linear(2, 2), "net") == "models/net/v0002.pt"
