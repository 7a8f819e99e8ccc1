"""Every payload the store writes matches its kind's typed definition in the vocabulary:
the describers that write payloads and the readers that mypy checks against those
definitions agree on every key."""

from __future__ import annotations

import typing

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow_runs import log_dataset
from store_templates import prov_store

from mlflow_prov.journal import read_events
from mlflow_prov.vocabulary import PAYLOAD_TYPES, EventKind


def _write_one_of_everything(uri: str) -> None:
    import mlflow

    client = MlflowClient(uri)
    experiment_id = client.create_experiment("typed", tags={"a": "1"})
    client.set_experiment_tag(experiment_id, "a", "2")
    client.delete_experiment_tag(experiment_id, "a")
    client.rename_experiment(experiment_id, "typed-2")
    run_id = client.create_run(experiment_id, tags={"t": "1"}).info.run_id
    client.log_param(run_id, "long", "x" * 7000)
    client.set_tag(run_id, "t", "y" * 9000)
    client.delete_tag(run_id, "t")
    client.log_metric(run_id, "m", 1.0, step=1)
    log_dataset(client, run_id, mlflow.data.from_pandas(pd.DataFrame({"x": [1]}), name="d"),
                "train")
    model = client.create_logged_model(experiment_id, name="m", source_run_id=run_id,
                                       tags={"k": "v"}, params={"p": "1"})
    client.log_batch(run_id, metrics=[Metric("acc", 0.5, 1, 0, model_id=model.model_id)])
    client.set_logged_model_tags(model.model_id, {"k": "w"})
    client.delete_logged_model_tag(model.model_id, "k")
    client.log_model_params(model.model_id, {"q": "2"})
    client.finalize_logged_model(model.model_id, "READY")
    client.update_run(run_id, name="renamed")
    client.set_terminated(run_id)
    client.create_registered_model("reg", tags={"o": "me"}, description="d")
    version = client.create_model_version("reg", f"runs:/{run_id}/m", run_id=run_id)
    client.set_registered_model_alias("reg", "best", version.version)
    client.set_model_version_tag("reg", version.version, "s", "ok")
    client.transition_model_version_stage("reg", version.version, "Staging")
    client.delete_run(run_id)
    client.restore_run(run_id)
    client.delete_experiment(experiment_id)


def test_every_written_payload_has_exactly_the_keys_its_type_declares(tmp_path):
    uri = prov_store(tmp_path / "store")
    _write_one_of_everything(uri)
    seen: set[EventKind] = set()
    for event in read_events(uri):
        declared = PAYLOAD_TYPES[EventKind(event.kind)]
        keys = set(typing.get_type_hints(declared))
        required = set(getattr(declared, "__required_keys__", ()))
        assert set(event.payload) <= keys, (event.kind, set(event.payload) - keys)
        assert required <= set(event.payload), (event.kind, required - set(event.payload))
        seen.add(EventKind(event.kind))
    assert len(seen) >= 25, sorted(seen)
