"""``mlflow server`` and ``mlflow ui`` serve a prov store; remote writes are journaled with
the identity of the client that made them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from mlflow_prov.identity import process_identity
from mlflow_prov.journal import read_events, verify_chain

CLIENT = Path(__file__).with_name("remote_client.py")
STARTUP_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_environment() -> dict[str, str]:
    """The test's environment for a server, without the client's tracking settings. A server
    starts no job runner (eight processes per server on a two-core machine) unless the test
    sets ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` itself (test_server_jobs.py does)."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY", "PYTEST"))}}


def _wait_until_healthy(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # a loaded machine: ask again
            pass
        time.sleep(0.5)
    pytest.fail(f"server not healthy after {STARTUP_SECONDS}s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the server by its own process group (its pid), never by name."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _serve(args: list[str], tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", *args, "--host", "127.0.0.1", "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT, env=_server_environment(), cwd=tmp_path,
            start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, base_url, log)
        yield base_url
    finally:
        _stop(process)


@pytest.fixture(params=["prov", "prov+postgresql"])
def backend_uri(request, tmp_path) -> str:
    if request.param == "prov":
        return f"prov://{tmp_path / 'served'}"
    return request.getfixturevalue("prov_postgres_uri")


@pytest.fixture
def server(backend_uri, tmp_path) -> Iterator[str]:
    yield from _serve(["server", "--backend-store-uri", backend_uri, "--workers", "1",
                       "--artifacts-destination", str(tmp_path / "served-artifacts")], tmp_path)


def _run_remote_client(server_url: str, send_identity: bool = False) -> dict:
    environment = _server_environment()
    if send_identity:
        environment["MLFLOW_PROV_SEND_CLIENT_IDENTITY"] = "true"
    result = subprocess.run([sys.executable, str(CLIENT), server_url], capture_output=True,
                            text=True, timeout=120, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_remote_writes_are_served_and_journaled_with_client_identity(server, backend_uri):
    client_run = _run_remote_client(server, send_identity=True)
    run_id = client_run["run_id"]

    fetched = requests.get(f"{server}/api/2.0/mlflow/runs/get", params={"run_id": run_id},
                           timeout=10).json()["run"]
    assert fetched["data"]["params"] == [{"key": "optimizer", "value": "adam"}]
    assert {t["key"]: t["value"] for t in fetched["data"]["tags"]}["phase"] == "main"
    assert fetched["info"]["status"] == "FINISHED"
    history = MlflowClient(server).get_metric_history(run_id, "loss")
    assert [m.value for m in history] == [1.0, 0.5, 1.0 / 3]
    artifacts = requests.get(f"{server}/api/2.0/mlflow/artifacts/list",
                             params={"run_id": run_id, "path": "notes"}, timeout=10).json()
    assert [f["path"] for f in artifacts["files"]] == ["notes/hello.txt"]
    info = requests.get(f"{server}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["store_type"] == "SqlStore"

    events = list(read_events(backend_uri, run_id=run_id))
    kinds = [e.kind for e in events]
    assert kinds[0] == "run.created" and kinds[-1] == "run.updated"
    assert events[0].payload["environment"] is None, "the server's environment is not the run's"
    assert {"run.params_logged", "run.metrics_logged", "run.tags_set"} <= set(kinds)
    overwrite = [e for e in events if e.kind == "run.tags_set" and "phase" in e.payload["tags"]][-1]
    assert overwrite.payload["old"] == {"phase": "warmup"}
    me = process_identity()
    for event in events:
        assert event.writer["pid"] == client_run["pid"], event
        assert event.writer["user"] == me["user"] and event.writer["host"] == me["host"]
        assert event.writer["client_address"] == "127.0.0.1"
        assert event.writer["via"]["pid"] != client_run["pid"]
    assert verify_chain(backend_uri, f"run:{run_id}").intact


def _export_over_http(server_url: str, run_id: str, out: Path) -> dict:
    """Export from the server's URL: no journal there; artifacts hashed and packed into the
    crate through the server's artifact proxy."""
    from exporters import ExportOptions, export

    result = export("remote", out, tracking_uri=server_url,
                    options=ExportOptions(formats=("prov-json", "rocrate"), show_progress=False,
                                          crate_as_folder=True))
    crate = result.experiment_dir / f"run-{run_id}.crate"
    assert (crate / "artifacts" / "notes" / "hello.txt").read_text() == "hello from the client"
    return json.loads((result.experiment_dir / f"run-{run_id}" / "prov.json").read_text())


@pytest.mark.slow
def test_export_reads_a_remote_server_over_http(server, backend_uri, tmp_path):
    import hashlib

    client_run = _run_remote_client(server)
    writers = [e.writer for e in read_events(backend_uri, run_id=client_run["run_id"])]
    assert writers and all(set(w) == {"client_address", "via"} for w in writers), (
        "without MLFLOW_PROV_SEND_CLIENT_IDENTITY the client announces nothing")
    document = _export_over_http(server, client_run["run_id"], tmp_path / "out")
    entities = document["entity"].values()
    notes = next(e for e in entities if e.get("mlflowprov:path") == "notes/hello.txt")
    expected = hashlib.sha256(b"hello from the client").hexdigest()
    assert notes["mlflowprov:sha256"] == expected
    assert notes["mlflowprov:size"] == {"$": str(len(b"hello from the client")), "type": "xsd:int"}
    run = next(a for a in document["activity"].values()
               if a.get("mlflowprov:runId") == client_run["run_id"])
    assert run["mlflowprov:historyAvailable"] is False


@pytest.mark.slow
def test_mlflow_ui_browses_a_prov_store(tmp_path):
    store = f"prov://{tmp_path / 'runs'}"
    client = MlflowClient(store)
    experiment_id = client.create_experiment("browse-me")
    client.log_param(client.create_run(experiment_id).info.run_id, "seen", "yes")
    for base_url in _serve(["ui", "--backend-store-uri", store], tmp_path):
        page = requests.get(base_url, timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        found = requests.post(f"{base_url}/ajax-api/2.0/mlflow/experiments/search",
                              json={"max_results": 10}, timeout=10).json()
        assert "browse-me" in [e["name"] for e in found["experiments"]]
        runs = requests.post(f"{base_url}/ajax-api/2.0/mlflow/runs/search",
                             json={"experiment_ids": [experiment_id]}, timeout=10).json()
        assert runs["runs"][0]["data"]["params"] == [{"key": "seen", "value": "yes"}]


@pytest.mark.slow
def test_verify_over_http_on_a_schema_newer_than_known_is_a_409_naming_the_fix(tmp_path):
    """An MLflow upgrade that migrated the store past what verify was checked against is a
    state of the store a client can act on (upgrade mlflow-prov), not a server failure."""
    import sqlite3

    store = tmp_path / "runs"
    client = MlflowClient(f"prov://{store}")
    experiment_id = client.create_experiment("migrated")
    client.create_run(experiment_id)
    for base_url in _serve(["server", "--app-name", "prov", "--backend-store-uri",
                            f"prov://{store}", "--workers", "1"], tmp_path):
        checked = requests.get(f"{base_url}/prov/api/verify",
                               params={"experiment_id": experiment_id}, timeout=60)
        assert checked.status_code == 200, "the server has its store open before the change"
        with sqlite3.connect(store / "mlflow.db") as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'fffffffffff1'")
        answer = requests.get(f"{base_url}/prov/api/verify",
                              params={"experiment_id": experiment_id}, timeout=60)
        assert answer.status_code == 409, answer.text[:500]
        body = answer.json()
        assert body["error_code"] == "PROV_SCHEMA_UNKNOWN"
        assert "fffffffffff1" in body["message"] and "upgrade mlflow-prov" in body["message"]
