"""OpenLineage: ``mlflow-prov openlineage`` to a file and to an HTTP receiver on 127.0.0.1,
and the live emitter of a prov store, every event validated against OpenLineage's published
JSON schemas (``tests/data/openlineage/README.md`` says which and why by facet name)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from lineage_scenario import SECRET, write
from referencing import Registry, Resource
from store_templates import prov_store

import mlflow_prov
from exporters.cli import main
from mlflow_prov import openlineage_emitter

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "openlineage"
OWN_SCHEMAS = Path(mlflow_prov.__file__).parent / "openlineage_facets"
CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
# (where the facet sits, its name) -> the schema that validates it, by $id and definition
FACET_SCHEMAS = {
    ("run", "parent"): ("https://openlineage.io/spec/1-0-1/ParentRunFacet.json",
                        "ParentRunFacet"),
    ("run", "tags"): ("https://openlineage.io/spec/facets/2-0-3/TagsRunFacet.json",
                      "TagsRunFacet"),
    ("run", "mlflowprov_params"): (
        "https://w3id.org/mlflow-prov/openlineage/facets/1-0-0/MlflowParamsRunFacet.json",
        "MlflowParamsRunFacet"),
    ("run", "mlflowprov_metrics"): (
        "https://w3id.org/mlflow-prov/openlineage/facets/1-0-0/MlflowMetricsRunFacet.json",
        "MlflowMetricsRunFacet"),
    ("job", "jobType"): ("https://openlineage.io/spec/facets/2-0-2/JobTypeJobFacet.json",
                         "JobTypeJobFacet"),
    ("dataset", "schema"): ("https://openlineage.io/spec/facets/1-0-0/SchemaDatasetFacet.json",
                            "SchemaDatasetFacet"),
    ("dataset", "version"): (
        "https://openlineage.io/spec/facets/1-0-0/DatasetVersionDatasetFacet.json",
        "DatasetVersionDatasetFacet"),
}
FEATURES_CSV = "x,y\n1,2\n3,4\n5,6\n"  # what lineage_scenario's producer writes

# the scenario and the CLI's reads take seconds; each live-emitter test about one
pytestmark = pytest.mark.slow


# --- validation --------------------------------------------------------------------------------

def _registry() -> Registry:
    """Every schema at hand by its $id; the older core versions the facet files $ref resolve
    to the 2-0-2 core (see tests/data/openlineage/README.md)."""
    documents = [json.loads(p.read_text()) for p in
                 (*SCHEMAS.glob("*.json"), *OWN_SCHEMAS.glob("*.json"))]
    core = next(d for d in documents if d["$id"] == CORE)

    def retrieve(uri: str) -> Resource:
        if uri.startswith("https://openlineage.io/spec/") and uri.endswith("/OpenLineage.json"):
            return Resource.from_contents(core)
        raise LookupError(f"no schema for {uri} offline")

    return Registry(retrieve=retrieve).with_resources(  # type: ignore[call-arg]
        (d["$id"], Resource.from_contents(d)) for d in documents)


REGISTRY = _registry()


def _validator(schema_id: str, definition: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{schema_id}#/$defs/{definition}"},
                                registry=REGISTRY,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate(event: dict) -> None:
    """The event against the core RunEvent, and each facet against its own schema: a facet
    with no schema at hand fails (nothing is sent unvalidated)."""
    _validator(CORE, "RunEvent").validate(event)
    uuid.UUID(event["run"]["runId"])
    datetime.fromisoformat(event["eventTime"])
    places = [("run", event["run"]), ("job", event["job"]),
              *(("dataset", d) for d in (*event.get("inputs", ()), *event.get("outputs", ())))]
    for place, holder in places:
        for name, facet in (holder.get("facets") or {}).items():
            assert (place, name) in FACET_SCHEMAS, f"no schema for the {place} facet {name}"
            _validator(*FACET_SCHEMAS[(place, name)]).validate(facet)
            assert urlparse(facet["_schemaURL"]).scheme == "https"
            assert urlparse(facet["_producer"]).scheme == "https"


# --- an HTTP receiver on 127.0.0.1 -----------------------------------------------------------

class Receiver:
    """Records every POSTed event; while ``gate`` is clear each request waits on it."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.arrived.set()
                outer.gate.wait()
                outer.events.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def of_run(self, run_id: str) -> list[str]:
        wanted = str(uuid.UUID(hex=run_id))
        return [e["eventType"] for e in self.events if e["run"]["runId"] == wanted]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def wait_until(condition, seconds: float = 60.0) -> bool:
    """Poll ``condition`` (the emitter sends in the background) up to a generous limit."""
    deadline = threading.Event()
    timer = threading.Timer(seconds, deadline.set)
    timer.start()
    try:
        while not condition():
            if deadline.wait(0.02):
                return bool(condition())
        return True
    finally:
        timer.cancel()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the scenario, exported ----------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> dict:
    """lineage_scenario plus, in ``training``: a run with a pandas dataset, params (one a
    secret) and metrics (one NaN), a failed and a killed run; the model registered."""
    tmp = tmp_path_factory.mktemp("openlineage")
    store = prov_store(tmp / "store")
    ids = write(store)
    mlflow.set_experiment("training")
    with mlflow.start_run(run_name="fit") as fit:
        frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="frame"), context="training")
        mlflow.log_params({"lr": "0.1", "db_password": SECRET})
        for step, loss in enumerate([0.5, 0.125, 0.25]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("gap", math.nan)
    client = mlflow.MlflowClient()
    for status in ("FAILED", "KILLED"):
        run = client.create_run(ids["training"], run_name=status.lower())
        client.set_terminated(run.info.run_id, status)
        ids[status] = run.info.run_id
    version = mlflow.register_model(f"models:/{ids['model']}", "classifier")
    ids.update(fit=fit.info.run_id, store=store, tmp=str(tmp), version=version.version)
    return ids


def cli(*args: str) -> object:
    return CliRunner().invoke(main, ["openlineage", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def file_events(scenario) -> dict[str, list[dict]]:
    """Both experiments through ``--file``: the events of each, in file order."""
    found = {}
    for experiment in ("training", "features"):
        path = Path(scenario["tmp"]) / f"{experiment}.jsonl"
        result = cli("--tracking-uri", scenario["store"], "--experiment", experiment,
                     "--file", str(path))
        assert result.exit_code == 0, result.output
        found[experiment] = [json.loads(line) for line in path.read_text().splitlines()]
    return found


def of_run(events: list[dict], run_id: str) -> list[dict]:
    wanted = str(uuid.UUID(hex=run_id))
    return [e for e in events if e["run"]["runId"] == wanted]


def test_every_event_in_the_file_validates_and_each_run_starts_and_ends(scenario, file_events):
    events = file_events["training"]
    for event in (*events, *file_events["features"]):
        validate(event)
    assert [e["eventType"] for e in of_run(events, scenario["consumer"])] == [
        "START", "COMPLETE"]
    assert [e["eventType"] for e in of_run(events, scenario["FAILED"])] == ["START", "FAIL"]
    assert [e["eventType"] for e in of_run(events, scenario["KILLED"])] == ["START", "ABORT"]
    assert {e["job"]["name"] for e in events} == {"training"}
    assert {e["job"]["namespace"] for e in events} == {"mlflow"}


def test_the_facets_carry_the_runs_values(scenario, file_events):
    events = file_events["training"]
    child_end = of_run(events, scenario["child"])[-1]
    assert child_end["run"]["facets"]["parent"]["run"]["runId"] == str(
        uuid.UUID(hex=scenario["consumer"]))
    assert child_end["run"]["facets"]["parent"]["job"]["name"] == "training"
    assert [i["name"] for i in child_end["inputs"]] == [f"models/{scenario['model']}"]

    fit_start, fit_end = of_run(events, scenario["fit"])
    (frame,) = fit_start["inputs"]
    assert frame["name"] == "datasets/frame"
    logged = mlflow.MlflowClient(scenario["store"]).get_run(scenario["fit"])
    assert frame["facets"]["version"]["datasetVersion"] == (
        logged.inputs.dataset_inputs[0].dataset.digest)
    assert [(f["name"], f["type"]) for f in frame["facets"]["schema"]["fields"]] == [
        ("a", "long"), ("b", "double")]
    params = fit_end["run"]["facets"]["mlflowprov_params"]["params"]
    assert params == {"lr": "0.1", "db_password": "[redacted]"}
    assert "mlflowprov_metrics" not in fit_start["run"]["facets"]  # known once it ended
    metrics = fit_end["run"]["facets"]["mlflowprov_metrics"]["metrics"]
    assert metrics["loss"] == {"count": 3, "min": 0.125, "max": 0.5, "last": 0.25,
                               "firstStep": 0, "lastStep": 2}
    assert metrics["gap"]["last"] == "NaN"

    consumer_end = of_run(events, scenario["consumer"])[-1]
    assert {o["name"] for o in consumer_end["outputs"]} == {
        f"models/{scenario['model']}", f"registered-models/classifier/{scenario['version']}"}
    assert of_run(events, scenario["consumer"])[0]["outputs"] == []
    for experiment_events in file_events.values():
        assert SECRET not in json.dumps(experiment_events)


def test_a_dataset_made_by_one_run_is_the_same_dataset_another_run_reads(scenario, file_events):
    """The producer's artifact, with its sha256, is the consumer's input, by name."""
    (produced,) = of_run(file_events["features"], scenario["producer"])[-1]["outputs"]
    (read,) = of_run(file_events["training"], scenario["consumer"])[0]["inputs"]
    assert produced["name"] == read["name"] == (
        f"runs/{scenario['producer']}/artifacts/data/features.csv")
    assert produced["facets"]["version"]["datasetVersion"] == hashlib.sha256(
        FEATURES_CSV.encode()).hexdigest()


def test_the_url_receives_what_the_file_holds(scenario, file_events, receiver):
    result = cli("--tracking-uri", scenario["store"], "--experiment", "training",
                 "--url", receiver.url)
    assert result.exit_code == 0, result.output
    assert {e["path"] for e in receiver.events} == {"/api/v1/lineage"}
    for event in receiver.events:
        validate({k: v for k, v in event.items() if k != "path"})
    sent = [(e["run"]["runId"], e["eventType"]) for e in receiver.events]
    assert sent == [(e["run"]["runId"], e["eventType"]) for e in file_events["training"]]


def test_bad_destinations_are_one_line_and_leave_no_file(scenario, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    unreachable = cli("--tracking-uri", scenario["store"], "--experiment", "features",
                      "--url", url)
    assert unreachable.exit_code == 1
    assert f"cannot send OpenLineage event 1 of 2 to {url}" in unreachable.output
    assert "Traceback" not in unreachable.output
    missing = tmp_path / "absent" / "events.jsonl"
    nowhere = cli("--tracking-uri", scenario["store"], "--experiment", "features",
                  "--file", str(missing))
    assert nowhere.exit_code == 1 and "does not exist" in nowhere.output
    assert not missing.parent.exists()
    unknown = cli("--tracking-uri", scenario["store"], "--experiment", "nope",
                  "--file", str(tmp_path / "x"))
    assert unknown.exit_code == 1 and "no experiment named or numbered 'nope'" in unknown.output
    both = cli("--experiment", "features", "--url", url, "--file", str(tmp_path / "x"))
    assert both.exit_code == 2 and "either --url URL or --file FILE" in both.output
    assert not (tmp_path / "x").exists()
    assert not list(tmp_path.glob(".*.jsonl.*"))  # no temporary file left behind


# --- the live emitter --------------------------------------------------------------------------

def live_store(tmp_path: Path, monkeypatch, url: str) -> str:
    monkeypatch.setenv(openlineage_emitter.URL_VARIABLE, url)
    store = prov_store(tmp_path / "live")
    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("live")
    return store


def train(name: str, status: str = "FINISHED") -> str:
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("loss", 0.5)
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def emitter() -> openlineage_emitter.LiveEmitter:
    found = mlflow.tracking.MlflowClient()._tracking_client.store._openlineage
    assert found is not None
    return found


def test_the_live_emitter_sends_start_and_complete(tmp_path, monkeypatch, receiver):
    live_store(tmp_path, monkeypatch, receiver.url)
    run_id = train("live")
    assert wait_until(lambda: receiver.of_run(run_id) == ["START", "COMPLETE"]), receiver.events
    for event in receiver.events:
        validate({k: v for k, v in event.items() if k != "path"})
    end = receiver.events[-1]
    assert end["job"]["name"] == "live"
    assert end["run"]["facets"]["mlflowprov_params"]["params"] == {"lr": "0.1"}
    assert end["run"]["facets"]["mlflowprov_metrics"]["metrics"] == {"loss": {"last": 0.5}}


def test_writes_never_wait_for_the_receiver_and_a_full_queue_drops(tmp_path, monkeypatch,
                                                                   receiver, caplog):
    """With the receiver holding the first event and a client allowed to wait a minute, the
    training writes still all return; events beyond the queue are dropped, warned once."""
    monkeypatch.setattr(openlineage_emitter, "SEND_TIMEOUT_S", 60.0)
    monkeypatch.setattr(openlineage_emitter, "QUEUE_SIZE", 2)
    receiver.gate.clear()
    live_store(tmp_path, monkeypatch, receiver.url)
    runs: list[str] = []

    def training() -> None:  # the second run starts once the first event is held
        runs.append(train("r0"))
        receiver.arrived.wait(30)
        runs.extend(train(f"r{i}") for i in (1, 2))

    writer = threading.Thread(target=training)
    with caplog.at_level(logging.WARNING, logger=openlineage_emitter.__name__):
        writer.start()
        writer.join(30)
        assert not writer.is_alive(), "a training write waited on the OpenLineage receiver"
        assert receiver.arrived.is_set() and receiver.events == []
        receiver.gate.set()
        assert emitter().drain(60)
    # the first START in flight, then the first COMPLETE and the second START queued
    assert len(runs) == 3 and len(receiver.events) == 3
    assert [r.message for r in caplog.records].count(
        f"OpenLineage events are dropped: 2 are waiting for {receiver.url}") == 1


def test_an_unreachable_endpoint_changes_no_write(tmp_path, monkeypatch, caplog):
    url = f"http://127.0.0.1:{closed_port()}"
    with caplog.at_level(logging.WARNING, logger=openlineage_emitter.__name__):
        live_store(tmp_path, monkeypatch, url)
        finished, failed = train("ok"), train("broken", "FAILED")
        assert emitter().drain(60)
    assert mlflow.get_run(finished).info.status == "FINISHED"
    assert mlflow.get_run(failed).info.status == "FAILED"
    assert mlflow.get_run(finished).data.metrics == {"loss": 0.5}
    dropped = [r for r in caplog.records if "are dropped" in r.message]
    assert len(dropped) == 1 and url in dropped[0].message


def test_no_variable_no_emitter(tmp_path, monkeypatch):
    monkeypatch.delenv(openlineage_emitter.URL_VARIABLE, raising=False)
    mlflow.set_tracking_uri(prov_store(tmp_path / "quiet"))
    train("quiet")
    assert mlflow.tracking.MlflowClient()._tracking_client.store._openlineage is None
