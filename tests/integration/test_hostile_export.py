"""Exports survive hostile input: a 10 MB tag whose text defeats naive credential regexes, and
values MLflow accepts that a format cannot hold (NUL and control characters in every string,
times outside years 1-9999)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import mlflow
import netCDF4
import numpy as np
import pytest
import rdflib
import zarr
from click.testing import CliRunner
from lxml import etree
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from prov.model import ProvDocument
from store_templates import prov_store

from exporters import ExportOptions, export
from exporters.cli import main
from exporters.layout import (
    CRATE_ZIP_SUFFIX,
    CSV_DIR,
    DOT,
    HTML,
    JSONLD,
    NETCDF_FILE,
    PROV_JSON,
    PROV_XML,
    PROVN,
    PROVO_TURTLE,
    SVG,
    ZARR_STORE,
)
from exporters.sanitize import xml_safe_text
from exporters.writers import FORMAT_NAMES
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
    closed = [p for p in Path(sys.executable).parent.parents if not p.stat().st_mode & 0o001]
    if closed:
        pytest.skip(f"nobody may not enter {closed[0]} (mode {closed[0].stat().st_mode & 0o777:o}),"
                    " so it cannot run this checkout's mlflow-prov: clone into a folder every "
                    "user may enter to run this test")
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


# --- values MLflow accepts that a format cannot hold (issue 22) --------------------------------

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
# NUL, every other C0 control, DEL, a backslash and a noncharacter: what XML 1.0, Graphviz
# and netCDF attributes refuse or cut, next to what they carry
HOSTILE = "a\x00b" + "".join(map(chr, range(1, 32))) + "\x7f\\c\ufffe"
DOCUMENT_FILES = {"prov-json": PROV_JSON, "provn": PROVN, "dot": DOT, "svg": SVG,
                  "html": HTML, "provo-ttl": PROVO_TURTLE, "jsonld": JSONLD,
                  "prov-xml": PROV_XML}
CLAMPED_END = "9999-12-31T23:59:59.999999+00:00"


def _log_hostile_values(uri: str) -> str:
    """One run holding every hostile value in every place a user string or time goes."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("hostile\x01values")
    client.set_experiment_tag(experiment_id, "mlflow.note.content", f"experiment {HOSTILE}")
    run_id = client.create_run(experiment_id, run_name=f"run {HOSTILE}",
                               start_time=INT64_MIN).info.run_id
    client.log_batch(run_id, metrics=[Metric("end_of_time", 1.0, INT64_MAX, 0),
                                      Metric("epoch", 2.0, 0, 1)],
                     params=[Param("note", HOSTILE)],
                     tags=[RunTag("hostile", HOSTILE),
                           RunTag("mlflow.note.content", f"description {HOSTILE}")])
    dataset = mlflow.data.from_numpy(np.arange(3), source=f"s3://bucket/{HOSTILE}",
                                     name=f"data {HOSTILE}")
    client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), [
        InputTag("mlflow.data.context", "training")])])
    model = client.create_logged_model(experiment_id, source_run_id=run_id,
                                       name=f"model\x01{HOSTILE[-3:]}")
    client.log_model_params(model.model_id, {"note": HOSTILE})
    client.create_registered_model(f"registered\x02{HOSTILE[-3:]}")
    client.create_model_version(f"registered\x02{HOSTILE[-3:]}", model.artifact_location, run_id,
                                model_id=model.model_id)
    client.set_terminated(run_id, end_time=INT64_MAX)
    return run_id


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> tuple[str, str]:
    """A prov store holding the hostile run: (tracking URI, run id)."""
    uri = prov_store(tmp_path_factory.mktemp("hostile-values") / "store")
    return uri, _log_hostile_values(uri)


