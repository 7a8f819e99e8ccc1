"""A run made from a real git checkout with uncommitted changes, by a real script: the journal
records its commit, dirty tree, diff digest, command and environment; exports show them as PROV
(``--git`` adds the repository's history, valid PROV-JSON that round-trips); no credential of
the remote URL or the command line reaches the journal, the artifacts or any exported file."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import mlflow
import pytest
from click.testing import CliRunner
from machine import scaled_timeout
from mlflow import MlflowClient
from prov.model import ProvDocument
from store_templates import DB_FILE, prov_store

from exporters import ExportOptions, export
from exporters.cli import main
from mlflow_prov.journal import read_events
from mlflow_prov.vocabulary import REDACTED, EventKind

pytestmark = pytest.mark.slow  # one script run (a fresh interpreter) and two exports

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "data" / "prov-json.schema.json").read_text("utf-8"))
REMOTE_SECRET = "S3cretRemoteTokenXYZ"
PASSWORD = "HunterPassw0rdABC"
TOKEN = "TokTokSecretValue9"
SECRETS = (REMOTE_SECRET, PASSWORD, TOKEN)
REMOTE = f"https://ada:{REMOTE_SECRET}@git.example.org/team/model.git"
AUTHOR_EMAIL = "ada@example.org"
SCRIPT = """
import sys

import mlflow

mlflow.set_tracking_uri(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.log_param("lr", sys.argv[-1])
print(run.info.run_id)
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, timeout=scaled_timeout(30)).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_checkout(repo: Path) -> list[str]:
    """Three commits (add, modify and add, delete), then an uncommitted change."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Ada Lovelace")
    git(repo, "config", "user.email", AUTHOR_EMAIL)
    git(repo, "remote", "add", "origin", REMOTE)
    (repo / "train.py").write_text(SCRIPT)
    (repo / "data.txt").write_text("1\n")
    shas = [commit(repo, "first model")]
    (repo / "data.txt").write_text("1\n2\n")
    (repo / "util.py").write_text("X = 1\n")
    shas.append(commit(repo, "more data, a helper"))
    (repo / "util.py").unlink()
    shas.append(commit(repo, "drop the helper"))
    (repo / "data.txt").write_text("1\n2\n3\n")  # uncommitted
    return shas


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The checkout, its commits, the store, the run, and the run's ``run.created`` payload."""
    base = tmp_path_factory.mktemp("code")
    repo = base / "checkout"
    shas = make_checkout(repo)
    uri = prov_store(base / "runs")
    # the script's own store and experiment, whatever an earlier test left in MLflow's
    # environment variables (MLFLOW_EXPERIMENT_ID, MLFLOW_TRACKING_URI)
    inherited = {name: value for name, value in os.environ.items()
                 if not name.startswith("MLFLOW_")}
    environment = {**inherited, "PYTHONPATH": str(ROOT), "MLFLOW_PROV_CAPTURE_DIFF": "true",
                   "MLFLOW_PROV_CAPTURE_REQUIREMENTS": "true"}
    done = subprocess.run(
        [sys.executable, "train.py", uri, "--password", PASSWORD, f"--token={TOKEN}",
         "--lr", "0.1"], cwd=repo, env=environment, capture_output=True, text=True,
        timeout=scaled_timeout(120))
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    created = next(e for e in read_events(uri, run_id=run_id) if e.kind == EventKind.RUN_CREATED)
    return repo, shas, uri, run_id, created.payload


@pytest.fixture(scope="module")
def exported(made, tmp_path_factory):
    repo, _, uri, _, _ = made
    out = tmp_path_factory.mktemp("export")
    result = export("0", out, tracking_uri=uri, options=ExportOptions(
        formats=("prov-json", "provn", "card"), git_repo=repo))
    return result.experiment_dir


def run_artifact(uri: str, run_id: str, path: str) -> bytes:
    return next((Path(uri.removeprefix("prov://")) / "artifacts").rglob(
        f"{run_id}/artifacts/{path}")).read_bytes()


