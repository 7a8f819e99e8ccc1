"""``mlflow gc`` on a prov store: each permanent deletion leaves a tombstone in the journal,
``verify`` passes afterwards, and a row deleted with plain SQL is still reported."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.cli import cli as mlflow_cli
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

from exporters.cli import main
from mlflow_prov.journal import read_events, verify_chain
from mlflow_prov.uri import parse_prov_uri
from mlflow_prov.vocabulary import EventKind, experiment_chain, logged_model_chain, run_chain


def _store_with_deletions(uri: str) -> dict[str, str]:
    """A kept run, a deleted run, a deleted experiment with a run, a deleted LoggedModel."""
    client = MlflowClient(uri)
    kept_experiment = client.create_experiment("kept")
    ids = {"kept": client.create_run(kept_experiment).info.run_id,
           "deleted": client.create_run(kept_experiment).info.run_id,
           "smuggled": client.create_run(kept_experiment).info.run_id}
    client.log_param(ids["deleted"], "lr", "0.1")
    client.log_metric(ids["deleted"], "loss", 0.5, step=1)
    client.set_terminated(ids["deleted"])
    client.delete_run(ids["deleted"])
    ids["experiment"] = client.create_experiment("gone")
    ids["in_experiment"] = client.create_run(ids["experiment"]).info.run_id
    client.delete_experiment(ids["experiment"])
    model = client.create_logged_model(kept_experiment, name="m")
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.delete_logged_model(model.model_id)
    ids["model"] = model.model_id
    return ids


def _gc(uri: str) -> None:
    """MLflow's own ``mlflow gc`` command, as a user types it."""
    result = CliRunner().invoke(mlflow_cli, ["gc", "--backend-store-uri", uri,
                                             "--tracking-uri", uri])
    assert result.exit_code == 0, result.output + repr(result.exception)


def _verify(uri: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri])
    return result.exit_code, result.output.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("store", ["prov_uri", "prov_postgres_uri"])
def test_gc_leaves_tombstones_verify_accepts_and_sql_deletes_are_still_reported(store,
                                                                                request):
    uri = request.getfixturevalue(store)
    ids = _store_with_deletions(uri)
    _gc(uri)

    client = MlflowClient(uri)
    for run_id in (ids["deleted"], ids["in_experiment"]):
        with pytest.raises(MlflowException, match="not found"):
            client.get_run(run_id)
        events = list(read_events(uri, run_id=run_id))
        assert events[-1].kind == EventKind.RUN_PURGED, [e.kind for e in events]
        assert verify_chain(uri, run_chain(run_id)).intact
    experiment_events = [e for e in read_events(uri, experiment_id=ids["experiment"])
                         if e.chain == experiment_chain(ids["experiment"])]
    assert experiment_events[-1].kind == EventKind.EXPERIMENT_PURGED
    model_chain = logged_model_chain(ids["model"])
    assert [e.kind for e in read_events(uri) if e.chain == model_chain][-1] == \
        EventKind.LOGGED_MODEL_PURGED
    code, lines = _verify(uri)
    assert code == 0, lines
    assert not any("deleted outside" in line for line in lines), lines

    engine = sa.create_engine(parse_prov_uri(uri).db_uri)
    with engine.begin() as connection:  # a run removed behind MLflow's back
        for table in ("tags", "runs"):
            connection.execute(sa.text(f"DELETE FROM {table} WHERE run_uuid = :run"),
                               {"run": ids["smuggled"]})
    engine.dispose()
    code, lines = _verify(uri)
    assert code == 1, lines
    assert [line for line in lines if "deleted outside MLflow's API" in line] == [
        f"run {ids['smuggled']}: the journal has this run but MLflow's runs table has no row "
        "for it (deleted outside MLflow's API)"]
