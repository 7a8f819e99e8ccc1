"""The seeds' examples run on ``mlflow_prov.prov4ml`` with only the import changed.

Each example runs in a fresh interpreter, as a user runs it, with no tracking URI set: the
facade must default to ``prov:`` in the save folder, log every seeds call onto MLflow's own
notions, and export at ``end_run`` files that pass the validators ``export``'s pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import mlflow
import numpy as np
import pytest
from prov.model import ProvDocument
from validators import seed_rocrate_cache, validate_crate

from exporters import getters
from mlflow_prov.prov4ml import dot2svg, prov2dot, prov_collection
from mlflow_prov.vocabulary import CONTEXTS_TAG, PROV4ML_RANK_TAG

pytest.importorskip("torch", reason="the seeds' examples need the torch extra")

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "prov4ml_examples"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "data" / "prov-json.schema.json")
                    .read_text(encoding="utf-8"))


def run_example(name: str, cwd: Path, *args: str) -> Path:
    """Run an example with no MLflow settings inherited; returns its save folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CODECARBON_"))}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), "prov", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return cwd / "prov"


def only_run(save_dir: Path, experiment: str):
    client = mlflow.MlflowClient(f"prov://{save_dir / 'mlflow'}")
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return client, run


def assert_valid_prov_json(path: Path) -> None:
    content = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(content, SCHEMA)
    once = ProvDocument.deserialize(content=path.read_text(encoding="utf-8"), format="json")
    assert ProvDocument.deserialize(content=once.serialize(format="json"), format="json") == once


@pytest.mark.slow
def test_seeds_torch_example_runs_with_only_the_import_changed(tmp_path):
    save_dir = run_example("prov4ml_torch.py", tmp_path)
    client, run = only_run(save_dir, "experiment_name")
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    for key in ("train/MSE_train", "val/MSE_test", "trainingbutdifferent/MSE_tuning",
                "final/MSE_test", "final/MSE_train", "train/train_flops",
                "train/train_epoch_time", "system/cpu_utilization_percentage",
                "system/carbon/energy_consumed_kwh", "model/mnist_model_final/total_parameters"):
        assert key in metrics, key
    history = client.get_metric_history(run.info.run_id, "val/MSE_test")
    assert metrics["final/MSE_test"] == min(10.0, *(m.value for m in history))
    assert [m.step for m in client.get_metric_history(run.info.run_id,
                                                      "system/cpu_utilization_percentage")] \
        == [0, 1], "log_system_metrics takes one sample per call, at the caller's step"
    assert {"dataset transformation", "optimizer", "execution_start_time",
            "execution_end_time"} <= set(params)
    assert tags[PROV4ML_RANK_TAG] == "0" and "trainingbutdifferent" in tags[CONTEXTS_TAG]
    contexts = {i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"]
                for i in run.inputs.dataset_inputs}
    assert contexts == {"train_dataset": "training", "val_dataset": "validation"}
    versions = [a.path for a in client.list_artifacts(run.info.run_id, "models")]
    assert versions == ["models/mnist_model_version_0", "models/mnist_model_version_1"]
    assert client.search_logged_models([run.info.experiment_id])[0].name == "mnist_model_final"

    run_dir = save_dir / "experiment_name" / f"run-{run.info.run_id}"
    for name in ("prov.json", "graph.dot", "graph.svg", "metrics.zarr"):
        assert (run_dir / name).exists(), name
    assert (run_dir.parent / f"run-{run.info.run_id}.zip").is_file()  # use_compressor
    for path in (run_dir / "prov.json", run_dir.parent / "experiment.prov.json"):
        assert_valid_prov_json(path)
    report = validate_crate(run_dir.parent / f"run-{run.info.run_id}.crate.zip",
                            seed_rocrate_cache(tmp_path))
    assert report.passed, report.issues
    doc = getters.load(run_dir)
    series = getters.get_metric(doc, "MSE_test", "validation")
    np.testing.assert_array_equal(series["value"], [m.value for m in history])

    dot = prov2dot.main(["--prov_json", str(run_dir / "prov.json"),
                         "--output", str(tmp_path / "g.dot")])
    svg = dot2svg.main(["--dot", str(tmp_path / "g.dot"), "--output", str(tmp_path / "g.svg")])
    collected = prov_collection.main(["--experiment_path", str(save_dir / "experiment_name"),
                                      "--output_dir", str(tmp_path / "collection")])
    assert (dot, svg, collected) == (0, 0, 0)
    assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert_valid_prov_json(tmp_path / "collection" / prov_collection.COLLECTION_FILE)


@pytest.mark.slow
def test_seeds_lightning_example_runs_with_only_the_import_changed(tmp_path):
    pytest.importorskip("lightning", reason="the Lightning example needs lightning (test extra)")
    save_dir = run_example("prov4ml_lightning.py", tmp_path)
    client, run = only_run(save_dir, "experiment_name")
    for key in ("train/MSE", "val/MSE", "test/MSE", "train/epoch", "train/train_epoch_time",
                "system/cpu_utilization_percentage"):
        assert key in run.data.metrics, key
    assert "optimizer" in run.data.params
    versions = [a.path for a in client.list_artifacts(run.info.run_id, "models")]
    assert versions == ["models/model_version_0", "models/model_version_1"]
    run_dir = save_dir / "experiment_name" / f"run-{run.info.run_id}"
    assert_valid_prov_json(run_dir / "prov.json")
    assert (run_dir / "graph.svg").is_file()


def test_seeds_cli_tools_refuse_bad_input_in_one_line(tmp_path, capsys):
    assert prov2dot.main(["--prov_json", str(tmp_path / "absent.json"),
                          "--output", str(tmp_path / "x.dot")]) == 1
    assert dot2svg.main(["--dot", str(tmp_path / "absent.dot"),
                         "--output", str(tmp_path / "x.svg")]) == 1
    assert prov_collection.main(["--experiment_path", str(tmp_path),
                                 "--output_dir", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)


@pytest.mark.slow  # a Python subprocess
def test_python_m_prov2dot_reads_a_yprov4ml_file(tmp_path):
    source = (Path(__file__).resolve().parents[1] / "data" / "yprov4ml" / "samples"
              / "dataset_v0-distributed_provgraph_3B.json")
    done = subprocess.run([sys.executable, "-m", "mlflow_prov.prov4ml.prov2dot", "--prov_json",
                           str(source), "--output", str(tmp_path / "v0.dot")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "v0.dot").read_text().startswith("digraph")