def test_the_journal_records_the_commit_dirty_tree_diff_and_command(made):
    repo, shas, uri, run_id, payload = made
    code = payload["code"]
    diff = subprocess.run(["git", "-C", str(repo), "diff", "HEAD", "--binary", "--no-color",
                           "--no-ext-diff"], capture_output=True, check=True).stdout
    assert code["git"] == {"commit": shas[-1], "branch": "main",
                           "remote": "https://git.example.org/team/model.git", "dirty": True,
                           "diff_sha256": hashlib.sha256(diff).hexdigest()}
    assert code["command"][1:] == ["train.py", uri, "--password", REDACTED,
                                   f"--token={REDACTED}", "--lr", "0.1"]
    assert hashlib.sha256(run_artifact(uri, run_id, "prov/code/diff.patch")).hexdigest() == \
        code["git"]["diff_sha256"]
    requirements = run_artifact(uri, run_id, "prov/code/requirements.txt")
    assert hashlib.sha256(requirements).hexdigest() == code["distributions"]["sha256"]
    assert f"mlflow=={payload['environment']['packages']['mlflow']}\n".encode() in requirements
    assert code["python"] == payload["environment"]["python"]


def _records(doc: dict, kind: str) -> dict:
    return doc.get(kind, {})


def _type(record: dict) -> str | None:
    """A record's ``prov:type`` as text (PROV-JSON writes a qualified name as a typed value)."""
    value = record.get("prov:type")
    return value.get("$") if isinstance(value, dict) else value


def test_the_export_shows_code_and_environment_used_by_the_run(made, exported):
    _, shas, _, run_id, payload = made
    doc = json.loads((exported / f"run-{run_id}" / "prov.json").read_text("utf-8"))
    source = _records(doc, "entity")[f"mlflow:run.{run_id}.code"]
    assert source["mlflowprov:gitCommit"] == shas[-1]
    assert source["mlflowprov:gitDirty"] in (True, {"$": "true", "type": "xsd:boolean"})
    assert source["mlflowprov:gitDiffSha256"] == payload["code"]["git"]["diff_sha256"]
    assert "--lr 0.1" in source["mlflowprov:command"]
    environment = _records(doc, "entity")[f"mlflow:run.{run_id}.environment"]
    assert environment["mlflowprov:python"] == payload["environment"]["python"]
    assert environment["mlflowprov:distributionsSha256"] == \
        payload["code"]["distributions"]["sha256"]
    used = {(u["prov:activity"], u["prov:entity"]) for u in _records(doc, "used").values()}
    assert {(f"mlflow:run.{run_id}", f"mlflow:run.{run_id}.code"),
            (f"mlflow:run.{run_id}", f"mlflow:run.{run_id}.environment")} <= used
    card = (exported / f"run-{run_id}" / "card.md").read_text("utf-8")
    assert "uncommitted changes, diff SHA-256" in card and "| git branch | main |" in card


def test_git_export_is_valid_prov_with_the_history(made, exported):
    _, shas, _, run_id, _ = made
    for path in exported.rglob("*.json"):
        content = json.loads(path.read_text("utf-8"))
        jsonschema.validate(content, SCHEMA)
        once = ProvDocument.deserialize(content=path.read_text("utf-8"), format="json")
        assert ProvDocument.deserialize(content=once.serialize(format="json"),
                                        format="json") == once
    doc = json.loads((exported / f"run-{run_id}" / "prov.json").read_text("utf-8"))
    commits = {k for k, v in _records(doc, "activity").items()
               if _type(v) == "mlflowprov:GitCommit"}
    assert commits == {f"mlflow:git.commit.{sha}" for sha in shas}
    informed = {(r["prov:informed"], r["prov:informant"])
                for r in _records(doc, "wasInformedBy").values()}
    assert {(f"mlflow:git.commit.{b}", f"mlflow:git.commit.{a}")
            for a, b in zip(shas, shas[1:], strict=False)} <= informed
    generated = {(r["prov:entity"], r["prov:activity"])
                 for r in _records(doc, "wasGeneratedBy").values()}
    assert (f"mlflow:git.revision.{shas[-1]}", f"mlflow:git.commit.{shas[-1]}") in generated
    invalidated = {(r["prov:entity"].rsplit(".", 1)[0], r["prov:activity"])  # blob id cut
                   for r in _records(doc, "wasInvalidatedBy").values()}
    assert ("mlflow:git.file.util.py", f"mlflow:git.commit.{shas[-1]}") in invalidated
    authors = [a for a in _records(doc, "agent").values() if _type(a) == "prov:Person"
               and a.get("mlflowprov:email") == AUTHOR_EMAIL]
    assert [a["prov:label"] for a in authors] == ["Ada Lovelace"]


