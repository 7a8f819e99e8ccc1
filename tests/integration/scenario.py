"""One scripted MLflow session, written with stock calls, and what a user can observe of it.

:func:`play` runs the same sequence of fluent ``mlflow.*`` and ``MlflowClient`` calls against
any tracking URI and returns an :class:`Observed`: every entity read back (experiments, runs,
metric histories, search pages, datasets, LoggedModels, registry objects, predictions),
converted to plain data and normalised only where two correct stores legitimately differ:

* generated ids (run ids, LoggedModel ids) become symbolic names (``<run:parent>``), also
  inside strings (``runs:/<id>/model``, tag values, model-version sources);
* wall-clock timestamps the store or client stamps itself (run start/end, creation and
  update times) become ``"<time>"`` (``None`` stays ``None``); metric timestamps are given
  explicitly by the scenario and compared exactly;
* the store's artifact root becomes ``"<root>"`` (the path below it is compared).

NaN becomes the string ``"NaN"`` (so that equal histories compare equal); every other value,
including MLflow's clamping of +/-inf, is kept as the store returned it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
from google.protobuf.message import Message
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.entities._mlflow_object import _MlflowObject
from mlflow.pyfunc import PythonModel
from mlflow.tracking import fluent

EXPERIMENT = "diff-exp"
RENAMED = "diff-exp-renamed"
SCRATCH = "diff-scratch"
MODEL_NAME = "diff-model"
T0 = 1_722_514_379_000  # metric timestamps (ms), given explicitly so they compare exactly
SWEEP = 5
ASYNC_STEPS = 40
TIME_KEYS = frozenset({
    "start_time", "end_time", "creation_time", "last_update_time", "creation_timestamp",
    "last_updated_timestamp", "creation_timestamp_ms", "last_updated_timestamp_ms",
})
LOSS = [2.5, float("nan"), float("inf"), float("-inf"), 0.125, 0.0625]


class AddOne(PythonModel):
    """The smallest useful pyfunc model: adds one to every input cell."""

    def predict(self, context, model_input, params=None):
        return model_input + 1


@dataclass
class Observed:
    """What one store showed the user, normalised; plus raw ids for journal checks."""

    uri: str
    sections: dict[str, Any] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)  # run name -> run id
    experiment_ids: dict[str, str] = field(default_factory=dict)  # final name -> id
    model_ids: dict[str, str] = field(default_factory=dict)  # label -> LoggedModel id


def reset_fluent_state() -> None:
    """Leave no fluent MLflow state behind: active runs, URIs, experiment, async logging."""
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.config.enable_async_logging(False)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)


def play(uri: str) -> Observed:
    """Run the scenario against ``uri`` and return what it observed."""
    reset_fluent_state()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        return _Scenario(uri).run()
    finally:
        reset_fluent_state()


class _Scenario:
    def __init__(self, uri: str) -> None:
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.seen = Observed(uri)
        self.raw: dict[str, Any] = {}

    # --- the script ------------------------------------------------------------------------

    def run(self) -> Observed:
        experiment_id = self._experiments()
        mlflow.set_experiment(experiment_id=experiment_id)
        dataset = self._training_runs()
        self._failed_and_killed_runs()
        self._sweep(experiment_id)
        self._async_run()
        self._lifecycle()
        self._registry()
        self._errors()
        self._observe(experiment_id, dataset)
        return self.seen

    def _experiments(self) -> str:
        client = self.client
        experiment_id = client.create_experiment(EXPERIMENT, tags={"team": "vision", "v": "1"})
        client.set_experiment_tag(experiment_id, "team", "nlp")  # overwrite
        client.set_experiment_tag(experiment_id, "scratchpad", "x")
        client.delete_experiment_tag(experiment_id, "scratchpad")
        client.rename_experiment(experiment_id, RENAMED)
        scratch = client.create_experiment(SCRATCH)
        scratch_run = client.create_run(scratch, run_name="scratch-run").info.run_id
        self.seen.run_ids["scratch-run"] = scratch_run
        client.delete_experiment(scratch)  # deletes its runs too
        self.raw["deleted experiments"] = self._experiments_view(ViewType.DELETED_ONLY)
        self.raw["run of deleted experiment"] = client.get_run(scratch_run)
        client.restore_experiment(scratch)
        self.raw["run of restored experiment"] = client.get_run(scratch_run)
        self.seen.experiment_ids = {RENAMED: experiment_id, SCRATCH: scratch}
        return experiment_id

    def _training_runs(self) -> Any:
        frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
        training = mlflow.data.from_pandas(frame, name="toy-train", targets="y")
        validation = mlflow.data.from_pandas(frame.iloc[:2], name="toy-val", targets="y")
        with mlflow.start_run(run_name="parent") as parent:
            self.seen.run_ids["parent"] = parent.info.run_id
            mlflow.log_param("lr", "0.1")
            mlflow.log_params({"epochs": "3", "optimizer": "sgd"})
            mlflow.set_tag("phase", "warmup")
            mlflow.set_tag("phase", "train")  # overwrite: the journal keeps "warmup"
            mlflow.set_tags({"owner": "alice", "temporary": "yes"})
            mlflow.delete_tag("temporary")
            mlflow.log_input(training, context="training")
            mlflow.log_input(validation, context="validation", tags={"fold": "0"})
            for step, value in enumerate(LOSS):
                mlflow.log_metric("loss", value, step=step, timestamp=T0 + step)
            mlflow.log_metric("loss", 0.5, step=2, timestamp=T0 + 99)  # a second point at step 2
            mlflow.log_metrics({"acc": 0.75, "f1": float("nan")}, step=7, timestamp=T0 + 7)
            info = mlflow.pyfunc.log_model(name="model", python_model=AddOne(),
                                           pip_requirements=["mlflow"],
                                           params={"alpha": "0.5"}, tags={"kind": "toy"})
            self.seen.model_ids["pyfunc"] = info.model_id
            self.raw["model_uri"] = info.model_uri
            mlflow.log_metric("val_acc", 0.8, step=1, timestamp=T0 + 11,
                              dataset=validation, model_id=info.model_id)
            mlflow.log_metric("val_acc", float("-inf"), step=2, timestamp=T0 + 12,
                              dataset=validation, model_id=info.model_id)
            mlflow.log_metric("train_acc", 0.9, step=1, timestamp=T0 + 13, dataset=training)
            external = mlflow.initialize_logged_model(name="external", model_type="agent",
                                                      tags={"origin": "scenario"})
            self.seen.model_ids["external"] = external.model_id
            mlflow.log_model_params({"temperature": "0.2"}, model_id=external.model_id)
            mlflow.set_logged_model_tags(external.model_id, {"origin": "scenario-2", "x": "1"})
            mlflow.delete_logged_model_tag(external.model_id, "x")
            mlflow.finalize_logged_model(external.model_id, "READY")
            mlflow.log_metric("judge", 3.0, step=0, timestamp=T0 + 14, model_id=external.model_id)
            with mlflow.start_run(run_name="child-a", nested=True) as child:
                self.seen.run_ids["child-a"] = child.info.run_id
                mlflow.log_param("fold", "a")
                mlflow.log_metric("loss", 1.0, step=0, timestamp=T0 + 20)
            with mlflow.start_run(run_name="child-b", nested=True) as child:
                self.seen.run_ids["child-b"] = child.info.run_id
                mlflow.log_param("fold", "b")
                mlflow.log_metric("loss", float("inf"), step=0, timestamp=T0 + 21)
        loaded = mlflow.pyfunc.load_model(self.raw["model_uri"])
        self.seen.sections["prediction"] = loaded.predict(frame[["x"]]).to_dict("list")
        return validation

    def _failed_and_killed_runs(self) -> None:
        try:
            with mlflow.start_run(run_name="crashes") as run:
                self.seen.run_ids["crashes"] = run.info.run_id
                mlflow.log_metric("loss", 9.0, step=0, timestamp=T0 + 30)
                raise RuntimeError("boom")  # the context manager ends the run as FAILED
        except RuntimeError:
            pass
        run = self.client.create_run(mlflow.tracking.fluent._get_experiment_id(),
                                     run_name="to-kill", tags={"src": "client"})
        self.seen.run_ids["to-kill"] = run.info.run_id
        self.client.set_terminated(run.info.run_id, "KILLED")
        with mlflow.start_run(run_name="old-name") as run:
            self.seen.run_ids["renamed"] = run.info.run_id
        self.client.update_run(self.seen.run_ids["renamed"], name="renamed")
        self.client.update_run(self.seen.run_ids["renamed"], status="FINISHED")
        run_id = self.client.create_run(run.info.experiment_id, run_name="tag-name-0").info.run_id
        self.seen.run_ids["tag-renamed"] = run_id
        self.client.set_tag(run_id, "mlflow.runName", "tag-name-1")  # renames through a tag
        self.client.log_batch(run_id, tags=[RunTag("mlflow.runName", "tag-renamed"),
                                            RunTag("after", "rename")])

    def _sweep(self, experiment_id: str) -> None:
        """Runs with explicit, distinct start times, so every ordering is deterministic."""
        for i in range(SWEEP):
            run = self.client.create_run(experiment_id, start_time=T0 + 1000 * i,
                                         run_name=f"sweep-{i}", tags={"sweep": "yes"})
            run_id = run.info.run_id
            self.seen.run_ids[f"sweep-{i}"] = run_id
            self.client.log_batch(
                run_id,
                metrics=[Metric("score", 0.05 * i, T0 + i, 0),  # the latest (step 1) counts
                         Metric("score", [0.3, 0.9, float("nan"), 0.9, 0.1][i], T0 + i + 1, 1)],
                params=[Param("lr", str(10 ** -i)), Param("batch", str(16 * (i % 2 + 1)))],
                tags=[RunTag("parity", "even" if i % 2 == 0 else "odd")])
            self.client.set_terminated(run_id, "FINISHED", end_time=T0 + 1000 * i + 500)

    def _async_run(self) -> None:
        mlflow.config.enable_async_logging(True)
        try:
            with mlflow.start_run(run_name="async") as run:
                self.seen.run_ids["async"] = run.info.run_id
                mlflow.log_param("mode", "async")
                mlflow.set_tag("queued", "yes")
                for step in range(ASYNC_STEPS):
                    value = float("nan") if step == 7 else step / 4
                    mlflow.log_metric("a_loss", value, step=step, timestamp=T0 + step)
                mlflow.log_metrics({"a_x": 1.5, "a_y": float("inf")}, step=0, timestamp=T0)
                mlflow.set_tag("flushed", "soon")  # distinct keys: see module docstring
                mlflow.flush_async_logging()
        finally:
            mlflow.config.enable_async_logging(False)

    def _lifecycle(self) -> None:
        ids = self.seen.run_ids
        self.client.delete_run(ids["child-b"])
        self.client.delete_run(ids["sweep-4"])
        self.raw["deleted runs"] = self._run_names(ViewType.DELETED_ONLY)
        self.client.restore_run(ids["child-b"])  # sweep-4 stays deleted

    def _errors(self) -> None:
        """Calls MLflow rejects: the same exception, error code and message on both stores."""
        client, ids = self.client, self.seen.run_ids
        missing_run, missing_model = "f" * 32, "m-" + "0" * 32
        calls = {
            "rename, non-numeric experiment id": lambda: client.rename_experiment("abc", "x"),
            "rename, unknown experiment": lambda: client.rename_experiment("999", "x"),
            "tag, non-numeric experiment id": lambda: client.set_experiment_tag("abc", "k", "v"),
            "tag, unknown experiment": lambda: client.set_experiment_tag("999", "k", "v"),
            "tag, experiment id out of range":
                lambda: client.set_experiment_tag(str(2 ** 40), "k", "v"),
            "rename, experiment id out of range":
                lambda: client.rename_experiment(str(2 ** 70), "x"),
            "delete experiment tag by a numeric key":
                lambda: client.delete_experiment_tag(self.seen.experiment_ids[RENAMED], 125),
            "delete run tag by a numeric key": lambda: client.delete_tag(ids["parent"], 123),
            "tag a numeric run id": lambda: client.set_tag(5, "k", "v"),
            "delete tag, non-numeric experiment id":
                lambda: client.delete_experiment_tag("abc", "k"),
            "delete missing experiment tag":
                lambda: client.delete_experiment_tag(self.seen.experiment_ids[RENAMED], "nope"),
            "change a param": lambda: client.log_param(ids["parent"], "lr", "0.2"),
            "change a param in a batch":
                lambda: client.log_batch(ids["parent"], params=[Param("lr", "0.3")]),
            "tag a deleted run": lambda: client.set_tag(ids["sweep-4"], "k", "v"),
            "delete a missing tag": lambda: client.delete_tag(ids["parent"], "nope"),
            "tag an unknown run": lambda: client.set_tag(missing_run, "k", "v"),
            "update an unknown run": lambda: client.update_run(missing_run, status="FINISHED"),
            "metric on an unknown run": lambda: client.log_metric(missing_run, "m", 1.0),
            "bad metric step": lambda: client.log_batch(
                ids["parent"], metrics=[Metric("m", 1.0, T0, "x")]),
            "finalize an unknown model":
                lambda: client.finalize_logged_model(missing_model, "READY"),
            "alias on an unknown model":
                lambda: client.set_registered_model_alias("no-such-model", "a", 1),
            "tag an unknown model version":
                lambda: client.set_model_version_tag(MODEL_NAME, "99", "k", "v"),
        }
        outcomes = {}
        for label, call in calls.items():
            try:
                call()
            except Exception as error:  # the exception itself is the observation
                outcomes[label] = [type(error).__name__, getattr(error, "error_code", None),
                                   str(error)]
            else:
                outcomes[label] = "no error"
        self.raw["errors"] = outcomes

    def _registry(self) -> None:
        client = self.client
        first = mlflow.register_model(self.raw["model_uri"], MODEL_NAME,
                                      tags={"stage": "candidate"})
        second = mlflow.register_model(f"runs:/{self.seen.run_ids['parent']}/model", MODEL_NAME)
        client.set_registered_model_tag(MODEL_NAME, "domain", "toys")
        client.update_registered_model(MODEL_NAME, description="adds one")
        client.set_model_version_tag(MODEL_NAME, first.version, "stage", "approved")
        client.set_model_version_tag(MODEL_NAME, second.version, "temp", "1")
        client.delete_model_version_tag(MODEL_NAME, second.version, "temp")
        client.update_model_version(MODEL_NAME, second.version, description="second")
        client.set_registered_model_alias(MODEL_NAME, "champion", first.version)
        client.set_registered_model_alias(MODEL_NAME, "challenger", second.version)
        client.set_registered_model_alias(MODEL_NAME, "champion", second.version)  # moves
        client.set_registered_model_alias(MODEL_NAME, "old", first.version)
        client.delete_registered_model_alias(MODEL_NAME, "old")
        registry: dict[str, Any] = {
            "versions": [first.version, second.version],
            "champion": client.get_model_version_by_alias(MODEL_NAME, "champion"),
            "challenger": client.get_model_version_by_alias(MODEL_NAME, "challenger"),
            "model": client.get_registered_model(MODEL_NAME),
            "search_versions": client.search_model_versions(f"name = '{MODEL_NAME}'",
                                                            order_by=["version_number ASC"]),
            "search_models": client.search_registered_models(),
        }
        try:
            client.get_model_version_by_alias(MODEL_NAME, "old")
        except mlflow.exceptions.MlflowException as error:
            registry["deleted_alias_error"] = error.error_code
        else:
            registry["deleted_alias_error"] = None
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
        registry["champion_prediction"] = loaded.predict(pd.DataFrame({"x": [10.0]})).to_dict(
            "list")
        self.raw["registry"] = registry

    # --- reading back ----------------------------------------------------------------------

    def _experiments_view(self, view: int) -> list[Any]:
        return self.client.search_experiments(view_type=view, order_by=["name ASC"])

    def _run_names(self, view: int) -> list[str]:
        runs = self.client.search_runs([self.seen.experiment_ids[RENAMED]], run_view_type=view,
                                       order_by=["attributes.run_name ASC"])
        return [run.info.run_name for run in runs]

    def _observe(self, experiment_id: str, dataset: Any) -> None:
        client, sections = self.client, self.seen.sections
        sections["experiments"] = {
            "active": self._experiments_view(ViewType.ACTIVE_ONLY),
            "deleted_while_deleted": self.raw["deleted experiments"],
            "run_while_deleted": self.raw["run of deleted experiment"],
            "run_after_restore": self.raw["run of restored experiment"],
            "by_name": client.get_experiment_by_name(RENAMED),
            "old_name": client.get_experiment_by_name(EXPERIMENT),
            "filtered": client.search_experiments(filter_string="tags.team = 'nlp'"),
        }
        all_runs = client.search_runs([experiment_id], run_view_type=ViewType.ALL,
                                      order_by=["attributes.run_name ASC"], max_results=1000)
        sections["runs"] = {run.info.run_name: client.get_run(run.info.run_id)
                            for run in all_runs}
        sections["run_views"] = {
            "deleted_while_deleted": self.raw["deleted runs"],
            "active": self._run_names(ViewType.ACTIVE_ONLY),
            "deleted": self._run_names(ViewType.DELETED_ONLY),
        }
        sections["histories"] = {
            f"{run.info.run_name}/{key}": client.get_metric_history(run.info.run_id, key)
            for run in all_runs for key in sorted(run.data.metrics)
        }
        sections["search"] = self._searches(experiment_id)
        sections["logged_models"] = {
            "get": {label: client.get_logged_model(model_id)
                    for label, model_id in sorted(self.seen.model_ids.items())},
            "search": mlflow.search_logged_models(experiment_ids=[experiment_id],
                                                  order_by=[{"field_name": "name"}],
                                                  output_format="list"),
            "search_by_dataset": mlflow.search_logged_models(
                experiment_ids=[experiment_id], output_format="list",
                datasets=[{"dataset_name": dataset.name, "dataset_digest": dataset.digest}]),
        }
        sections["registry"] = self.raw["registry"]
        sections["errors"] = self.raw["errors"]
        sections["fluent_search"] = mlflow.search_runs(
            [experiment_id], order_by=["attributes.run_name ASC"]).to_dict("records")
        self._normalise()

    def _searches(self, experiment_id: str) -> dict[str, Any]:
        client = self.client
        searches: dict[str, Any] = {}
        queries = {
            "lr filter": dict(filter_string="params.lr = '0.1'"),
            "score desc": dict(filter_string="tags.sweep = 'yes'",
                               order_by=["metrics.score DESC"]),
            "score asc, paged by 2": dict(filter_string="tags.sweep = 'yes'",
                                          order_by=["metrics.score ASC"], max_results=2),
            "default order, paged by 2": dict(filter_string="tags.sweep = 'yes'", max_results=2),
            "metric and tag": dict(filter_string="metrics.score > 0.2 and tags.parity = 'even'"),
            "status": dict(filter_string="attributes.status = 'FAILED'"),
            "name like": dict(filter_string="attributes.run_name LIKE 'child-%'",
                              order_by=["attributes.run_name DESC"]),
            "deleted, params asc": dict(run_view_type=ViewType.ALL,
                                        filter_string="tags.sweep = 'yes'",
                                        order_by=["params.lr ASC"]),
            "dataset": dict(filter_string="dataset.name = 'toy-train'"),
            "dataset context": dict(filter_string="dataset.context = 'validation'"),
        }
        for label, query in queries.items():
            pages, token = [], None
            while True:
                page = client.search_runs([experiment_id], page_token=token, **query)
                pages.append([run.info.run_name for run in page])
                token = page.token
                if not token or len(pages) > 20:
                    break
            searches[label] = pages
        return searches

    # --- normalisation -----------------------------------------------------------------------

    def _normalise(self) -> None:
        names = {run_id: f"<run:{name}>" for name, run_id in self.seen.run_ids.items()}
        names.update({model_id: f"<model:{label}>"
                      for label, model_id in self.seen.model_ids.items()})
        default = self.client.get_experiment("0").artifact_location
        root = default[: -len("/0")] if default.endswith("/0") else default
        replacements = sorted(names.items(), key=lambda item: -len(item[0]))
        replacements.append((root, "<root>"))
        if root.startswith("file://"):
            replacements.append((root[len("file://"):], "<root>"))
        self.seen.sections = plain(self.seen.sections, replacements)


def plain(value: Any, replacements: list[tuple[str, str]], key: str | None = None) -> Any:
    """Entities, protos, frames and numbers as comparable plain data, normalised."""
    if key in TIME_KEYS and value is not None and not _is_nan(value):
        return "<time>"
    if isinstance(value, _MlflowObject):
        return {k: plain(v, replacements, k) for k, v in value}
    if isinstance(value, Message):
        from google.protobuf.json_format import MessageToDict

        return plain(MessageToDict(value, preserving_proto_field_name=True), replacements)
    if isinstance(value, dict):
        return {plain(k, replacements): plain(v, replacements, k if isinstance(k, str) else None)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, pd.Timestamp):
        return "<time>"
    if isinstance(value, np.generic):
        value = value.item()
    if _is_nan(value):
        return "NaN"
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, int | float):
        return f"{type(value).__name__}.{value.name}"  # enums
    return value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
