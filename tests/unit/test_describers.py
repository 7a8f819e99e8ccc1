"""Every describer takes the hooked MLflow method's own parameters, by name.

Arguments are bound once against MLflow's signature and passed by name, so a describer whose
parameter names drifted from MLflow's would lose a value (MLflow calls ``tag``/``key`` what a
describer might call ``tag_or_key``). This compares them all, and shows a keyword call keeps
the old value.
"""

from __future__ import annotations

import inspect

import mlflow
import pytest
from mlflow.entities import ExperimentTag
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
from store_templates import prov_store

from mlflow_prov.events import REGISTRY_HOOKS, TRACKING_HOOKS
from mlflow_prov.events_genai import GENAI_REGISTRY_HOOKS, GENAI_TRACKING_HOOKS
from mlflow_prov.journal import read_events

HOOKED = [(TrackingStore, name, hook) for name, hook in TRACKING_HOOKS.items()]
HOOKED += [(RegistryStore, name, hook) for name, hook in REGISTRY_HOOKS.items()]
HOOKED += [(TrackingStore, name, hook) for name, hook in GENAI_TRACKING_HOOKS.items()]
HOOKED += [(RegistryStore, name, hook) for name, hook in GENAI_REGISTRY_HOOKS.items()]


def _parameters(function, skip: int = 1) -> list[str]:
    return list(inspect.signature(function).parameters)[skip:]


@pytest.mark.parametrize(("base", "name", "hook"), HOOKED, ids=[n for _, n, _ in HOOKED])
def test_describer_takes_mlflows_parameters(base, name, hook) -> None:
    mlflow_parameters = _parameters(getattr(base, name))  # without self
    assert _parameters(hook.describe) == mlflow_parameters, hook.describe.__name__


def test_keyword_calls_keep_the_old_value(tmp_path) -> None:
    client = mlflow.MlflowClient(prov_store(tmp_path / "store"))
    experiment_id = client.create_experiment("kw")
    store = client._tracking_client.store
    store.set_experiment_tag(experiment_id, ExperimentTag("team", "a"))
    store.set_experiment_tag(experiment_id=experiment_id, tag=ExperimentTag("team", "b"))
    store.delete_experiment_tag(experiment_id=experiment_id, key="team")
    events = [(e.kind, e.payload.get("old_value")) for e in read_events(client.tracking_uri)
              if e.kind.startswith("experiment.tag")]
    assert events == [("experiment.tag_set", None), ("experiment.tag_set", "a"),
                      ("experiment.tag_deleted", "b")]
