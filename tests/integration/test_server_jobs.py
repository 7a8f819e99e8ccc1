"""MLflow's own database-only server features on a prov store (issue 19, Deliver 4): a real
``mlflow server`` on ``prov+sqlite`` and ``prov+postgresql`` starts with job execution on (no
"requires a database backend store URI" warning) and runs a submitted job to its result."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from test_server import _serve

from mlflow_prov.uri import parse_prov_uri

JOB_SECONDS = 300
TIMEOUT = 60
JOBS = "/ajax-api/3.0/jobs"


@pytest.fixture(params=["prov+sqlite", "prov+postgresql"])
def store(request, tmp_path) -> str:
    if request.param == "prov+sqlite":
        return f"prov+sqlite:///{tmp_path / 'served' / 'mlflow.db'}"
    return request.getfixturevalue("prov_postgres_uri")


def _finished(base: str, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        answer = requests.get(f"{base}{JOBS}/{job_id}", timeout=TIMEOUT)
        assert answer.ok, answer.text
        if answer.json()["status"] in ("SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"):
            return answer.json()
        time.sleep(0.5)
    pytest.fail(f"job {job_id} not finished after {JOB_SECONDS}s")


@pytest.mark.slow
def test_job_execution_runs_on_a_prov_store(store, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("_MLFLOW_SUPPORTED_JOB_FUNCTION_LIST", "job_probe.prov_probe_sum")
    monkeypatch.setenv("_MLFLOW_ALLOWED_JOB_NAME_LIST", "prov_probe_sum")
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")  # MLflow's default
    (tmp_path / "served").mkdir()
    for base in _serve(["server", "--backend-store-uri", store, "--workers", "1"], tmp_path):
        submitted = requests.post(f"{base}{JOBS}/", timeout=TIMEOUT, json={
            "job_name": "prov_probe_sum", "params": {"a": 2, "b": 3}})
        assert submitted.ok, submitted.text
        job = _finished(base, submitted.json()["job_id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["result"] == {"sum": 5}
        found = requests.post(f"{base}{JOBS}/search", json={"job_name": "prov_probe_sum"},
                              timeout=TIMEOUT)
        assert [j["job_id"] for j in found.json()["jobs"]] == [job["job_id"]]
    log = (tmp_path / "server.log").read_text()
    assert "requires a database backend store URI" not in log, log[-3000:]
    assert "requirements not met" not in log, log[-3000:]
    engine = sa.create_engine(parse_prov_uri(store).db_uri)
    with engine.connect() as connection:  # the job row lives in the prov store's database
        assert connection.execute(sa.text("SELECT count(*) FROM jobs")).scalar() == 1
    engine.dispose()
