"""What journaling an artifact upload through the ``prov`` server app costs in statements.

The upload goes through the app as ``mlflow server --serve-artifacts`` serves it (MLflow's own
endpoints and the ``prov`` app's hooks on one Flask app, in this process, over a real store),
and every statement the upload runs on the journal's database is counted below SQLAlchemy
(:mod:`statement_counter`). Plain MLflow runs none for an upload, so the count is absolute;
transaction control (``BEGIN``, ``COMMIT``) is left out, as a plain write's own transaction
has it too. The limits (docs/internals.md, "The journal's write path"): one journal statement
on PostgreSQL, two on sqlite, for an upload to a run this server created or already recorded
an upload for (an upload to a run another process made looks the run up once, then costs the
same); and for the file's lineage node and edge (mlflow_prov/lineage_edges.py) one more
statement on PostgreSQL, two on sqlite.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import flask
import pytest
from mlflow import MlflowClient
from mlflow.server import ARTIFACTS_DESTINATION_ENV_VAR, SERVE_ARTIFACTS_ENV_VAR, handlers
from statement_counter import count_statements
from store_templates import prov_store

from exporters.app.permissions import OpenAccess
from exporters.app.setup import install
from exporters.compat import backend_store_env_var
from mlflow_prov.artifact_uploads import upload_engine
from mlflow_prov.journal import read_events, verify_chain
from mlflow_prov.uri import parse_prov_uri
from mlflow_prov.vocabulary import EventKind, run_chain

ROOT = Path(__file__).resolve().parents[2]
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")
LIMITS = {"postgresql": 1, "sqlite": 2}
LINEAGE_TABLES = "prov_lineage_"


@dataclass(frozen=True)
class App:
    uri: str
    client: flask.testing.FlaskClient
    experiment_id: str


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, tmp_path, monkeypatch) -> Iterator[App]:
    """MLflow's server endpoints and the ``prov`` app on one Flask app, serving artifacts
    from a folder, over a prov store on sqlite or PostgreSQL."""
    uri = (prov_store(tmp_path / "store") if request.param == "sqlite"
           else request.getfixturevalue("prov_postgres_uri"))
    monkeypatch.setenv(backend_store_env_var(), uri)
    monkeypatch.setenv(SERVE_ARTIFACTS_ENV_VAR, "true")
    monkeypatch.setenv(ARTIFACTS_DESTINATION_ENV_VAR, str(tmp_path / "served"))
    monkeypatch.setattr(handlers, "_artifact_repo", None)  # MLflow's per-process cache
    served = flask.Flask("upload-statements")
    for path, handler, methods in handlers.get_endpoints():
        served.add_url_rule(path, handler.__name__, handler, methods=methods)
    install(served, OpenAccess())
    experiment_id = MlflowClient(uri).create_experiment(
        "uploads", artifact_location="mlflow-artifacts:/uploads")
    yield App(uri, served.test_client(), experiment_id)


@dataclass(frozen=True)
class Counted:
    journal: list[str]
    lineage: list[str]


def _upload(app: App, run_id: str, name: str, data: bytes) -> Counted:
    """PUT one file as MLflow's client does; the statements it ran, the journal's and the
    lineage tables'."""
    engine = upload_engine(parse_prov_uri(app.uri).db_uri)
    with count_statements(engine) as counted:
        answer = app.client.put(f"/api/2.0/mlflow-artifacts/artifacts/uploads/{run_id}/"
                                f"artifacts/{name}", data=data)
    assert answer.status_code == 200, answer.text
    statements = [sql for sql in counted
                  if not sql.strip().upper().startswith(TRANSACTION_CONTROL)]
    lineage = [sql for sql in statements if LINEAGE_TABLES in sql]
    return Counted([sql for sql in statements if sql not in lineage], lineage)


def _uploads(uri: str, run_id: str) -> list[dict]:
    return [event.payload for event in read_events(uri, run_id=run_id)
            if event.kind == EventKind.RUN_ARTIFACT_UPLOADED]


def test_an_upload_costs_one_journal_statement_on_postgresql_and_two_on_sqlite(app):
    dialect = upload_engine(parse_prov_uri(app.uri).db_uri).dialect.name
    client = MlflowClient(app.uri)
    run_id = client.create_run(app.experiment_id).info.run_id
    files = [("model.bin", os.urandom(100_000)), ("notes.txt", b"second upload"),
             ("late.txt", b"after the run ended"), ("notes.txt", b"uploaded again")]
    counts = []
    for name, data in files:
        if name == "late.txt":
            client.set_terminated(run_id)
        counts.append(_upload(app, run_id, name, data))
    print(f"\n{dialect}: journal, lineage statements per upload "
          f"{[(len(c.journal), len(c.lineage)) for c in counts]}")
    for (name, _), counted in zip(files, counts, strict=True):
        assert len(counted.journal) <= LIMITS[dialect], (name, counted)
        assert 1 <= len(counted.lineage) <= LIMITS[dialect], (name, counted)
    assert len(counts[-1].lineage) == 1, counts[-1]  # a path seen before: no second edge
    assert _uploads(app.uri, run_id) == [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files]
    assert verify_chain(app.uri, run_chain(run_id)).intact


def test_an_upload_to_a_run_another_process_wrote_is_recorded_once_looked_up(app):
    """The server knows neither the run nor its head: the first upload reads both (the
    head under lock), the next one is back to the limit; the chain stays one."""
    script = textwrap.dedent(f"""
        from mlflow import MlflowClient
        client = MlflowClient({app.uri!r})
        print(client.create_run({app.experiment_id!r}).info.run_id)
    """)
    made = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    run_id = made.stdout.strip().splitlines()[-1]
    dialect = upload_engine(parse_prov_uri(app.uri).db_uri).dialect.name
    first = _upload(app, run_id, "a.txt", b"first")
    second = _upload(app, run_id, "b.txt", b"second")
    assert len(first.journal) > LIMITS[dialect], first  # the run's row and head were read
    assert len(second.journal) <= LIMITS[dialect], second
    assert [payload["path"] for payload in _uploads(app.uri, run_id)] == ["a.txt", "b.txt"]
    report = verify_chain(app.uri, run_chain(run_id))
    assert report.intact and report.length == 3, report


def test_an_upload_outside_any_run_is_stored_and_not_journaled(app):
    answer = app.client.put("/api/2.0/mlflow-artifacts/artifacts/uploads/"
                            f"{'0' * 32}/artifacts/orphan.txt", data=b"no such run")
    assert answer.status_code == 200, answer.text
    assert list(read_events(app.uri, run_id="0" * 32)) == []
