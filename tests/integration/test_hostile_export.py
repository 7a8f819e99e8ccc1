"""Exports survive hostile input: a 10 MB tag whose text defeats naive credential regexes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import mlflow
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from prov.model import ProvDocument
from store_templates import prov_store

from exporters import ExportOptions, export
from exporters.cli import main
from mlflow_prov.journal import verify_chain
from mlflow_prov.vocabulary import run_chain

HUGE = 10_000_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store_uri(request, tmp_path) -> str:
    """A prov store over sqlite, then over a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return prov_store(tmp_path / "store")
    return request.getfixturevalue("prov_postgres_uri")


def test_a_10mb_tag_exports_in_seconds(store_uri, tmp_path):
    mlflow.set_tracking_uri(store_uri)
    mlflow.set_experiment("hostile")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        mlflow.set_tag("huge", "eyJ-" * (HUGE // 4))
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["export", "--tracking-uri", store_uri, "--experiment",
                                       "hostile", "--out", str(tmp_path / "out"),
                                       "--format", "prov-json,provn"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert elapsed < 60, f"export took {elapsed:.1f} s"
    print(f"10 MB tag export: {elapsed:.2f} s")
    document = json.loads(next((tmp_path / "out").rglob("prov.json")).read_text())
    assert "eyJ-eyJ-" in json.dumps(document)  # the (MLflow-cut) value itself is exported
    assert verify_chain(store_uri, run_chain(run.info.run_id)).intact


SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "prov-json.schema.json")
                    .read_text(encoding="utf-8"))
# What each --omit part leaves behind in a PROV-JSON file when it is not omitted.
OMITTED_MARKERS = {"params": ".param.", "tags": ".tag.", "metrics": ".metric.",
                   "artifacts": "mlflowprov:Artifact", "datasets": "provml:Dataset",
                   "environment": '"logging"'}


@pytest.fixture(scope="module")
def plain_text(prov_experiment, tmp_path_factory) -> str:
    """Every PROV-JSON file of an export without --omit, joined: each marker is there."""
    result = export(prov_experiment.experiment_id, tmp_path_factory.mktemp("plain"),
                    tracking_uri=prov_experiment.tracking_uri,
                    options=ExportOptions(formats=("prov-json",)))
    return "".join(p.read_text(encoding="utf-8") for p in result.files
                   if p.name.endswith("prov.json"))


@pytest.mark.parametrize("part", sorted(OMITTED_MARKERS))
def test_each_omitted_part_leaves_valid_prov_without_it(prov_experiment, plain_text,
                                                        tmp_path, part):
    assert OMITTED_MARKERS[part] in plain_text
    options = ExportOptions(formats=("prov-json", "provn"), omit=frozenset({part}))
    result = export(prov_experiment.experiment_id, tmp_path, options=options,
                    tracking_uri=prov_experiment.tracking_uri)
    documents = [p for p in result.files if p.name.endswith("prov.json")]
    assert documents
    for path in documents:
        text = path.read_text(encoding="utf-8")
        jsonschema.validate(json.loads(text), SCHEMA)
        ProvDocument.deserialize(content=text, format="json")
        assert OMITTED_MARKERS[part] not in text, f"{part} still in {path.name}"


def test_redact_reaches_values_history_and_every_format(prov_experiment, tmp_path):
    """``--redact 'opt.*'`` hides a param's value wherever the export would show it; the
    same export without it shows the value (so the check can fail)."""
    plain = export(prov_experiment.experiment_id, tmp_path / "plain",
                   tracking_uri=prov_experiment.tracking_uri,
                   options=ExportOptions(formats=("prov-json", "provn", "dot")))
    assert any("adam" in p.read_text(encoding="utf-8") for p in plain.files if p.is_file())
    redacted = export(prov_experiment.experiment_id, tmp_path / "redacted",
                      tracking_uri=prov_experiment.tracking_uri,
                      options=ExportOptions(formats=("prov-json", "provn", "dot"),
                                            redact=("opt.*",)))
    assert not [p for p in redacted.files if "adam" in p.read_text(encoding="utf-8")]


def test_omitted_and_redacted_tags_stay_out_of_single_tag_history(prov_uri, tmp_path):
    """A deleted tag is journaled as its key and old value, not as a tags mapping:
    ``--omit tags`` and ``--redact`` must hide that value too."""
    client = MlflowClient(prov_uri)
    experiment_id = client.create_experiment("single-tags")
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "stage", "stage-value-x2")
    client.delete_tag(run_id, "stage")

    def exported(options: ExportOptions, out: Path) -> str:
        result = export(experiment_id, out, tracking_uri=prov_uri, options=options)
        return "".join(p.read_text(encoding="utf-8") for p in result.files if p.is_file())

    assert "stage-value-x2" in exported(ExportOptions(formats=("prov-json",)), tmp_path / "p")
    for options in (ExportOptions(formats=("prov-json",), omit=frozenset({"tags"})),
                    ExportOptions(formats=("prov-json",), redact=("stage",))):
        text = exported(options, tmp_path / f"out-{len(options.redact)}")
        assert "stage-value-x2" not in text, options




def _export_as_nobody(uri: str, out: Path, home: Path) -> subprocess.CompletedProcess:
    """``mlflow-prov export`` run as the unprivileged user ``nobody`` (root reads anything)."""
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         str(Path(sys.executable).parent / "mlflow-prov"), "export", "--tracking-uri", uri,
         "--experiment", "locked", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "HOME": str(home)})


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's own tmp folders are root's alone)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to export as another user")
    folder = Path(tempfile.mkdtemp(prefix="mlflow-prov-shared-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _locked_store(folder: Path) -> tuple[str, Path]:
    """A store with ``open.txt`` and ``locked.txt`` (mode 000) artifacts, open to all."""
    uri = f"prov://{folder / 'store'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("locked")).info.run_id
    for name in ("open.txt", "locked.txt"):
        (folder / name).write_text(name)
        client.log_artifact(run_id, str(folder / name))
    for path in (folder / "store").rglob("*"):
        path.chmod(0o777 if path.is_dir() else 0o666)
    artifacts = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    (artifacts / "locked.txt").chmod(0)
    return uri, artifacts


@pytest.mark.slow
def test_an_unreadable_artifact_is_skipped_and_the_rest_exports(shared_dir):
    """A file its reader may not open: recorded as skipped with the reason, its sibling
    hashed, the export complete."""
    uri, _ = _locked_store(shared_dir)
    done = _export_as_nobody(uri, shared_dir / "out", shared_dir)
    assert done.returncode == 0, done.stderr
    document = json.loads(next((shared_dir / "out").rglob("prov.json")).read_text())
    by_path = {e.get("mlflowprov:path"): e for e in document["entity"].values()}
    assert by_path["locked.txt"]["mlflowprov:skipped"] == "unreadable: Permission denied"
    assert "mlflowprov:sha256" in by_path["open.txt"]


@pytest.mark.slow
def test_a_store_the_exporter_may_not_read_is_one_line(shared_dir):
    uri, _ = _locked_store(shared_dir)
    (shared_dir / "store").chmod(0o700)
    done = _export_as_nobody(uri, shared_dir / "out", shared_dir)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Error: cannot read the store of {uri}: Permission denied "
        f"({shared_dir / 'store' / 'mlflow.db'}); check its permissions or export as a user "
        "who can read it"]
