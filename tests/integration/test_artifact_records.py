"""Artifact files are journaled when a run ends (a LoggedModel is finalized) and at each
upload through ``mlflow server``; ``verify --artifacts`` names every file swapped, truncated,
added or removed since, and an export says whether its hashes match the journal's."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from store_templates import prov_store
from test_server import _free_port, _server_environment, _stop, _wait_until_healthy

from exporters.cli import main
from mlflow_prov.journal import read_events
from mlflow_prov.vocabulary import EventKind

ROOT = Path(__file__).resolve().parents[2]
FILES = {"keep.txt": b"kept as it was", "swap.bin": b"\x00" * 64, "trunc.txt": b"x" * 100,
         "gone.txt": b"removed later", "deep/nested/weights.bin": os.urandom(4096)}


@dataclass(frozen=True)
class Logged:
    uri: str
    tampered: str
    untouched: str
    model: str
    tampered_root: Path
    running: str


def _log(client: MlflowClient, run_id: str, folder: Path) -> None:
    for name, data in FILES.items():
        source = folder / run_id / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
        client.log_artifact(run_id, str(source), os.path.dirname(name) or None)


def _tamper(root: Path) -> None:
    """Swap (same size), truncate, remove and add one file each."""
    (root / "swap.bin").write_bytes(b"\x01" * 64)
    (root / "trunc.txt").write_bytes(b"x" * 10)
    (root / "gone.txt").unlink()
    (root / "added.txt").write_bytes(b"never recorded")


def _verify(uri: str, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri, "--artifacts", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output.splitlines()


def _expected_problems(where: str) -> set[str]:
    return {f"{where} artifact 'swap.bin': changed", f"{where} artifact 'trunc.txt': changed",
            f"{where} artifact 'gone.txt': removed", f"{where} artifact 'added.txt': added"}


def _found(lines: list[str]) -> set[str]:
    """Each problem line cut to what it names: ``<object> artifact '<path>': <verdict>``."""
    return {line.split(" since")[0] for line in lines if " artifact '" in line}


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Logged:
    folder = tmp_path_factory.mktemp("artifact-records")
    uri = prov_store(folder / "store")
    client = MlflowClient(uri)
    runs = [client.create_run("0").info.run_id for _ in range(2)]
    for run_id in runs:
        _log(client, run_id, folder / "sources")
        client.set_terminated(run_id)
    model = client.create_logged_model("0", source_run_id=runs[1], name="m")
    weights = folder / "weights.bin"
    weights.write_bytes(b"model weights")
    client.log_model_artifact(model.model_id, str(weights))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    root = Path(client.get_run(runs[0]).info.artifact_uri.removeprefix("file://"))
    running = client.create_run("0").info.run_id
    client.log_artifact(running, str(weights))
    return Logged(uri, runs[0], runs[1], model.model_id, root, running)


def test_a_run_end_records_every_file_with_size_and_sha256(logged):
    manifests = [event for event in read_events(logged.uri, run_id=logged.untouched)
                 if event.kind == EventKind.RUN_ARTIFACTS_RECORDED]
    assert len(manifests) == 1
    assert manifests[0].payload["files"] == [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in sorted(FILES.items())]


@pytest.mark.slow
def test_verify_names_each_file_changed_added_or_removed_and_passes_untouched_ones(logged,
                                                                                   tmp_path):
    code, lines = _verify(logged.uri, "--run", logged.untouched)
    assert code == 0, lines

    _tamper(logged.tampered_root)
    model_root = Path(MlflowClient(logged.uri).get_logged_model(logged.model)
                      .artifact_location.removeprefix("file://"))
    (model_root / "weights.bin").write_bytes(b"other weights")
    code, lines = _verify(logged.uri)
    assert code == 1, lines
    assert _found(lines) == _expected_problems(f"run {logged.tampered}") | {
        f"logged model {logged.model} artifact 'weights.bin': changed"}
    assert f"note: run {logged.running}: 1 artifact file(s) but no artifact record: the run " \
        "is still running (its files are recorded when it ends)" in lines
    assert lines[-1].startswith("FAILED")

    exported = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--tracking-uri", logged.uri, "--experiment",
                                       "0", "--out", str(exported), "--format", "prov-json"])
    assert result.exit_code == 0, result.output
    verdicts = {}
    for document in exported.rglob("run-*/*.json"):
        for activity in json.loads(document.read_text()).get("activity", {}).values():
            if "mlflowprov:artifactsVerified" in activity:
                verdicts[activity["mlflowprov:runId"]] = activity["mlflowprov:artifactsVerified"]
    assert verdicts == {logged.tampered: False, logged.untouched: True}


@dataclass(frozen=True)
class Served:
    url: str
    uri: str
    destination: Path


@pytest.fixture
def served(prov_postgres_uri, tmp_path) -> Iterator[Served]:
    """A real ``mlflow server --app-name prov`` over PostgreSQL, serving artifacts from a
    folder; it runs this checkout's code."""
    port, destination, log = _free_port(), tmp_path / "served-artifacts", tmp_path / "server.log"
    environment = {**_server_environment(), "PYTHONPATH": str(ROOT)}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--app-name", "prov",
             "--backend-store-uri", prov_postgres_uri, "--artifacts-destination",
             str(destination), "--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=tmp_path,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, log)
        yield Served(url, prov_postgres_uri, destination)
    finally:
        _stop(process)


