"""The examples, run as a user would (a fresh interpreter each), on small sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import mlflow
import pytest
from machine import scaled_timeout

pytest.importorskip("torch", reason="the examples need the torch extra")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, tmp_path: Path, *args: str) -> tuple[str, Path]:
    uri = f"prov://{tmp_path / 'runs'}"
    out = tmp_path / "export"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CODECARBON_"))}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--tracking-uri", uri, "--out", str(out),
         "--sampling-interval", "0.5", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=scaled_timeout(240),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"exported to {out.resolve()}" in done.stdout
    return uri, out


def prov_json(out: Path, experiment: str, run_id: str) -> dict:
    return json.loads((out / experiment / f"run-{run_id}" / "prov.json").read_text())


@pytest.mark.slow
def test_train_torch(tmp_path):
    uri, out = run_example("train_torch.py", tmp_path, "--epochs", "3", "--samples", "384")
    (run,) = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name("train-torch").experiment_id])
    metrics = run.data.metrics
    for key in ("train/loss", "val/accuracy", "test/accuracy", "train/flops_per_batch",
                "train/flops_per_epoch", "train/epoch_seconds", "final/val/loss",
                "model/mlp/total_parameters", "system/carbon/energy_consumed_kwh"):
        assert key in metrics, key
    contexts = {i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"]
                for i in run.inputs.dataset_inputs}
    assert contexts == {"teacher-training": "training", "teacher-validation": "validation",
                        "teacher-testing": "testing"}
    versions = mlflow.MlflowClient(uri).list_artifacts(run.info.run_id, "models/mlp")
    assert [Path(a.path).name for a in versions] == [f"v000{i}_step{i - 1}.pt" for i in (1, 2, 3)]
    document = prov_json(out, "train-torch", run.info.run_id)
    assert "activity" in document
    revisions = sorted((r["prov:generatedEntity"], r["prov:usedEntity"])
                       for r in document.get("wasDerivedFrom", {}).values()
                       if "v000" in r["prov:generatedEntity"])
    names = [tuple(unquote(i).rsplit("/", 1)[-1] for i in pair) for pair in revisions]
    assert names == [
        ("v0002_step1.pt", "v0001_step0.pt"), ("v0003_step2.pt", "v0002_step1.pt")]


@pytest.mark.slow
def test_ddp_ranks(tmp_path):
    from mlflow_prov.journal import read_events

    uri, out = run_example("ddp_ranks.py", tmp_path, "--world-size", "2", "--epochs", "2",
                           "--samples", "256")
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("ddp-ranks")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"ddp", "rank-0", "rank-1"}
    parent = runs["ddp"].info.run_id
    for rank in (0, 1):
        child = runs[f"rank-{rank}"]
        assert child.data.tags["rank"] == str(rank)
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert "train/loss" in child.data.metrics
        ranks = {e.writer.get("rank") for e in read_events(uri, run_id=child.info.run_id)}
        assert ranks == {rank}
        writers = [a for a in prov_json(out, "ddp-ranks", child.info.run_id)["agent"].values()
                   if "mlflowprov:rank" in a]
        assert [w["mlflowprov:rank"]["$"] for w in writers] == [str(rank)]
    assert "system/process_cpu_percentage" in runs["ddp"].data.metrics
    assert "final/train/loss" in runs["rank-0"].data.metrics
    exported = {p.name for p in (out / "ddp-ranks").iterdir()}
    assert {f"run-{r.info.run_id}" for r in runs.values()} <= exported