def test_no_credential_reaches_journal_artifacts_or_exports(made, exported, tmp_path):
    repo, _, uri, _, _ = made
    store = Path(uri.removeprefix("prov://"))
    connection = sqlite3.connect(store / DB_FILE)
    dump = "\n".join(connection.iterdump()).encode()
    connection.close()
    files = [p for p in (*store.rglob("*"), *exported.rglob("*")) if p.is_file()]
    assert any(p.name == "diff.patch" for p in files)
    for secret in SECRETS:
        assert secret.encode() not in dump, secret
        for path in files:
            assert secret.encode() not in path.read_bytes(), (secret, path)
    assert REMOTE_SECRET in git(repo, "remote", "get-url", "origin")  # it was there to leak


def test_pseudonymised_git_export_hides_authors(made, tmp_path):
    repo, _, uri, run_id, _ = made
    result = export("0", tmp_path, tracking_uri=uri, options=ExportOptions(
        formats=("prov-json",), git_repo=repo, git_depth=2, pseudonymize=True))
    text = (result.experiment_dir / f"run-{run_id}" / "prov.json").read_text("utf-8")
    assert AUTHOR_EMAIL not in text and "Ada Lovelace" not in text
    assert text.count('"mlflowprov:GitCommit"') == 2  # --git-depth bounds the history


def test_git_option_on_a_folder_that_is_no_repository_is_one_line(made, tmp_path):
    _, _, uri, _, _ = made
    result = CliRunner().invoke(main, ["export", "--tracking-uri", uri, "--experiment", "0",
                                       "--out", str(tmp_path / "out"), "--git", str(tmp_path)])
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line.startswith("Error")] == [
        f"Error: Invalid value for '--git': {tmp_path} is not a git repository; give the "
        "folder of a clone (the one holding .git)"]
    assert not (tmp_path / "out").exists()


def test_the_installed_distributions_are_exported_as_a_file_the_run_used(tmp_path):
    """By default (no ``MLFLOW_PROV_CAPTURE_REQUIREMENTS``) the list is in the journal, not
    in the run's artifacts; an export writes it as ``requirements.txt`` (packed in the
    crate) and a PROV entity the run used, both with the recorded digest."""
    uri = prov_store(tmp_path / "store")
    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    client.set_terminated(run_id)
    assert client.list_artifacts(run_id) == []  # the run's artifacts stay plain MLflow's
    created = next(e for e in read_events(uri, run_id=run_id) if e.kind == EventKind.RUN_CREATED)
    distributions = created.payload["code"]["distributions"]
    assert distributions["lines"] == sorted(distributions["lines"], key=str.lower)
    assert len(distributions["lines"]) == distributions["count"]

    result = export("0", tmp_path / "out", tracking_uri=uri, options=ExportOptions(
        formats=("prov-json", "rocrate"), crate_as_folder=True))
    exported = result.experiment_dir / f"run-{run_id}" / "requirements.txt"
    listing = exported.read_bytes()
    assert hashlib.sha256(listing).hexdigest() == distributions["sha256"]
    assert f"mlflow=={mlflow.__version__}\n".encode() in listing
    crate = result.experiment_dir / f"run-{run_id}.crate"
    assert (crate / "requirements.txt").read_bytes() == listing
    doc = json.loads((result.experiment_dir / f"run-{run_id}" / "prov.json").read_text())
    entity = _records(doc, "entity")[f"mlflow:run.{run_id}.requirements"]
    assert entity["mlflowprov:sha256"] == distributions["sha256"]
    used = {(u["prov:activity"], u["prov:entity"]) for u in _records(doc, "used").values()}
    assert (f"mlflow:run.{run_id}", f"mlflow:run.{run_id}.requirements") in used
