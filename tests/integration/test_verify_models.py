"""``verify`` reconciles LoggedModels, the model registry and dataset inputs with the journal,
by replaying its payloads, as it does runs; and a write never absorbs earlier tampering.

Each case edits, inserts or deletes one row with SQL behind MLflow's back, on a copy of one
trained store; verify must exit 1 with a line naming the object and what changed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow_runs import log_dataset
from store_templates import prov_store

from exporters.cli import main
from mlflow_prov.uri import parse_prov_uri


@dataclass(frozen=True)
class Trained:
    uri: str
    run_id: str
    model_id: str


def _train(uri: str) -> Trained:
    """A run with a dataset input, a LoggedModel with tags, params and metrics, and a
    registered model with a tagged, aliased version moved to Staging."""
    import mlflow

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("models")
    run_id = client.create_run(experiment_id).info.run_id
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0, 2.0]}), source="train.csv",
                                      name="train")
    log_dataset(client, run_id, dataset, "training")
    model = client.create_logged_model(experiment_id, name="net", source_run_id=run_id,
                                       tags={"arch": "mlp"}, params={"layers": "2"})
    client.log_batch(run_id, metrics=[Metric("val", 0.5 + step / 10, 1_000 + step, step,
                                             model_id=model.model_id) for step in range(3)])
    client.finalize_logged_model(model.model_id, "READY")
    client.create_registered_model("net", tags={"owner": "vision"}, description="an mlp")
    version = client.create_model_version("net", f"runs:/{run_id}/model", run_id=run_id,
                                          tags={"checked": "yes"})
    client.set_registered_model_alias("net", "champion", version.version)
    client.transition_model_version_stage("net", version.version, "Staging")
    client.set_terminated(run_id)
    return Trained(uri, run_id, model.model_id)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Trained]:
    folder = tmp_path_factory.mktemp("models") / "store"
    return folder, _train(prov_store(folder))


@pytest.fixture
def trained(template, tmp_path) -> Trained:
    folder, made = template
    shutil.copytree(folder, tmp_path / "copy")
    return Trained(f"prov://{tmp_path / 'copy'}", made.run_id, made.model_id)


def _sql(trained: Trained, statement: str) -> None:
    engine = sa.create_engine(parse_prov_uri(trained.uri).db_uri)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), {"run": trained.run_id,
                                                    "model": trained.model_id})
    finally:
        engine.dispose()


def _verify(uri: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri])
    return result.exit_code, result.output.splitlines()


def test_an_untouched_store_with_models_and_a_registry_verifies(trained):
    code, lines = _verify(trained.uri)
    assert code == 0, lines


# (case, SQL, text the problem line must contain, what it must name)
TAMPERS = [
    ("logged model status edited", "UPDATE logged_models SET status = 1 WHERE model_id = :model",
     "status is 1, the journal recorded", "logged model m-"),
    ("logged model renamed", "UPDATE logged_models SET name = 'other' WHERE model_id = :model",
     "name is 'other', the journal recorded 'net'", "logged model m-"),
    ("logged model tag edited", "UPDATE logged_model_tags SET tag_value = 'cnn'",
     "MLflow has 'cnn', the journal recorded 'mlp' (edited)", "logged model m-"),
    ("logged model tag inserted",
     "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) "
     "SELECT model_id, experiment_id, 'x', 'y' FROM logged_models",
     "never journaled (inserted)", "logged model m-"),
    ("logged model param deleted", "DELETE FROM logged_model_params",
     "missing in MLflow (deleted)", "logged model m-"),
    ("logged model metric edited",
     "UPDATE logged_model_metrics SET metric_value = 0.99 WHERE metric_step = 1",
     "their values differ", "logged model m-"),
    ("logged model metric deleted", "DELETE FROM logged_model_metrics WHERE metric_step = 2",
     "MLflow holds 2 rows, the journal recorded 3", "logged model m-"),
    ("logged model row deleted",
     "DELETE FROM logged_model_metrics; DELETE FROM logged_model_tags; "
     "DELETE FROM logged_model_params; DELETE FROM logged_models",
     "no row for it", "logged model m-"),
    ("registered model description edited",
     "UPDATE registered_models SET description = 'a cnn'",
     "description is 'a cnn', the journal recorded 'an mlp'", "registered model 'net'"),
    ("registered model tag inserted",
     "INSERT INTO registered_model_tags (key, value, name, workspace) "
     "VALUES ('x', 'y', 'net', 'default')",
     "never journaled (inserted)", "registered model 'net' tag 'x'"),
    ("model version stage edited",
     "UPDATE model_versions SET current_stage = 'Production'",
     "current_stage is 'Production', the journal recorded 'Staging'", "model version 'net' 1"),
    ("model version source edited", "UPDATE model_versions SET source = 's3://elsewhere'",
     "source is 's3://elsewhere'", "model version 'net' 1"),
    ("model version tag deleted", "DELETE FROM model_version_tags",
     "missing in MLflow (deleted)", "model version 'net' 1 tag 'checked'"),
    ("alias re-pointed", "UPDATE registered_model_aliases SET version = 7",
     "MLflow has 7, the journal recorded 1 (edited)", "registered model 'net' alias"),
    ("model version row deleted",
     "DELETE FROM registered_model_aliases; DELETE FROM model_version_tags; "
     "DELETE FROM model_versions",
     "missing in MLflow's model_versions table", "model version 'net' 1"),
    ("dataset input context edited", "UPDATE input_tags SET value = 'evaluation'",
     "never journaled", "dataset input 'train'"),
    ("dataset input deleted", "DELETE FROM input_tags; DELETE FROM inputs",
     "missing in MLflow", "dataset input 'train'"),
    ("dataset swapped", "UPDATE datasets SET digest = 'feedbeef'",
     "never journaled", "dataset input 'train' (feedbeef)"),
]


@pytest.mark.slow  # one copy of the store and one verify per case
@pytest.mark.parametrize("case, statements, says, names", TAMPERS,
                         ids=[case[0] for case in TAMPERS])
def test_a_tamper_of_a_model_registry_or_dataset_row_is_reported(trained, case, statements,
                                                                 says, names):
    for statement in statements.split("; "):
        _sql(trained, statement)
    code, lines = _verify(trained.uri)
    assert code == 1, (case, lines)
    assert any(names in line and says in line for line in lines), (case, lines)


def test_a_tag_edited_behind_mlflow_stays_reported_after_a_write_overwrites_it(trained):
    """MLflow loads the old value to overwrite it: the event records what it overwrote, so
    the edit shows even though MLflow now holds the journaled value again."""
    _sql(trained, "INSERT INTO tags (key, value, run_uuid) VALUES ('stage', 'forged', :run)")
    MlflowClient(trained.uri).set_tag(trained.run_id, "stage", "final")
    code, lines = _verify(trained.uri)
    assert code == 1, lines
    assert any(f"run {trained.run_id} tag 'stage' (event" in line
               and "MLflow held 'forged' before this write; the journal never recorded it"
               in line for line in lines), lines


def test_a_status_edited_behind_mlflow_stays_reported_after_the_run_is_ended_again(trained):
    _sql(trained, "UPDATE runs SET status = 'KILLED' WHERE run_uuid = :run")
    MlflowClient(trained.uri).set_terminated(trained.run_id, "FINISHED")
    code, lines = _verify(trained.uri)
    assert code == 1, lines
    assert any("status (event" in line and "MLflow held 'KILLED' before this write; the "
               "journal recorded 'FINISHED'" in line for line in lines), lines
