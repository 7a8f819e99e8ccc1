"""The prov4ml facade's semantics, call by call, in process on a real ``prov`` store:
ranks, contexts, buffering, final-metric folds, bad input, and the exporter entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from store_templates import prov_store

from mlflow_prov.prov4ml import api as prov4ml
from mlflow_prov.vocabulary import CONTEXTS_TAG, PROV4ML_RANK_TAG


@pytest.fixture
def empty_save_dir(tmp_path, monkeypatch):
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "prov"
    if prov4ml.get_run_id():
        prov4ml.end_run(export=False)


@pytest.fixture
def save_dir(empty_save_dir):
    """A save folder whose prov store is already there (as from an earlier run), so that
    each test does not wait for MLflow to create and migrate one."""
    prov_store(empty_save_dir / "mlflow")
    return empty_save_dir


def start(save_dir, **kwargs) -> str | None:
    return prov4ml.start_run(experiment_name="api", provenance_save_dir=save_dir,
                             disable_codecarbon=True, **kwargs)


@pytest.mark.slow  # MLflow creates and migrates the new store (seconds)
def test_defaults_to_a_prov_store_in_the_save_folder(empty_save_dir):
    save_dir = empty_save_dir
    run_id = start(save_dir)
    assert mlflow.get_tracking_uri() == f"prov://{save_dir.resolve() / 'mlflow'}"
    assert (save_dir / "mlflow" / "mlflow.db").is_file()
    prov4ml.end_run(export=False)
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FINISHED"


def test_metrics_are_buffered_then_written_with_context_prefixes(save_dir):
    run_id = start(save_dir, save_after_n_logs=3)
    client = mlflow.MlflowClient()
    prov4ml.log_metric("loss", np.float32(0.5), prov4ml.Context.TRAINING, step=0)
    prov4ml.log_metric("loss", 0.25, "Training", step=1)
    assert client.get_run(run_id).data.metrics == {}  # two logs: still in the buffer
    prov4ml.log_metric("acc", 1, "TrainingButDifferent", step=1)
    metrics = client.get_run(run_id).data.metrics
    assert metrics == {"train/loss": 0.25, "trainingbutdifferent/acc": 1.0}
    assert client.get_run(run_id).data.tags[CONTEXTS_TAG] == "trainingbutdifferent"


def test_many_values_in_one_millisecond_at_one_step_all_reach_an_active_model(save_dir):
    """The seeds log every batch at step 0; once a model is MLflow's active model, its metric
    rows are keyed by (key, timestamp, step), so points sharing a millisecond must not fail
    the batch (the Lightning example did, on a fast machine)."""
    run_id = start(save_dir, save_after_n_logs=100)
    model = mlflow.initialize_logged_model(name="net")
    mlflow.set_active_model(model_id=model.model_id)
    try:
        for value in (0.5, 0.4, 0.3, 0.2):
            prov4ml.log_metric("loss", value, prov4ml.Context.TRAINING, step=0, timestamp=1_000)
        prov4ml.end_run(export=False)
    finally:
        mlflow.clear_active_model()
    history = mlflow.MlflowClient().get_metric_history(run_id, "train/loss")
    assert [m.value for m in history] == [0.5, 0.4, 0.3, 0.2]
    assert [m.timestamp for m in history] == [1_000, 1_001, 1_002, 1_003]


@pytest.mark.parametrize(("fold", "expected"), [
    (prov4ml.FoldOperation.MIN, 1.0), (prov4ml.FoldOperation.MAX, 10.0),
    (prov4ml.FoldOperation.ADD, 10.0 + 3 + 1 + 2), (prov4ml.FoldOperation.SUBTRACT, 10.0 - 6),
    (lambda current, new: current * new, 60.0),
])
def test_final_metrics_fold_every_logged_value(save_dir, fold, expected):
    run_id = start(save_dir)
    prov4ml.register_final_metric("loss", 10, fold)
    for step, value in enumerate((3, 1, 2)):
        prov4ml.log_metric("loss", value, prov4ml.Context.VALIDATION, step=step)
    prov4ml.end_run(export=False)
    assert mlflow.MlflowClient().get_run(run_id).data.metrics["final/loss"] == expected


def test_other_ranks_log_nothing_unless_all_processes_are_collected(save_dir):
    assert start(save_dir, rank=1) is None
    prov4ml.log_metric("loss", 1.0, prov4ml.Context.TRAINING)  # a no-op, not an error
    assert prov4ml.end_run() == []
    run_id = start(save_dir, rank=1, collect_all_processes=True)
    assert mlflow.MlflowClient().get_run(run_id).data.tags[PROV4ML_RANK_TAG] == "1"


def test_bad_input_is_refused_with_the_fix(save_dir):
    with pytest.raises(ValueError, match="metrics_file_type='hdf5': use one of"):
        start(save_dir, metrics_file_type="hdf5")
    start(save_dir)
    with pytest.raises(TypeError, match="MLflow metrics are numbers, not list"):
        prov4ml.log_metric("correct", [True, False], prov4ml.Context.VALIDATION)
    with pytest.raises(RuntimeError, match="already started"):
        start(save_dir)


def test_a_changed_param_keeps_its_first_value(save_dir, caplog):
    run_id = start(save_dir)
    prov4ml.log_param("lr", 0.1)
    prov4ml.log_param("lr", 0.2)
    assert mlflow.MlflowClient().get_run(run_id).data.params["lr"] == "0.1"
    assert "keeps its first value" in caplog.text


def test_end_run_without_the_exporters_says_how_to_fix_it(save_dir, monkeypatch):
    start(save_dir)
    monkeypatch.setattr(prov4ml, "entry_points", lambda group: [])
    with pytest.raises(RuntimeError, match="no 'mlflow_prov.exporter' entry point"):
        prov4ml.end_run()


def test_end_run_exports_through_the_registered_entry_point(save_dir):
    run_id = start(save_dir, metrics_file_type="csv")
    prov4ml.log_metric("loss", 0.5, prov4ml.Context.TRAINING, step=0)
    files = prov4ml.end_run()
    run_dir = save_dir.resolve() / "api" / f"run-{run_id}"
    assert run_dir / "prov.json" in files
    assert (run_dir / "metrics").is_dir() and not (run_dir / "graph.dot").exists()


CRASHING_SCRIPT = """
import sys
from mlflow_prov import prov4ml
prov4ml.start_run(experiment_name="crash", provenance_save_dir=sys.argv[1],
                  save_after_n_logs=100, disable_codecarbon=True)
for step in range(5):
    prov4ml.log_metric("loss", 1.0 / (step + 1), prov4ml.Context.TRAINING, step=step)
raise SystemExit("training crashed before end_run")
"""


@pytest.mark.slow
def test_buffered_metrics_survive_a_script_that_dies_before_end_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CODECARBON_"))}
    done = subprocess.run([sys.executable, "-c", CRASHING_SCRIPT, str(tmp_path / "prov")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "training crashed" in done.stderr
    client = mlflow.MlflowClient(f"prov://{tmp_path / 'prov' / 'mlflow'}")
    (run,) = client.search_runs([client.get_experiment_by_name("crash").experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] \
        == [0, 1, 2, 3, 4]
