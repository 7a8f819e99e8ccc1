"""prov URI forms resolve to the right database and artifact root; bad ones say what to do."""

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from mlflow_prov.memory_store import MEMORY_URI
from mlflow_prov.uri import ACCEPTED_FORMS, database_uri, is_prov_uri, parse_prov_uri


def test_embedded_absolute_dir_holds_database_and_artifacts(tmp_path):
    location = parse_prov_uri(f"prov://{tmp_path}/runs")
    assert location.db_uri == f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert location.default_artifact_root == (tmp_path / "runs" / "artifacts").as_uri()
    assert location.embedded_dir == tmp_path / "runs"


def test_embedded_relative_dir_resolves_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = parse_prov_uri("prov:experiments/runs")
    assert location.db_uri == f"sqlite:///{tmp_path}/experiments/runs/mlflow.db"


def test_sqlite_file_keeps_artifacts_beside_it(tmp_path):
    location = parse_prov_uri(f"prov+sqlite://{tmp_path}/store.db")
    assert location.db_uri == f"sqlite:///{tmp_path}/store.db"
    assert location.default_artifact_root == (tmp_path / "artifacts").as_uri()


@pytest.mark.parametrize("uri, db_uri", [
    ("prov+postgresql://me@db.example:5432/mlflow", "postgresql://me@db.example:5432/mlflow"),
    ("prov+postgresql+psycopg2://me:pw@h/mlflow", "postgresql+psycopg2://me:pw@h/mlflow"),
    ("prov+mysql://root@127.0.0.1:3306/test", "mysql://root@127.0.0.1:3306/test"),
])
def test_server_backends_map_to_mlflow_database_uris(uri, db_uri):
    location = parse_prov_uri(uri)
    assert location.db_uri == db_uri
    assert location.default_artifact_root == (Path.cwd() / "mlartifacts").as_uri()


def test_artifact_root_query_parameter_wins(tmp_path):
    location = parse_prov_uri(f"prov://{tmp_path}/runs?artifact_root=s3://bucket/ml")
    assert location.default_artifact_root == "s3://bucket/ml"
    assert location.artifact_root_in_uri
    assert location.db_uri == f"sqlite:///{tmp_path}/runs/mlflow.db"


def test_other_query_parameters_pass_through_to_the_database():
    location = parse_prov_uri("prov+postgresql://me@h/db?sslmode=require&artifact_root=/a")
    assert location.db_uri == "postgresql://me@h/db?sslmode=require"
    assert location.default_artifact_root == "/a"


@pytest.mark.parametrize("uri, reason", [
    ("prov://runs/here", "reads as a host"),
    ("prov:", "no directory"),
    ("prov+oracle://h/db", "unknown scheme"),
    ("prov+postgresql://", "needs a host and a database"),
    ("prov+sqlite://", "needs a file path"),
    ("prov:///tmp/x?colour=blue", "unknown query parameter"),
])
def test_malformed_uris_raise_mlflow_exception_listing_accepted_forms(uri, reason):
    with pytest.raises(MlflowException) as raised:
        parse_prov_uri(uri)
    message = raised.value.message
    assert reason in message
    assert uri in message
    assert all(form in message for form in ACCEPTED_FORMS)


@pytest.mark.parametrize("uri, expected", [
    ("prov:///x", True), ("PROV+postgresql://h/db", True), ("prov:x", True),
    ("sqlite:///x.db", False), ("http://127.0.0.1:5000", False), ("provenance:///x", False),
    ("", False), (None, False),
])
def test_is_prov_uri(uri, expected):
    assert is_prov_uri(uri) is expected


def test_extra_leading_slashes_still_mean_the_absolute_path(tmp_path):
    location = parse_prov_uri(f"prov:///{tmp_path}/runs")
    assert location.db_uri == f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert location.embedded_dir == tmp_path / "runs"


def test_memory_is_a_database_in_memory_not_a_file_at_the_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = parse_prov_uri(MEMORY_URI)
    assert location.in_memory and location.embedded_dir is None
    assert ":memory:" not in location.db_uri and "vfs=memdb" in location.db_uri
    assert location.default_artifact_root == (tmp_path / "mlartifacts").as_uri()
    assert parse_prov_uri(f"{MEMORY_URI}?artifact_root=/a").default_artifact_root == "/a"


@pytest.mark.parametrize("uri, reason", [
    ("prov:///:memory:", "is not a folder"),
    ("prov::memory:", "is not a folder"),
    ("prov:////:memory:", "is not a folder"),
    ("prov+sqlite://:memory:", "reads as a host"),
])
def test_memory_in_other_forms_is_refused_with_the_spelling_that_works(uri, reason, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MlflowException) as raised:
        parse_prov_uri(uri)
    first_line = raised.value.message.splitlines()[0]
    assert uri in first_line and reason in first_line and MEMORY_URI in first_line


def test_mlflows_database_features_get_the_database_another_process_can_open(tmp_path):
    assert database_uri(f"prov+sqlite:///{tmp_path}/m.db") == f"sqlite:///{tmp_path}/m.db"
    assert database_uri(f"prov://{tmp_path}/runs") == f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert database_uri("prov+postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"
    for refused in (MEMORY_URI, "sqlite:///m.db", "prov+oracle://h/db", "prov://host/dir"):
        assert database_uri(refused) is None, refused
