"""Sealed runs and model versions: every write to them is refused with MLflow's INVALID_STATE
and one sentence naming the seal, on a local sqlite store, on PostgreSQL and through a real
``mlflow server --app-name prov-auth`` (where only MANAGE permission may seal); each refusal
is journaled, the journal still verifies, and unsealing lets writes through again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import (
    Dataset,
    DatasetInput,
    LoggedModelOutput,
    Metric,
    Param,
    RunTag,
)
from mlflow.exceptions import MlflowException
from store_templates import prov_store
from test_server import _serve

from exporters.commands.seal import seal_command, unseal_command
from exporters.verify import verify_store
from mlflow_prov.journal import read_events_page
from mlflow_prov.seals import seal
from mlflow_prov.vocabulary import EventKind, registered_model_chain, run_chain

pytestmark = pytest.mark.slow
ADMIN = ("admin", "admin-password-0123456789")
ALICE = ("alice", "alice-password-0123456789")
REASON = "published in the paper"
SOURCE = "s3://example-bucket/model"
TIMEOUT = 60


@dataclass
class World:
    """One store with a sealed run (and its experiment's logged model) and a registered
    model whose version 1 is sealed (in Production, alias ``champion``) and 2 is not."""

    backend: str
    client_uri: str  # what the MLflow client talks to
    store_uri: str  # the prov store itself (its journal is read directly)
    experiment_id: str
    run_id: str
    other_run_id: str
    model_id: str
    model: str

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.client_uri, registry_uri=self.client_uri)

    @property
    def reader(self) -> MlflowClient:
        """The store read directly: what a refused write left, without another request."""
        return MlflowClient(tracking_uri=self.store_uri, registry_uri=self.store_uri)


def _build(backend: str, client_uri: str, store_uri: str,
           seal_with: Callable[[str, str], None]) -> World:
    client = MlflowClient(tracking_uri=client_uri, registry_uri=client_uri)
    experiment_id = client.create_experiment(f"sealed-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id, run_name="published").info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 1.0, 0, 0)], params=[Param("lr", "0.1")],
                     tags=[RunTag("kept", "yes")])
    model_id = client.create_logged_model(experiment_id, name="net").model_id
    other_run_id = client.create_run(experiment_id).info.run_id
    model = f"churn-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    for _ in range(2):
        client.create_model_version(model, SOURCE, run_id=run_id)
    client.set_model_version_tag(model, "1", "kept", "yes")
    client.set_registered_model_alias(model, "champion", "1")
    client.transition_model_version_stage(model, "1", "Production")
    world = World(backend, client_uri, store_uri, experiment_id, run_id, other_run_id,
                  model_id, model)
    seal_with(f"runs:/{run_id}", REASON)
    seal_with(f"models:/{model}/1", REASON)
    return world


def _auth_config(place: Path) -> Path:
    config = place / "basic_auth.ini"
    config.write_text("[mlflow]\ndefault_permission = READ\n"
                      f"database_uri = sqlite:///{place / 'auth.db'}\n"
                      f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
                      "authorization_function = "
                      "mlflow.server.auth:authenticate_request_basic_auth\n")
    return config


def _cli(command: Any, *args: str, user: tuple[str, str] | None = None) -> Any:
    env = {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]} if user \
        else {}
    return CliRunner().invoke(command, list(args), env=env)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "server"])
def world(request, tmp_path_factory) -> Iterator[World]:
    place = tmp_path_factory.mktemp(f"seals-{request.param}")
    if request.param == "postgresql":
        with request.getfixturevalue("prov_postgres_stores")() as uri:
            yield _build("postgresql", uri, uri, lambda target, why: seal(uri, target, why))
        return
    uri = prov_store(place / "runs")
    if request.param == "sqlite":
        yield _build("sqlite", uri, uri, lambda target, why: seal(uri, target, why))
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(_auth_config(place)))
        patch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "seal-test-secret")
        for base in _serve(["server", "--app-name", "prov-auth", "--backend-store-uri", uri,
                            "--workers", "1"], place):
            patch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
            patch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
            patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 500 fails at once

            def over_http(target: str, why: str, base: str = base) -> None:
                answer = _cli(seal_command, target, "--reason", why, "--tracking-uri", base,
                              user=ADMIN)
                assert answer.exit_code == 0, answer.output

            yield _build("server", base, uri, over_http)


@pytest.fixture(autouse=True)
def _credentials(request, monkeypatch) -> None:
    """The function-scoped environment reset drops nothing the server's client needs."""
    if "world" in request.fixturenames and request.getfixturevalue("world").backend == "server":
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def _run_state(world: World) -> dict[str, Any]:
    client = world.reader
    run = client.get_run(world.run_id)
    return {"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics,
            "history": len(client.get_metric_history(world.run_id, "loss")),
            "status": run.info.status, "end_time": run.info.end_time,
            "stage": run.info.lifecycle_stage, "name": run.info.run_name,
            "inputs": len(run.inputs.dataset_inputs),
            "outputs": len(run.outputs.model_outputs) if run.outputs else 0,
            "experiment": client.get_experiment(world.experiment_id).lifecycle_stage}


def _version_state(world: World) -> dict[str, Any]:
    client = world.reader
    version = client.get_model_version(world.model, "1")
    return {"tags": version.tags, "description": version.description,
            "stage": version.current_stage, "aliases": sorted(version.aliases),
            "second": client.get_model_version(world.model, "2").current_stage,
            "model": client.get_registered_model(world.model).name}


RUN_WRITES: dict[str, Callable[[MlflowClient, World], Any]] = {
    "set_tag": lambda c, w: c.set_tag(w.run_id, "new", "x"),
    "set_run_name_tag": lambda c, w: c.set_tag(w.run_id, "mlflow.runName", "renamed"),
    "delete_tag": lambda c, w: c.delete_tag(w.run_id, "kept"),
    "log_param": lambda c, w: c.log_param(w.run_id, "new_param", 2),
    "log_metric": lambda c, w: c.log_metric(w.run_id, "loss", 0.5, step=1),
    "log_batch": lambda c, w: c.log_batch(w.run_id, metrics=[Metric("loss", 0.4, 0, 2)],
                                          params=[Param("batch", "8")],
                                          tags=[RunTag("batch", "y")]),
    "log_metric_async": lambda c, w: c.log_metric(w.run_id, "loss", 0.3, step=3,
                                                  synchronous=False).wait(),
    "set_terminated": lambda c, w: c.set_terminated(w.run_id, "FAILED"),
    "update_run_name": lambda c, w: c.update_run(w.run_id, name="renamed"),
    "delete_run": lambda c, w: c.delete_run(w.run_id),
    "log_inputs": lambda c, w: c.log_inputs(w.run_id, datasets=[
        DatasetInput(Dataset("data", "d1g3st", "local", "/data/train.csv"))]),
    "log_outputs": lambda c, w: c.log_outputs(w.run_id, [LoggedModelOutput(w.model_id, 4)]),
    "delete_experiment": lambda c, w: c.delete_experiment(w.experiment_id),
}
VERSION_WRITES: dict[str, Callable[[MlflowClient, World], Any]] = {
    "set_version_tag": lambda c, w: c.set_model_version_tag(w.model, "1", "new", "x"),
    "delete_version_tag": lambda c, w: c.delete_model_version_tag(w.model, "1", "kept"),
    "update_version": lambda c, w: c.update_model_version(w.model, "1", description="new"),
    "transition_stage": lambda c, w: c.transition_model_version_stage(w.model, "1",
                                                                      "Archived"),
    # the version as a number: MLflow's own archiving query compares the integer column with
    # a text version on PostgreSQL, and fails there on plain MLflow too
    "archive_by_promotion": lambda c, w: c.transition_model_version_stage(
        w.model, 2, "Production", archive_existing_versions=True),
    "alias_to_sealed": lambda c, w: c.set_registered_model_alias(w.model, "new", "1"),
    "move_alias_away": lambda c, w: c.set_registered_model_alias(w.model, "champion", "2"),
    "delete_alias": lambda c, w: c.delete_registered_model_alias(w.model, "champion"),
    "delete_version": lambda c, w: c.delete_model_version(w.model, "1"),
    "rename_model": lambda c, w: c.rename_registered_model(w.model, f"{w.model}-renamed"),
    "delete_model": lambda c, w: c.delete_registered_model(w.model),
}


# Tests of one backend's own part: the fixture's other backends are not set up for them.
ON_SERVER = pytest.mark.parametrize("world", ["server"], indirect=True)  # prov-auth, pages
ON_SQLITE = pytest.mark.parametrize("world", ["sqlite"], indirect=True)  # once is enough


def _chain_events(world: World, chain: str) -> list[Any]:
    return read_events_page(world.store_uri, chain=chain, limit=10_000).events


def _assert_refused(world: World, write: Callable[[], Any], chain: str,
                    refused_kind: EventKind, target: str, asynchronous: bool = False) -> None:
    before = len(_chain_events(world, chain))
    with pytest.raises(MlflowException) as refused:
        write()
    message = refused.value.message
    if not asynchronous:  # an async batch's failure is MLflow's own wrapper around it
        assert refused.value.error_code == "INVALID_STATE", message
    assert f"{target} is sealed" in message and repr(REASON) in message, message
    assert f"mlflow-prov unseal {target} --reason" in message, message
    after = _chain_events(world, chain)
    assert len(after) == before + 1, "one refusal journaled, nothing else"
    assert after[-1].kind == refused_kind
    assert after[-1].payload["seal"]["why"] == REASON
    assert "who" not in after[-1].payload["seal"], "who sealed: the seal event's writer"


@pytest.mark.parametrize("name", list(RUN_WRITES))
def test_every_write_to_a_sealed_run_is_refused_and_journaled(world, name):
    client, before = world.client, _run_state(world)
    _assert_refused(world, lambda: RUN_WRITES[name](client, world), run_chain(world.run_id),
                    EventKind.RUN_WRITE_REFUSED, f"runs:/{world.run_id}",
                    asynchronous=name.endswith("_async"))
    assert _run_state(world) == before


@pytest.mark.parametrize("name", list(VERSION_WRITES))
def test_every_write_to_a_sealed_model_version_is_refused_and_journaled(world, name):
    client, before = world.client, _version_state(world)
    _assert_refused(world, lambda: VERSION_WRITES[name](client, world),
                    registered_model_chain(world.model), EventKind.MODEL_VERSION_WRITE_REFUSED,
                    f"models:/{world.model}/1")
    assert _version_state(world) == before


def test_writes_to_what_is_not_sealed_go_through_and_the_journal_verifies(world):
    client = world.client
    client.set_tag(world.other_run_id, "free", "yes")
    client.log_metric(world.other_run_id, "loss", 0.2)
    client.set_model_version_tag(world.model, "2", "free", "yes")
    client.set_registered_model_tag(world.model, "free", "yes")
    assert str(client.create_model_version(world.model, SOURCE).version) == "3"
    assert client.get_run(world.other_run_id).data.tags["free"] == "yes"
    report = verify_store(world.store_uri)
    assert report.ok, [str(problem) for problem in report.problems]


@ON_SERVER
def test_only_manage_permission_may_seal_through_prov_auth(world):
    created = requests.post(f"{world.client_uri}/api/2.0/mlflow/users/create", auth=ADMIN,
                            json={"username": ALICE[0], "password": ALICE[1]}, timeout=TIMEOUT)
    assert created.ok, created.text
    target = f"runs:/{world.other_run_id}"
    answer = requests.post(f"{world.client_uri}/prov/api/seal", auth=ALICE, timeout=TIMEOUT,
                           json={"target": target, "reason": "mine now"})
    assert answer.status_code == 403 and "MANAGE" in answer.json()["message"], answer.text
    refused = _cli(seal_command, target, "--reason", "x", "--tracking-uri", world.client_uri,
                   user=ALICE)
    assert refused.exit_code != 0 and "403" in refused.output and "MANAGE" in refused.output
    no_reason = requests.post(f"{world.client_uri}/prov/api/seal", auth=ADMIN,
                              json={"target": target}, timeout=TIMEOUT)
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["message"]
    assert not [e for e in _chain_events(world, run_chain(world.other_run_id))
                if e.kind == EventKind.RUN_SEALED]


@ON_SQLITE
def test_an_experiment_seal_covers_its_runs_until_unsealed(world, tmp_path):
    client = world.client
    experiment_id = client.create_experiment(f"whole-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    sealed = _cli(seal_command, "--experiment", experiment_id, "--reason", REASON,
                  "--tracking-uri", world.client_uri)
    assert sealed.exit_code == 0, sealed.output
    assert f"sealed runs:/{run_id}" in sealed.output, sealed.output
    for write in (lambda: client.set_tag(run_id, "k", "v"),
                  lambda: client.set_experiment_tag(experiment_id, "k", "v")):
        with pytest.raises(MlflowException, match=f"experiments:/{experiment_id}"):
            write()
    unsealed = _cli(unseal_command, "--experiment", experiment_id, "--reason", "done",
                    "--tracking-uri", world.client_uri)
    assert unsealed.exit_code == 0, unsealed.output
    client.set_tag(run_id, "k", "v")
    client.set_experiment_tag(experiment_id, "k", "v")


@ON_SQLITE
def test_bad_seal_targets_are_named_in_one_line(world):
    for args, named in (((f"runs:/{uuid.uuid4().hex}",), "is not in the store"),
                        (("models:/churn/latest",), "a seal names a version number"),
                        (("somewhere",), "runs:/RUN_ID, models:/NAME/VERSION"),
                        (("--experiment", "no-such-experiment"), "no experiment named")):
        answer = _cli(seal_command, *args, "--reason", "r", "--tracking-uri",
                      world.client_uri)
        assert answer.exit_code == 1 and named in answer.output, answer.output
        assert "Traceback" not in answer.output and len(answer.output.splitlines()) == 1
    answer = _cli(seal_command, f"runs:/{world.other_run_id}", "--reason", " ",
                  "--tracking-uri", world.client_uri)
    assert answer.exit_code == 1 and "--reason" in answer.output


@ON_SQLITE
def test_the_seal_record_is_canonical_json_in_the_head(world):
    import sqlite3

    from mlflow_prov.uri import parse_prov_uri

    path = parse_prov_uri(world.store_uri).db_uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        held = dict(connection.execute("SELECT chain, sealed FROM prov_journal_heads "
                                       "WHERE sealed IS NOT NULL").fetchall())
    assert set(held) == {run_chain(world.run_id), registered_model_chain(world.model)}
    version = json.loads(held[registered_model_chain(world.model)])["versions"]["1"]
    assert version["stage"] == "Production" and version["aliases"] == ["champion"]


@ON_SERVER
def test_the_pages_show_the_seal_with_who_and_why(world):
    base = world.client_uri
    pages = {path: requests.get(f"{base}/prov/{path}", auth=ADMIN, timeout=TIMEOUT)
             for path in (f"runs/{world.run_id}", f"models/{world.model}/versions/1",
                          f"models/{world.model}/versions/2")}
    assert all(page.status_code == 200 for page in pages.values()), pages
    for path in (f"runs/{world.run_id}", f"models/{world.model}/versions/1"):
        html = pages[path].text
        assert 'id="seal"' in html and "published in the paper" in html, path
        assert f"by {ADMIN[0]}" in html, "who: the signed-in user"
    assert 'id="seal"' not in pages[f"models/{world.model}/versions/2"].text
    missing = requests.get(f"{base}/prov/models/{world.model}/versions/99", auth=ADMIN,
                           timeout=TIMEOUT)
    assert missing.status_code == 404 and "no version 99" in missing.text


def test_unsealing_lets_writes_through_again(world):
    uri = world.client_uri
    user = ADMIN if world.backend == "server" else None
    client = world.client
    for target in (f"runs:/{world.run_id}", f"models:/{world.model}/1"):
        answer = _cli(unseal_command, target, "--reason", "retrained", "--tracking-uri", uri,
                      user=user)
        assert answer.exit_code == 0 and f"unsealed {target}" in answer.output, answer.output
    client.set_tag(world.run_id, "after", "unseal")
    client.set_model_version_tag(world.model, "1", "after", "unseal")
    assert client.get_run(world.run_id).data.tags["after"] == "unseal"
    run_kinds = [e.kind for e in _chain_events(world, run_chain(world.run_id))]
    assert run_kinds[-3:] == [EventKind.RUN_WRITE_REFUSED, EventKind.RUN_UNSEALED,
                              EventKind.RUN_TAGS_SET]
    sealed = next(e for e in _chain_events(world, run_chain(world.run_id))
                  if e.kind == EventKind.RUN_SEALED)
    assert sealed.payload == {"target": f"runs:/{world.run_id}", "reason": REASON}
    if world.backend == "server":  # who: the signed-in user, seen from the server
        assert sealed.writer["user"] == ADMIN[0] and "client_address" in sealed.writer
    report = verify_store(world.store_uri)
    assert report.ok, [str(problem) for problem in report.problems]


def test_a_journal_from_before_seals_gets_its_column_and_can_be_sealed(prov_uri):
    import sqlite3

    from mlflow_prov.uri import parse_prov_uri

    run_id = MlflowClient(prov_uri).create_run("0").info.run_id
    path = parse_prov_uri(prov_uri).db_uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:  # the heads table as older versions made it
        connection.execute("ALTER TABLE prov_journal_heads DROP COLUMN sealed")
    seal(prov_uri, f"runs:/{run_id}", REASON)  # the column comes back
    with pytest.raises(MlflowException, match="is sealed"):
        MlflowClient(prov_uri).set_tag(run_id, "k", "v")
