"""``mlflow-prov ui``: refuses what it cannot serve in one line, and serves a prov store with
MLflow's UI and the provenance pages on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient

from exporters.cli import main

STARTUP_SECONDS = 180


@pytest.mark.parametrize(("uri", "names"), [
    ("sqlite:///plain.db", "is not a prov store"),
    ("prov:///no/such/folder", "no prov store at /no/such/folder"),
])
def test_a_store_it_cannot_serve_is_one_line(tmp_path, uri, names):
    result = CliRunner().invoke(main, ["ui", "--backend-store-uri", uri])
    assert result.exit_code == 2 and names in result.output
    assert "Traceback" not in result.output
    assert not Path("/no/such/folder").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_mlflow_and_the_pages(tmp_path):
    store = f"prov://{tmp_path / 'runs'}"
    MlflowClient(store).create_experiment("seen-in-the-pages")
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    with (tmp_path / "ui.log").open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow-prov")), "ui", "--backend-store-uri", store,
             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
            env=environment, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            try:
                if requests.get(f"{base}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert requests.get(base, timeout=30).status_code == 200
        assert "seen-in-the-pages" in requests.get(f"{base}/prov/", timeout=30).text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
