"""Nineteen realistic credentials planted where users put them (params, tags, run, experiment,
registered-model and logged-model names, a dataset source, a model-version source, the
environment), then every output searched for them: each export format (every file, inside the
crate zips too, and every file name), every ``/prov/`` page and ``/prov/api/`` endpoint of a
real ``mlflow server --app-name prov``, and the CLI (``log``, ``lineage``, ``verify``,
``export``, ``plot``, ``collect``, ``convert``), from the store and over HTTP. Not one planted
secret may show; what surrounds it (ids, the host of a URL) must, or the search proves nothing.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient
from store_templates import prov_store
from test_server import _serve

from exporters.cli import main
from exporters.writers import FORMAT_NAMES

TIMEOUT = 60
# name -> (the credential as planted, the distinctive part searched for in every output)
SECRETS: dict[str, tuple[str, str]] = {
    "aws key id (run name)": ("AKIAIOSFODNN7PLANTED", "IOSFODNN7PLANTED"),
    "aws key id (experiment name)": ("team AKIAPLANTEDEXPNAME01", "PLANTEDEXPNAME01"),
    "aws secret key": ("wJalrXUtnFEMIK7MDENGbPxRfiCYPlantedAwsSecret", "PlantedAwsSecret"),
    "github pat": ("ghp_PlantedGithubToken0123456789abcdefgh", "PlantedGithubToken"),
    "slack bot token": ("xoxb-123456789012-PlantedSlackToken", "PlantedSlackToken"),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.PlantedJwtSignature",
            "PlantedJwtSignature"),
    "pem private key": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEPlantedPemBody\n"
                        "-----END RSA PRIVATE KEY-----", "MIIEPlantedPemBody"),
    "database url": ("postgresql://plantdbuser:PlantedDbPassw0rd@db.example.com/prod",
                     "PlantedDbPassw0rd"),
    "dataset source": ("https://datauser:PlantedDataToken@data.example.com/train.csv",
                       "PlantedDataToken"),
    "google api key": ("AIzaSyPlantedGoogleKey0123456789abcdef", "PlantedGoogleKey"),
    "stripe key (registered model name)": ("sk_live_PlantedStripeKey0123456789",
                                           "PlantedStripeKey"),
    "openai key (logged model name)": ("sk-proj-PlantedOpenAiKey0123456789abcd",
                                       "PlantedOpenAiKey"),
    "hugging face token": ("hf_PlantedHuggingFaceToken0123456789ab", "PlantedHuggingFace"),
    "bearer token": ("Bearer PlantedBearerToken0123456789", "PlantedBearerToken"),
    "password param": ("PlantedHunter2Password", "PlantedHunter2Password"),
    "api_key tag": ("PlantedApiKeyValue42", "PlantedApiKeyValue42"),
    "model version source": ("https://mvuser:PlantedMvToken@models.example.com/m/1",
                             "PlantedMvToken"),
    "environment (allow-listed)": ("tcp://envuser:PlantedEnvPassword@10.0.0.1:29500",
                                   "PlantedEnvPassword"),
    "environment job name": ("glpat-PlantedGitlabToken0123456", "PlantedGitlabToken"),
}


def _secret(name: str) -> str:
    return SECRETS[name][0]


@dataclass
class Planted:
    uri: str
    experiment_id: str
    run_id: str
    model_id: str
    registered: str
    dataset: str  # name@digest


def _plant(uri: str) -> Planted:
    mlflow.set_tracking_uri(uri)
    # The registry named too: a registry URI an earlier test left behind must not receive
    # the registered model (the commands below look for it in this store).
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = mlflow.set_experiment(_secret("aws key id (experiment name)")).experiment_id
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MASTER_ADDR", _secret("environment (allow-listed)"))
        env.setenv("SLURM_JOB_NAME", _secret("environment job name"))
        env.setenv("AWS_SECRET_ACCESS_KEY", _secret("aws secret key"))  # not allow-listed
        run = mlflow.start_run(run_name=_secret("aws key id (run name)"))
    with run:
        mlflow.log_params({"db_password": _secret("password param"),
                           "aws_secret_access_key": _secret("aws secret key"),
                           "note": f"pushed with {_secret('github pat')}",
                           "signing": _secret("pem private key"),
                           "hub": _secret("hugging face token"), "lr": "0.01"})
        mlflow.set_tags({"api_key": "first-" + _secret("api_key tag"),
                         "db": _secret("database url"), "slack": _secret("slack bot token"),
                         "auth": _secret("bearer token"), "session": _secret("jwt"),
                         "maps": _secret("google api key")})
        mlflow.set_tag("api_key", _secret("api_key tag"))  # the old value is history now
        mlflow.log_metric("loss", 0.5, step=1)
        frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
        dataset = mlflow.data.from_pandas(frame, source=_secret("dataset source"),
                                          name="train")
        mlflow.log_input(dataset, context="training")
        model = client.create_logged_model(experiment_id,
                                           name=_secret("openai key (logged model name)"),
                                           source_run_id=run.info.run_id,
                                           tags={"token": _secret("slack bot token")})
    registered = _secret("stripe key (registered model name)")
    client.create_registered_model(registered)
    client.create_model_version(registered, source=_secret("model version source"),
                                run_id=run.info.run_id)
    mlflow.set_tracking_uri(None)
    return Planted(uri, experiment_id, run.info.run_id, model.model_id, registered,
                   f"train@{dataset.digest}")


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    return _plant(prov_store(tmp_path_factory.mktemp("planted") / "store"))


@pytest.fixture(scope="module")
def server(planted, tmp_path_factory) -> Iterator[str]:
    yield from _serve(["server", "--app-name", "prov", "--backend-store-uri", planted.uri,
                       "--workers", "1"], tmp_path_factory.mktemp("server"))


def leaks(text: str) -> list[str]:
    """The planted secrets ``text`` shows."""
    return [name for name, (_, part) in SECRETS.items() if part in text]


def files_text(root: Path) -> str:
    """Every file under ``root`` (and every member of a zip) as text, with its path."""
    parts = []
    for path in sorted(root.rglob("*")):
        parts.append(path.relative_to(root).as_posix())
        if not path.is_file():
            continue
        data = path.read_bytes()
        parts.append(data.decode("latin-1"))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    parts += [member, archive.read(member).decode("latin-1")]
    return "\n".join(parts)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def export_all(tracking_uri: str, experiment_id: str, out: Path) -> str:
    formats = ",".join(FORMAT_NAMES)
    return cli("export", "--tracking-uri", tracking_uri, "--experiment", experiment_id,
               "--out", str(out), "--format", formats, "--compress")


def test_each_planted_credential_is_caught_by_a_pattern_or_its_key():
    from exporters.privacy import redact

    by_key = {"password param", "api_key tag", "aws secret key"}  # no shape of their own
    shown = redact({"params": {"db_password": _secret("password param"),
                               "aws_secret_access_key": _secret("aws secret key")},
                    "tags": {"api_key": _secret("api_key tag")},
                    "values": [secret for name, (secret, _) in SECRETS.items()
                               if name not in by_key]})
    assert leaks(json.dumps(shown)) == []


@pytest.mark.slow  # exports every format of a planted store, twice
def test_no_export_format_shows_a_planted_secret(planted, tmp_path):
    output = export_all(planted.uri, planted.experiment_id, tmp_path / "out")
    written = files_text(tmp_path / "out")
    assert planted.run_id in written and "data.example.com" in written
    assert "[redacted]" in written
    assert leaks(written + output) == []
    assert (tmp_path / "out" / f"experiment-{planted.experiment_id}").is_dir()

    plots = cli("plot", "--tracking-uri", planted.uri, "--experiment", planted.experiment_id,
                "--out", str(tmp_path / "plots"))
    assert leaks(plots + files_text(tmp_path / "plots")) == []
    documents = sorted(str(p) for p in (tmp_path / "out").rglob("prov.json"))
    collected = cli("collect", *documents, "--out", str(tmp_path / "all.prov.json"))
    converted = cli("convert", documents[0], "--to", "provn", "--out", str(tmp_path / "x.provn"))
    assert leaks(collected + converted + (tmp_path / "all.prov.json").read_text()
                 + (tmp_path / "x.provn").read_text()) == []


@pytest.mark.slow  # reads the planted store's journal
def test_the_journal_keeps_the_environment_redacted_from_capture_on(planted):
    from mlflow_prov.journal import read_events

    created = next(e for e in read_events(planted.uri, run_id=planted.run_id)
                   if e.kind == "run.created")
    variables = created.payload["environment"]["variables"]
    assert variables["MASTER_ADDR"] == "tcp://10.0.0.1:29500"
    assert variables["SLURM_JOB_NAME"] == "[redacted]"
    assert "AWS_SECRET_ACCESS_KEY" not in variables  # not on the allow-list


@pytest.mark.slow  # log, lineage and verify, as text and JSON, on the store
def test_no_command_shows_a_planted_secret_from_the_store(planted):
    outputs = {
        "log": cli("log", "--tracking-uri", planted.uri),
        "log --json": cli("log", "--tracking-uri", planted.uri, "--json"),
        "lineage": cli("lineage", "--tracking-uri", planted.uri, planted.run_id),
        "lineage --json": cli("lineage", "--tracking-uri", planted.uri, planted.run_id,
                              "--json"),
        "lineage model": cli("lineage", "--tracking-uri", planted.uri,
                             f"models:/{planted.model_id}", "--json"),
        "lineage version": cli("lineage", "--tracking-uri", planted.uri,
                               f"models:/{planted.registered}/1", "--downstream"),
        "verify": cli("verify", "--tracking-uri", planted.uri),
        "verify --json": cli("verify", "--tracking-uri", planted.uri, "--json"),
    }
    assert {name: leaks(text) for name, text in outputs.items()} == {
        name: [] for name in outputs}
    assert planted.run_id in outputs["log"] and "data.example.com" in outputs["log --json"]
    assert "tcp://10.0.0.1:29500" in outputs["log --json"]  # the environment, without user info
    assert "[redacted]" in outputs["lineage"] and planted.run_id in outputs["lineage"]
    assert "registered model [redacted]" in outputs["lineage version"]
    assert '"state"' not in outputs["log --json"] and "state:" not in outputs["log"]


@pytest.mark.slow  # one real server for every page, endpoint and remote command
def test_no_page_endpoint_or_remote_command_shows_a_planted_secret(planted, server, tmp_path):
    run, experiment = planted.run_id, planted.experiment_id
    urls = [
        "/prov/", f"/prov/experiments/{experiment}", f"/prov/runs/{run}",
        "/prov/api/events", f"/prov/api/events?experiment_id={experiment}",
        f"/prov/api/events?run_id={run}", f"/prov/api/verify?run_id={run}",
        f"/prov/api/verify?experiment_id={experiment}", f"/prov/api/head?run_id={run}",
        f"/prov/api/lineage?run_id={run}", f"/prov/api/lineage?model_id={planted.model_id}",
        f"/prov/api/lineage?dataset={planted.dataset}",
        f"/prov/api/lineage?run_id={'0' * 32}",  # an error names nothing secret either
    ]
    answers = {url: requests.get(server + url, timeout=TIMEOUT) for url in urls}
    assert {url: leaks(a.text) for url, a in answers.items()} == {url: [] for url in urls}
    assert all(a.ok for url, a in answers.items() if "0" * 32 not in url)
    assert run in answers[f"/prov/runs/{run}"].text
    first = requests.get(f"{server}/prov/api/events", timeout=TIMEOUT,
                         params={"run_id": run, "page_size": 2}).json()
    following = requests.get(f"{server}/prov/api/events", timeout=TIMEOUT, params={
        "run_id": run, "page_size": 2, "page_token": first["next_page_token"]})
    assert following.ok and following.json()["events"]  # the page token is no secret
    assert "data.example.com" in answers[f"/prov/api/events?run_id={run}"].text

    remote = {
        "log": cli("log", "--tracking-uri", server, "--experiment", experiment),
        "log --json": cli("log", "--tracking-uri", server, "--run", run, "--json"),
        "lineage": cli("lineage", "--tracking-uri", server, run, "--json"),
        "export": export_all(server, experiment, tmp_path / "remote"),
    }
    assert {name: leaks(text) for name, text in remote.items()} == {n: [] for n in remote}
    written = files_text(tmp_path / "remote")
    assert run in written and leaks(written) == []
