"""``mlflow-prov ui``: refuses what it cannot serve in one line, and serves a prov store with
MLflow's UI and the provenance pages on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient

from exporters.cli import main

STARTUP_SECONDS = 180


@pytest.mark.parametrize(("uri", "names"), [
    ("sqlite:///plain.db", "is not a prov store"),
    ("prov:///no/such/folder", "no prov store at /no/such/folder"),
    ("prov+sqlite:///:memory:", "lives only in the memory of the process that logs to it"),
])
def test_a_store_it_cannot_serve_is_one_line(tmp_path, uri, names):
    result = CliRunner().invoke(main, ["ui", "--backend-store-uri", uri])
    assert result.exit_code == 2 and names in result.output
    assert "Traceback" not in result.output
    assert not Path("/no/such/folder").exists() and not Path("/:memory:").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_port_in_use_is_one_line(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mlflow.db").touch()
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--backend-store-uri", f"prov://{tmp_path}/runs",
                                           "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port" in result.output and "Traceback" not in result.output
    assert "starting MLflow server" not in result.output


def _live(pids: set[int]) -> list[int]:
    """The processes among ``pids`` that still run (a zombie holds no port)."""
    running = []
    for pid in sorted(pids):
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
        except psutil.NoSuchProcess:
            continue
    return running


def _group_members(group_ids: set[int]) -> set[int]:
    members = set()
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in group_ids:
                members.add(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _port_is_free(port: int) -> bool:
    """Bind and listen as a server would (SO_REUSEADDR: closed connections in TIME_WAIT do
    not count, only something still listening does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def _printed_url(process: subprocess.Popen, log: Path) -> str:
    """The pages' address the command prints once its server answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        printed = re.search(r"provenance pages: (\S+)", log.read_text())
        if printed:
            return printed.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no address printed in {STARTUP_SECONDS}s: {log.read_text()[-3000:]}")


# slow: starts mlflow-prov ui and its mlflow server (uvicorn) as real subprocesses
@pytest.mark.slow
@pytest.mark.parametrize(("stop_signal", "workers"), [(signal.SIGTERM, 1), (signal.SIGINT, 2)],
                         ids=["TERM", "INT-two-workers"])
def test_ui_serves_the_pages_and_a_stop_signal_leaves_nothing(tmp_path, stop_signal, workers):
    store = f"prov://{tmp_path / 'runs'}"
    MlflowClient(store).create_experiment("seen-in-the-pages")
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    log = tmp_path / "ui.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow-prov")), "ui", "--backend-store-uri", store,
             "--port", str(port), "--workers", str(workers)], stdout=output,
            stderr=subprocess.STDOUT, cwd=tmp_path, env=environment, start_new_session=True)
    started = {process.pid}
    try:
        url = _printed_url(process, log)
        assert url == f"http://127.0.0.1:{port}/prov/"
        assert "seen-in-the-pages" in requests.get(url, timeout=30).text
        assert requests.get(url.removesuffix("prov/"), timeout=30).status_code == 200
        started |= {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
        groups = {os.getpgid(pid) for pid in _live(started)}
        assert len(started) >= 3 + (workers if workers > 1 else 0)  # uvicorn forks workers
        assert len(groups) == 2, "the server runs in a process group of its own"

        process.send_signal(stop_signal)
        assert process.wait(timeout=STARTUP_SECONDS) == 0, log.read_text()[-3000:]
        assert _live(started | _group_members(groups)) == []
        assert _port_is_free(port)
    finally:
        for pid in _live(started):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