def _export_hostile(uri: str, out: Path, *extra: str) -> Path:
    result = CliRunner().invoke(main, ["export", "--tracking-uri", uri, "--experiment",
                                       "hostile\x01values", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return next(out.iterdir())


@pytest.fixture(scope="module")
def hostile_export(hostile_store, tmp_path_factory) -> tuple[Path, str]:
    """Every format of an export of the hostile run: (experiment folder, run id)."""
    uri, run_id = hostile_store
    out = tmp_path_factory.mktemp("hostile-out")
    return _export_hostile(uri, out, "--format", ",".join(FORMAT_NAMES)), run_id


@pytest.mark.slow  # logs a run with a model version and renders every format (svg: dot)
def test_hostile_values_export_every_format(hostile_export):
    exp_dir, run_id = hostile_export
    run_dir = exp_dir / f"run-{run_id}"
    for fmt, (run_file, experiment_file) in DOCUMENT_FILES.items():
        assert (run_dir / run_file).stat().st_size > 0, fmt
        assert (exp_dir / experiment_file).stat().st_size > 0, fmt
    assert (run_dir / NETCDF_FILE).is_file() and (run_dir / ZARR_STORE).is_dir()
    assert sorted(p.name for p in (run_dir / CSV_DIR).iterdir()) == ["end_of_time.csv",
                                                                      "epoch.csv"]
    assert (exp_dir / f"run-{run_id}{CRATE_ZIP_SUFFIX}").is_file()


@pytest.mark.slow  # shares the export above
def test_prov_json_carries_hostile_text_and_marks_clamped_times(hostile_export):
    exp_dir, run_id = hostile_export
    for path in (exp_dir / f"run-{run_id}" / PROV_JSON[0], exp_dir / PROV_JSON[1]):
        text = path.read_text(encoding="utf-8")
        jsonschema.validate(json.loads(text), SCHEMA)
        ProvDocument.deserialize(content=text, format="json")
    document = json.loads((exp_dir / f"run-{run_id}" / PROV_JSON[0]).read_text("utf-8"))
    tag = document["entity"][f"mlflow:run.{run_id}.tag.hostile"]
    assert tag["prov:value"] == HOSTILE and "mlflowprov:sanitized" not in tag
    run = document["activity"][f"mlflow:run.{run_id}"]
    assert run["prov:label"] == f"run {HOSTILE}"
    assert run["prov:startTime"] == "0001-01-01T00:00:00+00:00"
    assert run["prov:endTime"] == CLAMPED_END
    notes = "\n".join(run["mlflowprov:sanitized"])
    assert f"prov:startTime: MLflow's {INT64_MIN} ms" in notes
    assert f"prov:endTime: MLflow's {INT64_MAX} ms" in notes
    metric = next(e for e in document["entity"].values()
                  if e.get("mlflowprov:key") == "end_of_time")
    assert metric["mlflowprov:lastTime"]["$"] == CLAMPED_END
    assert str(INT64_MAX) in str(metric["mlflowprov:sanitized"])
    names = {e.get("mlflowprov:name") for e in document["entity"].values()}
    assert {f"data {HOSTILE}", f"model\x01{HOSTILE[-3:]}",
            f"registered\x02{HOSTILE[-3:]}"} <= names


@pytest.mark.slow  # shares the export above
def test_xml_and_graphs_get_escaped_text_marked_sanitized(hostile_export):
    exp_dir, run_id = hostile_export
    run_dir = exp_dir / f"run-{run_id}"
    escaped = xml_safe_text(HOSTILE)
    for path in (run_dir / PROV_XML[0], exp_dir / PROV_XML[1]):
        etree.parse(str(path))
    back = ProvDocument.deserialize(source=str(run_dir / PROV_XML[0]), format="xml")
    tag = back.get_record(f"mlflow:run.{run_id}.tag.hostile")[0]
    assert set(tag.get_attribute("prov:value")) == {escaped}
    assert any("prov:value: characters XML 1.0 cannot hold" in note
               for note in tag.get_attribute("mlflowprov:sanitized"))
    for path in (run_dir / SVG[0], exp_dir / SVG[1]):
        svg = etree.parse(str(path))
        comments = [c.text for c in svg.iter(etree.Comment)]
        assert any("mlflowprov:sanitized" in c for c in comments), path.name
    assert "run a\\u0000b\\u0001" in (run_dir / SVG[0]).read_text("utf-8")
    page = (run_dir / HTML[0]).read_text("utf-8")
    assert '<meta name="mlflowprov:sanitized"' in page and "\x00" not in page


@pytest.mark.slow  # one more export, rendered by Graphviz
def test_full_prov_graph_of_hostile_values_renders(hostile_store, tmp_path):
    uri, run_id = hostile_store
    exp_dir = _export_hostile(uri, tmp_path, "--format", "dot,svg", "--graph-detail", "full")
    svg = etree.parse(str(exp_dir / f"run-{run_id}" / SVG[0]))
    text = "".join(svg.getroot().itertext())
    assert xml_safe_text(HOSTILE)[:20] in text and "mlflowprov:sanitized" in text


@pytest.mark.slow  # shares the export above
def test_rdf_and_metric_files_keep_hostile_values(hostile_export):
    exp_dir, run_id = hostile_export
    run_dir = exp_dir / f"run-{run_id}"
    for path, fmt in ((run_dir / PROVO_TURTLE[0], "turtle"), (run_dir / JSONLD[0], "json-ld")):
        graph = rdflib.Graph().parse(str(path), format=fmt)
        assert rdflib.Literal(HOSTILE) in set(graph.objects()), path.name
    with netCDF4.Dataset(run_dir / NETCDF_FILE) as dataset:
        assert dataset.mlflow_run_name == xml_safe_text(f"run {HOSTILE}")
        assert "mlflow_run_name" in dataset.mlflowprov_sanitized
        assert dataset.mlflow_run_end_time == CLAMPED_END
        assert dataset["end_of_time_time"][:].tolist() == [INT64_MAX / 1000]
    group = zarr.open_group(str(run_dir / ZARR_STORE), mode="r")
    assert group.attrs["mlflow_run_name"] == f"run {HOSTILE}"
    rows = (run_dir / CSV_DIR / "end_of_time.csv").read_text().splitlines()
    assert rows[1].split(",")[1] == str(INT64_MAX)


@pytest.mark.slow  # shares the export above
def test_hostile_crate_metadata_holds_the_values(hostile_export):
    exp_dir, run_id = hostile_export
    with zipfile.ZipFile(exp_dir / f"run-{run_id}{CRATE_ZIP_SUFFIX}") as crate:
        metadata = json.loads(crate.read("ro-crate-metadata.json"))
    names = [item.get("name") for item in metadata["@graph"]]
    assert f"MLflow run run {HOSTILE}" in names and f"data {HOSTILE}" in names
    action = next(item for item in metadata["@graph"] if item["@type"] == "CreateAction")
    assert action["endTime"] == "9999-12-31T23:59:59.999+00:00"
    assert [note.split(":")[0] for note in action["sanitized"]] == ["startTime", "endTime"]
    assert str(INT64_MAX) in action["sanitized"][1]
