"""The generic describer: a write MLflow adds in a future release is journaled, without the
secret values it was given."""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.dbmodels.models import SqlExperimentTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from store_templates import prov_store

from mlflow_prov.events_generic import arguments_digest, entity_ids, unhooked_writes
from mlflow_prov.journal import read_events
from mlflow_prov.store import ProvTrackingMixin

PLANTED = "sk-planted0123456789abcdefXYZ"


class FutureMlflowStore(SqlAlchemyStore):
    """MLflow's store as a later release might ship it: with a write nobody hooked."""

    def pin_experiment_widget(self, experiment_id: str, widget_name: str,
                              api_key: str | None = None, fail: bool = False) -> None:
        with self.ManagedSessionMaker(read_only=False) as session:
            session.merge(SqlExperimentTag(experiment_id=int(experiment_id), key="widget",
                                           value=widget_name))
            session.flush()
            if fail:
                raise ValueError("the widget failed after writing")


class FutureProvStore(ProvTrackingMixin, FutureMlflowStore):
    """What mlflow-prov builds on it, with no change to mlflow-prov."""


@pytest.fixture(scope="module")
def future_store(tmp_path_factory) -> tuple[str, FutureProvStore]:
    uri = prov_store(tmp_path_factory.mktemp("future") / "runs")
    return uri, FutureProvStore(uri)


def test_a_write_added_by_a_future_mlflow_is_journaled(future_store) -> None:
    uri, store = future_store
    assert "pin_experiment_widget" in vars(FutureProvStore)
    store.pin_experiment_widget("0", "gauge", api_key=PLANTED)
    [event] = [e for e in read_events(uri) if e.payload.get("method") == "pin_experiment_widget"]
    assert event.chain == "store:pin_experiment_widget"
    assert event.kind == "store.write" and event.experiment_id == "0"
    assert event.payload["ids"] == {"experiment_id": "0", "widget_name": "gauge"}
    assert event.payload["arguments_sha256"] == arguments_digest(
        {"experiment_id": "0", "widget_name": "gauge", "api_key": "[redacted]", "fail": False})
    assert PLANTED not in json.dumps(event.payload)


def test_a_write_rolled_back_leaves_no_event(future_store) -> None:
    uri, store = future_store
    before = len(list(read_events(uri)))
    with pytest.raises(MlflowException, match="failed after writing"):
        store.pin_experiment_widget("0", "broken", fail=True)
    assert len(list(read_events(uri))) == before


def test_the_digest_covers_arguments_but_never_a_secret() -> None:
    one = arguments_digest({"name": "gw", "secret_value": {"api_key": PLANTED}})
    other = arguments_digest({"name": "gw", "secret_value": {"api_key": "another"}})
    assert one == other  # the secret is redacted before hashing: no guess can be confirmed
    assert one != arguments_digest({"name": "gw2", "secret_value": {"api_key": PLANTED}})
    assert entity_ids({"secret_id": "s-1", "token_name": PLANTED, "url": "x"}) == {
        "secret_id": "s-1"}


def test_reads_and_our_own_hooks_are_not_wrapped_generically() -> None:
    names = unhooked_writes(FutureProvStore)
    assert not any(name.startswith(("get_", "search_", "_")) for name in names)
    assert "log_batch" not in names and "set_tag" not in names