@pytest.mark.slow
def test_uploads_through_the_server_are_recorded_and_verified(served):
    client = MlflowClient(served.url)
    experiment_id = client.create_experiment("served")
    runs = [client.create_run(experiment_id).info.run_id for _ in range(2)]
    for run_id in runs:
        for name, data in FILES.items():
            client.log_text(run_id, data.decode("latin-1"), name)
        client.set_terminated(run_id)
    client.log_text(runs[1], "after the end", "late.txt")  # recorded after the run ended

    uploads = [event for event in read_events(served.uri, run_id=runs[1])
               if event.kind == EventKind.RUN_ARTIFACT_UPLOADED]
    assert [event.payload["path"] for event in uploads] == [*FILES, "late.txt"]
    assert uploads[-1].payload["sha256"] == hashlib.sha256(b"after the end").hexdigest()
    page = requests.get(f"{served.url}/prov/runs/{runs[1]}", timeout=60)
    assert page.status_code == 200 and "late.txt" in page.text and \
        hashlib.sha256(b"after the end").hexdigest() in page.text
    lineage = requests.get(f"{served.url}/prov/api/lineage", params={"run_id": runs[1]},
                           timeout=60)
    assert lineage.status_code == 200, lineage.text
    assert {f"artifact:{runs[1]}/{name}" for name in [*FILES, "late.txt"]} <= {
        node["id"] for node in lineage.json()["nodes"]}  # each upload, as soon as it is stored

    code, lines = _verify(served.uri, "--artifact-server", served.url,
                          "--experiment", experiment_id)
    assert code == 0, lines
    _tamper(served.destination / experiment_id / runs[0] / "artifacts")
    code, lines = _verify(served.uri, "--artifact-server", served.url,
                          "--experiment", experiment_id)
    assert code == 1, lines
    assert _found(lines) == _expected_problems(f"run {runs[0]}")


def test_a_file_logged_after_a_local_run_ended_is_named_and_recorded_when_it_ends_again(
        tmp_path):
    """On a local store the client writes artifact files itself: one logged after the run
    ended is never recorded, and reads as added (nothing tells it from a file put there
    outside MLflow); verify says both are possible and how to record it, and ending the run
    again does."""
    uri = prov_store(tmp_path / "store")
    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    client.log_text(run_id, "during", "during.txt")
    client.set_terminated(run_id)
    client.log_text(run_id, "after the end", "late.txt")

    code, lines = _verify(uri, "--run", run_id)
    assert code == 1, lines
    assert _found(lines) == {f"run {run_id} artifact 'late.txt': added"}
    assert f"note: run {run_id}: 1 file(s) added after its run-end record: either logged " \
        "after the run ended" in "\n".join(lines)

    client.set_terminated(run_id)
    code, lines = _verify(uri, "--run", run_id)
    assert code == 0, lines
    manifests = [event for event in read_events(uri, run_id=run_id)
                 if event.kind == EventKind.RUN_ARTIFACTS_RECORDED]
    assert [file["path"] for file in manifests[-1].payload["files"]] == ["during.txt", "late.txt"]
