"""Who-wrote-it identity and the allow-listed, redacted environment capture."""

import json
import threading

import pytest

from mlflow_prov.environment import REDACTED, capture_environment, looks_like_credential
from mlflow_prov.identity import (
    CLIENT_HEADER,
    ClientIdentityHeaderProvider,
    _parse_claims,
    process_identity,
    writer_identity,
)


def test_process_identity_has_user_host_pid(monkeypatch):
    for variable in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(variable, raising=False)
    identity = process_identity()
    assert set(identity) == {"user", "host", "pid"}
    assert identity["pid"] > 0 and identity["user"] and identity["host"]


def test_rank_variables_are_recorded(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    identity = process_identity()
    assert identity["rank"] == 3 and identity["local_rank"] == 1


def test_slurm_rank_stands_in_when_rank_is_unset(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert process_identity()["rank"] == 5


def test_outside_a_request_the_writer_is_this_process_and_thread():
    assert writer_identity() == {**process_identity(), "thread": threading.get_native_id()}


def test_inside_a_request_the_writer_is_the_client_with_its_address():
    flask = pytest.importorskip("flask")
    app = flask.Flask("t")
    claims = {"user": "alice", "host": "laptop", "pid": 42, "rank": 1, "evil": "x"}
    with app.test_request_context(headers={CLIENT_HEADER: json.dumps(claims)},
                                  environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        writer = writer_identity()
    assert writer["user"] == "alice" and writer["pid"] == 42 and writer["rank"] == 1
    assert writer["client_address"] == "10.1.2.3"
    assert "evil" not in writer
    assert writer["via"]["pid"] == process_identity()["pid"]
    assert writer["via"]["thread"] == threading.get_native_id()


@pytest.mark.parametrize("header", ["", "not json", "[1,2]", "{\"user\": [1]}", "x" * 5000])
def test_malformed_client_headers_yield_no_claims(header):
    assert _parse_claims(header) in ({}, )


def test_header_provider_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv("MLFLOW_PROV_SEND_CLIENT_IDENTITY", raising=False)
    assert not ClientIdentityHeaderProvider().in_context()
    monkeypatch.setenv("MLFLOW_PROV_SEND_CLIENT_IDENTITY", "true")
    assert ClientIdentityHeaderProvider().in_context()


def test_header_provider_sends_ascii_json_identity():
    headers = ClientIdentityHeaderProvider().request_headers()
    decoded = json.loads(headers[CLIENT_HEADER])
    assert decoded["pid"] == process_identity()["pid"]
    assert headers[CLIENT_HEADER].isascii()


@pytest.mark.parametrize("value", [
    "ghp_0123456789abcdefghijABCDEFGHIJ", "AKIAABCDEFGHIJKLMNOP", "my_password=hunter2",
    "postgresql://user:s3cret@db/x", "Bearer abcdefghijklmnopqrstuvwxyz",
    "-----BEGIN RSA PRIVATE KEY-----",
])
def test_credential_like_values_are_detected(value):
    assert looks_like_credential(value)


@pytest.mark.parametrize("value", ["0,1", "train-job-17", "4", "127.0.0.1", "resnet50"])
def test_ordinary_values_are_not_credentials(value):
    assert not looks_like_credential(value)


def test_environment_capture_is_an_allow_list_with_redaction():
    environ = {"CUDA_VISIBLE_DEVICES": "0,1", "AWS_SECRET_ACCESS_KEY": "abc",
               "HOME": "/root", "SLURM_JOB_NAME": "token=abcdef",
               "MASTER_ADDR": "tcp://trainer:pw@10.0.0.1:29500"}
    captured = capture_environment(environ)
    assert captured["variables"] == {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_NAME": REDACTED,
                                     "MASTER_ADDR": "tcp://10.0.0.1:29500"}
    assert captured["python"] and "mlflow" in captured["packages"]
