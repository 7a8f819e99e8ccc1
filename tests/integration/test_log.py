"""`mlflow-prov log`: the journal as git log shows it, on real sqlite and PostgreSQL prov
stores, through a real `mlflow server --app-name prov`, and its error paths."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pytest
from click.testing import CliRunner
from store_templates import prov_store

from exporters.cli import main


@dataclass
class History:
    uri: str
    experiment_id: str
    run_id: str
    other_run_id: str


def write_history(uri: str) -> History:
    """A run whose tag changes twice and is deleted, a status change, metrics, params."""
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.set_experiment("audited").experiment_id
    with mlflow.start_run(run_name="train") as run:
        mlflow.set_tag("stage", "dev")
        mlflow.log_param("lr", 0.1)
        mlflow.log_metrics({"loss": 1.0, "acc": 0.5}, step=0)
        mlflow.log_metric("loss", 0.5, step=7)
        mlflow.set_tag("stage", "prod")
        mlflow.delete_tag("stage")
    mlflow.MlflowClient().set_terminated(run.info.run_id, "FAILED")
    with mlflow.start_run(run_name="other") as other:
        mlflow.set_tag("stage", "other")
    mlflow.set_tracking_uri(None)
    return History(uri, experiment_id, run.info.run_id, other.info.run_id)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    return write_history(prov_store(tmp_path_factory.mktemp("log") / "runs"))


def log(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["log", *args])
    return result.exit_code, result.output


def test_tag_history_reads_old_to_new_with_its_writer(history):
    code, output = log("--tracking-uri", history.uri, "--run", history.run_id,
                       "--key", "stage")
    assert code == 0, output
    blocks = output.strip().split("\n\n")
    assert [b.splitlines()[0].split()[4] for b in blocks] == [
        "run.tags_set", "run.tags_set", "run.tag_deleted"]
    assert blocks[0].splitlines()[2:] == ["    stage: dev"]
    assert blocks[1].splitlines()[2:] == ["    stage: dev → prod"]
    assert blocks[2].splitlines()[2:] == ["    stage: prod → (deleted)"]
    assert all(f"run {history.run_id}" in b.splitlines()[0] for b in blocks)
    assert all(b.splitlines()[1].startswith("    by ") and " pid " in b for b in blocks)


def test_status_metrics_and_kind_prefix(history):
    code, output = log("--tracking-uri", history.uri, "--experiment", "audited",
                       "--kind", "run.updated", "--json")
    assert code == 0, output
    events = [json.loads(line) for line in output.splitlines()]
    statuses = [(c["old"], c["new"]) for e in events for c in e["changes"]
                if c["what"] == "status"]
    assert statuses == [("RUNNING", "FINISHED"), ("FINISHED", "FAILED"),
                        ("RUNNING", "FINISHED")]
    code, output = log("--tracking-uri", history.uri, "--run", history.run_id,
                       "--kind", "run.metrics_logged")
    assert "metrics: 2 point(s): acc, loss, steps 0–0" in output
    assert "metrics: 1 point(s): loss, steps 7–7" in output
    code, output = log("--tracking-uri", history.uri, "--experiment", history.experiment_id,
                       "--kind", "experiment", "--json")
    assert [json.loads(line)["kind"] for line in output.splitlines()] == ["experiment.created"]


def test_since_and_max_count(history):
    code, output = log("--tracking-uri", history.uri, "--since", "1h", "-n", "3", "--json")
    assert code == 0 and len(output.splitlines()) == 3
    code, output = log("--tracking-uri", history.uri, "--since", "2999-01-01", "--json")
    assert code == 0 and output == ""


def test_redact_hides_a_key_the_user_names_in_every_event_about_it(history):
    code, output = log("--tracking-uri", history.uri, "--run", history.run_id,
                       "--redact", "stage|lr", "--json")
    assert code == 0, output
    events = [json.loads(line) for line in output.splitlines()]
    shown = [(c["what"], c["old"], c["new"]) for e in events for c in e["changes"]
             if c["what"] in ("stage", "lr")]
    assert shown == [("stage", None, "[redacted]"), ("lr", None, "[redacted]"),
                     ("stage", "[redacted]", "[redacted]"), ("stage", "[redacted]", "(deleted)")]
    assert not {"dev", "prod", "0.1"} & {str(v) for e in events
                                        for v in json.dumps(e["payload"]).split('"')}
    assert all("state" not in e["payload"] and "digests" not in e["payload"] for e in events)


@pytest.mark.parametrize(("args", "message"), [
    (["--redact", "("], "--redact '(' is not a key or a regular expression"),
    (["--kind", "run.nonsense"], "unknown event kind 'run.nonsense'"),
    (["--since", "yesterday"], "--since 'yesterday' is not a time"),
    (["--experiment", "no-such-experiment"], "no experiment named or numbered"),
])
def test_bad_filters_are_one_line(history, args, message):
    code, output = log("--tracking-uri", history.uri, *args)
    assert code == 1 and message in output and output.count("\n") == 1, output


def test_stores_without_a_journal_say_what_to_use(tmp_path):
    code, output = log("--tracking-uri", f"prov://{tmp_path / 'nowhere'}")
    assert code == 1 and "no prov store at" in output and output.count("\n") == 1
    code, output = log("--tracking-uri", f"sqlite:///{tmp_path / 'plain.db'}")
    assert code == 1 and "not a prov store URI" in output and "--app-name prov" in output


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_error(404)

    def log_message(self, *args) -> None:
        """Quiet: the test reads the CLI's output."""


