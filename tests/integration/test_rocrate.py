"""Process Run Crates from real MLflow runs, validated offline with roc-validator."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow_runs import client_for, log_series, metric_series, new_run, run_record, summary
from prov.model import ProvDocument
from validators import seed_rocrate_cache, validate_crate

from exporters.options import ExportOptions, WriterContext
from exporters.records import ExperimentRecord
from exporters.writers.netcdf import NetCDFSink
from exporters.writers.rocrate import RoCrateWriter

BIG = 4096


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_rocrate_cache(tmp_path_factory.mktemp("rocv"))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory):
    """Two finished runs (one with carbon metrics, a small and a big artifact) and one failed
    run, exported to NetCDF plus a stand-in prov.json, as the export loop lays them out."""
    tmp = tmp_path_factory.mktemp("crate-src")
    client = client_for(tmp)
    run_ids = [new_run(client, "crates", tmp, params={"lr": "0.01", "epochs": "3"},
                       run_name=f"run{i}") for i in range(3)]
    log_series(client, run_ids[0], "loss", [0.9, 0.5, 0.25])
    log_series(client, run_ids[0], "system/carbon/energy_consumed_kwh", [0.001, 0.003])
    log_series(client, run_ids[0], "system/carbon/emissions_kg", [0.0004, 0.0011])
    log_series(client, run_ids[1], "loss", [1.0])
    notes, weights = tmp / "my notes.txt", tmp / "weights.bin"
    notes.write_text("hello\n")
    weights.write_bytes(bytes(BIG * 2))
    client.log_artifact(run_ids[0], str(notes))
    client.log_artifact(run_ids[0], str(weights), artifact_path="model")
    client.set_terminated(run_ids[0])
    client.set_terminated(run_ids[1])
    client.set_terminated(run_ids[2], status="FAILED")
    exp_dir = tmp / "out" / "crates"
    runs, written = [], {}
    for run_id in run_ids:
        run_dir = exp_dir / f"run-{run_id}"
        sink = NetCDFSink(run_record(client, run_id), run_dir)
        summaries = [summary(s) for s in metric_series(client, run_id) if sink.add(s)]
        prov_json = run_dir / "prov.json"
        prov_json.write_text(ProvDocument().serialize(format="json"))
        runs.append(run_record(client, run_id, summaries))
        written[run_id] = (*sink.close(), prov_json)
    exp_prov = exp_dir / "experiment.prov.json"
    exp_prov.write_text(ProvDocument().serialize(format="json"))
    exp = client.get_experiment_by_name("crates")
    record = ExperimentRecord(experiment_id=exp.experiment_id, name=exp.name,
                              artifact_location=exp.artifact_location,
                              lifecycle_stage=exp.lifecycle_stage, tags={}, creation_time=None,
                              last_update_time=None, tracking_uri=client.tracking_uri,
                              history_available=False)
    return record, runs, written, exp_dir, exp_prov


def _context(exp_dir: Path, written, **options) -> WriterContext:
    return WriterContext(options=ExportOptions(formats=("netcdf", "rocrate"), **options),
                         out_dir=exp_dir.parent, tracking_uri="sqlite://", written=tuple(written))


def _write_all(experiment, **options) -> list[Path]:
    record, runs, written, exp_dir, exp_prov = experiment
    writer = RoCrateWriter()
    crates = [crate for run in runs
              for crate in writer.write_run(_context(exp_dir, written[run.run_id], **options),
                                            run, ProvDocument(), exp_dir / f"run-{run.run_id}")]
    everything = [*(path for run in runs for path in written[run.run_id]), exp_prov]
    crates += writer.write_experiment(_context(exp_dir, everything, **options), record, runs,
                                      ProvDocument(), exp_dir)
    return crates


def _metadata(crate: Path) -> dict:
    if crate.is_dir():
        return json.loads((crate / "ro-crate-metadata.json").read_text())
    with zipfile.ZipFile(crate) as archive:
        return json.loads(archive.read("ro-crate-metadata.json"))


def _entities(metadata: dict) -> dict[str, dict]:
    return {entity["@id"]: entity for entity in metadata["@graph"]}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.slow  # roc-validator on four crates: seconds each
@pytest.mark.parametrize("as_folder", [False, True], ids=["zip", "folder"])
def test_every_crate_passes_process_run_crate_required(experiment, cache, as_folder):
    crates = _write_all(experiment, crate_as_folder=as_folder)
    _, runs, _, exp_dir, _ = experiment
    suffix = ".crate" if as_folder else ".crate.zip"
    assert sorted(c.name for c in crates) == sorted(
        [f"run-{r.run_id}{suffix}" for r in runs] + [f"experiment{suffix}"])
    for crate in crates:
        assert crate.parent == exp_dir
        report = validate_crate(crate, cache, "REQUIRED")
        assert report.passed, (crate.name, report.issues)


@pytest.mark.slow  # roc-validator on four crates: seconds each
def test_recommended_issues_stay_few(experiment, cache):
    """Left on purpose: license as text unless a ``license`` tag names one, no root
    ``author`` (an MLflow user has no affiliation to give) and no ``publisher``; and
    artifacts referenced by URI, whose availability an offline validator cannot confirm."""
    for crate in _write_all(experiment, max_artifact_bytes=BIG):
        issues = validate_crate(crate, cache, "RECOMMENDED").issues
        unverifiable = [i for i in issues if "weights.bin is not available" in i]
        assert len(issues) - len(unverifiable) <= 3, (crate.name, issues)


def test_run_crate_describes_the_run(experiment):
    _, runs, _, _, _ = experiment
    crate = next(c for c in _write_all(experiment) if runs[0].run_id in c.name)
    entities = _entities(_metadata(crate))
    root = entities["./"]
    assert _metadata(crate)["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    assert root["conformsTo"] == {"@id": "https://w3id.org/ro/wfrun/process/0.5"}
    action = entities[root["mentions"]["@id"]]
    assert action["@type"] == "CreateAction"
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert action["startTime"] and action["endTime"]
    instrument = entities[action["instrument"]["@id"]]
    assert instrument["@type"] == "SoftwareApplication"
    assert instrument["name"] == "train.py" and instrument["softwareVersion"] == "0123abcd"
    assert entities[action["agent"]["@id"]] == {"@id": "#person-alice", "@type": "Person",
                                                "name": "alice"}
    params = {entities[o["@id"]]["name"]: entities[o["@id"]]["value"]
              for o in _as_list(action["object"])}
    assert params == {"lr": "0.01", "epochs": "3"}
    results = {r["@id"] for r in _as_list(action["result"])}
    assert {"metrics.nc", "prov.json", "artifacts/my%20notes.txt",
            "artifacts/model/weights.bin"} <= results
    for result in results:
        entity = entities[result]
        assert entity["contentSize"] and entity["encodingFormat"] and entity["sha256"]
    usage = {entities[u["@id"]]["name"]: entities[u["@id"]]
             for u in _as_list(action["resourceUsage"])}
    energy = usage["system/carbon/energy_consumed_kwh"]
    assert energy["value"] == 0.003
    assert energy["unitCode"] == "https://qudt.org/vocab/unit/KiloW-HR"
    assert usage["system/carbon/emissions_kg"]["unitCode"] == "https://qudt.org/vocab/unit/KiloGM"


def test_big_artifacts_are_referenced_by_uri(experiment):
    _, runs, _, _, _ = experiment
    crate = next(c for c in _write_all(experiment, max_artifact_bytes=BIG)
                 if runs[0].run_id in c.name)
    entities = _entities(_metadata(crate))
    big = next(e for e in entities.values() if e.get("name") == "weights.bin")
    assert big["@id"].startswith("file://") and big["contentSize"] == str(BIG * 2)
    with zipfile.ZipFile(crate) as archive:
        names = archive.namelist()
    assert "artifacts/my notes.txt" in names
    assert not any(name.endswith("weights.bin") for name in names)


def test_failed_run_and_experiment_crate(experiment):
    _, runs, _, _, _ = experiment
    experiment_crate = next(c for c in _write_all(experiment) if c.name.startswith("experiment"))
    entities = _entities(_metadata(experiment_crate))
    actions = [entities[m["@id"]] for m in entities["./"]["mentions"]]
    assert len(actions) == 3
    status = {a["identifier"]: a["actionStatus"] for a in actions}
    assert status[runs[2].run_id] == "http://schema.org/FailedActionStatus"
    assert f"run-{runs[0].run_id}/metrics.nc" in entities
    assert "experiment.prov.json" in entities


@pytest.mark.slow  # roc-validator
def test_running_run_has_no_action_status_and_still_validates(experiment, cache, tmp_path):
    _, runs, written, exp_dir, _ = experiment
    running = replace(runs[1], status="RUNNING", end_time=None)
    run_dir = tmp_path / f"run-{running.run_id}"
    shutil.copytree(exp_dir / f"run-{running.run_id}", run_dir)
    ctx = _context(tmp_path, sorted(run_dir.iterdir()))
    crate = RoCrateWriter().write_run(ctx, running, ProvDocument(), run_dir)[0]
    action = _entities(_metadata(crate))[f"#run-{running.run_id}"]
    assert "actionStatus" not in action and "endTime" not in action
    assert validate_crate(crate, cache, "REQUIRED").passed


@pytest.mark.parametrize(("tag", "expected"), [
    ("CC-BY-4.0", {"@id": "https://spdx.org/licenses/CC-BY-4.0"}),
    ("https://example.org/terms", {"@id": "https://example.org/terms"}),
    ("internal use only", "internal use only")])
def test_license_comes_from_the_license_tag(experiment, tmp_path, tag, expected):
    _, runs, _, _, _ = experiment
    run = replace(runs[1], tags={**runs[1].tags, "license": tag})
    crate = RoCrateWriter().write_run(_context(tmp_path, []), run, ProvDocument(),
                                      tmp_path / f"run-{run.run_id}")[0]
    assert _entities(_metadata(crate))["./"]["license"] == expected


def test_remote_artifacts_with_one_basename_keep_their_own_bytes(tmp_path):
    """``runs:/`` URIs are downloaded (not read in place); two files named ``model.pkl`` in
    different folders must each be packed with their own bytes."""
    import hashlib

    client = client_for(tmp_path)
    run_id = new_run(client, "same-basename", tmp_path)
    for folder in ("a", "b"):
        source = tmp_path / folder / "model.pkl"
        source.parent.mkdir()
        source.write_bytes(f"weights of {folder}\n".encode())
        client.log_artifact(run_id, str(source), artifact_path=folder)
    client.set_terminated(run_id)
    local = run_record(client, run_id)
    remote = tuple(replace(a, uri=f"runs:/{run_id}/{a.path}") for a in local.artifacts)
    run = replace(local, artifacts=remote)
    ctx = WriterContext(options=ExportOptions(formats=("rocrate",)), out_dir=tmp_path,
                        tracking_uri=client.tracking_uri)
    crate = RoCrateWriter().write_run(ctx, run, ProvDocument(), tmp_path / f"run-{run_id}")[0]
    with zipfile.ZipFile(crate) as archive:
        for artifact in remote:
            packed = archive.read(f"artifacts/{artifact.path}")
            assert hashlib.sha256(packed).hexdigest() == artifact.sha256, artifact.path


def test_experiment_crate_packs_only_this_exports_files(sqlite_experiment, tmp_path):
    """Exporting again into the same folder with other formats must not pack the files the
    earlier export left there."""
    from exporters import export

    def run_export(formats, metrics_format):
        return export(sqlite_experiment.experiment_id, tmp_path,
                      tracking_uri=sqlite_experiment.tracking_uri,
                      options=ExportOptions(formats=formats, metrics_format=metrics_format,
                                            crate_as_folder=True))

    stale = run_export(("dot",), "csv")
    result = run_export(("prov-json", "rocrate"), "netcdf")
    assert any(p.name == "graph.dot" for p in stale.files)
    ids = set(_entities(_metadata(result.experiment_dir / "experiment.crate")))
    assert not [i for i in ids if i.endswith((".dot", ".csv")) and "/artifacts/" not in i]
    assert f"run-{sqlite_experiment.producer}/metrics.nc" in ids


def test_remote_artifacts_are_hashed_and_packed_without_progress_bars(tmp_path, capfd):
    """MLflow draws a progress bar per download; an export of many artifacts must not."""
    import os

    from exporters.collect import run_artifacts

    client = client_for(tmp_path)
    run_id = new_run(client, "quiet", tmp_path)
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    client.log_artifact(run_id, str(note))
    client.set_terminated(run_id)
    artifacts = run_artifacts(client, run_id, f"runs:/{run_id}")
    assert [a.uri for a in artifacts] == [f"runs:/{run_id}/note.txt"]
    run = replace(run_record(client, run_id), artifacts=artifacts)
    ctx = WriterContext(options=ExportOptions(formats=("rocrate",)), out_dir=tmp_path,
                        tracking_uri=client.tracking_uri)
    RoCrateWriter().write_run(ctx, run, ProvDocument(), tmp_path / f"run-{run_id}")
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