@pytest.fixture
def plain_http_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that has no /prov/api/ (answers 404)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    # shutdown() waits for the loop's next poll: 0.5 s by default
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_without_the_prov_app_says_how_to_start_one(plain_http_server):
    code, output = log("--tracking-uri", plain_http_server, "--experiment", "1")
    assert code == 1 and "--app-name prov" in output and output.count("\n") == 1, output
    code, output = log("--tracking-uri", plain_http_server)
    assert code == 1 and "add --experiment or --run" in output


@pytest.mark.slow
def test_log_through_the_server_journal_api(history, tmp_path):
    from test_server import _serve

    _, local = log("--tracking-uri", history.uri, "--run", history.run_id, "--json")
    for base in _serve(["server", "--app-name", "prov", "--backend-store-uri", history.uri,
                        "--workers", "1"], tmp_path):
        code, remote = log("--tracking-uri", base, "--run", history.run_id, "--json")
        assert code == 0, remote
        assert remote == local


@pytest.mark.slow  # a fresh PostgreSQL database
@pytest.mark.postgres
def test_log_on_postgresql(prov_postgres_uri):
    found = write_history(prov_postgres_uri)
    code, output = log("--tracking-uri", found.uri, "--run", found.run_id, "--key", "stage",
                       "--json")
    assert code == 0, output
    changes = [c for line in output.splitlines() for c in json.loads(line)["changes"]]
    assert [(c["old"], c["new"]) for c in changes] == [
        (None, "dev"), ("dev", "prod"), ("prod", "(deleted)")]


def test_secret_tag_values_are_redacted_in_every_kind_of_event(tmp_path):
    """Tags and params of an experiment, a logged model or a model version are journaled as
    mappings too: the text log redacts a secret-named key's value there as for a run's."""
    secret = "s3cr3t-value-not-for-logs"
    uri = prov_store(tmp_path / "runs")
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment("secrets", tags={"db_password": secret})
    client.create_logged_model(experiment_id, name="m", params={"api_token": secret})
    client.create_registered_model("registered", tags={"api_key": secret})
    code, output = log("--tracking-uri", uri)
    assert code == 0, output
    assert "db_password" in output and "api_token" in output and "api_key" in output
    assert secret not in output


def test_models_artifacts_and_versions_read_as_what_they_are(tmp_path):
    """A logged model reads as its name and source run, not its stored row; an artifact
    manifest as a file count and size; a model version as the model and the run it came
    from."""
    uri = prov_store(tmp_path / "runs")
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("wording", artifact_location=str(tmp_path / "art"))
    run_id = client.create_run(experiment_id).info.run_id
    (tmp_path / "weights.bin").write_bytes(b"\0" * 2500)
    client.log_artifact(run_id, str(tmp_path / "weights.bin"))
    model = client.create_logged_model(experiment_id, name="net", source_run_id=run_id,
                                       params={"depth": "3"})
    client.finalize_logged_model(model.model_id, "READY")
    client.set_terminated(run_id)
    client.create_registered_model("churn")
    client.create_model_version("churn", "s3://bucket/net", run_id=run_id)
    client.set_registered_model_alias("churn", "champion", "1")
    code, output = log("--tracking-uri", uri)
    assert code == 0, output
    assert f"logged model: net ({model.model_id})" in output
    assert f"source run: {run_id}" in output and "depth: 3" in output
    assert "status: PENDING → READY" in output
    assert "artifacts: 1 file(s), 2.5 kB: weights.bin" in output
    assert "version: churn v1" in output and f"from: {run_id}" in output
    assert "alias champion: version 1" in output
    assert '"artifact_location"' not in output, "the stored row is verification's, not news"
