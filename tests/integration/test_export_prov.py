"""End-to-end export of a real experiment: validity by the field's checks, and graph content."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from prov.model import ProvDocument

from exporters import ExportOptions, export
from exporters.prov_model import HISTORY_UNAVAILABLE

SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "prov-json.schema.json")
                    .read_text(encoding="utf-8"))
ALL_FORMATS = ("prov-json", "provn", "dot", "svg")


@pytest.fixture(scope="module")
def exported(prov_experiment, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    result = export(prov_experiment.experiment_id, out, tracking_uri=prov_experiment.tracking_uri,
                    options=ExportOptions(formats=ALL_FORMATS))
    return prov_experiment, result


def load(path: Path) -> ProvDocument:
    return ProvDocument.deserialize(content=path.read_text(encoding="utf-8"), format="json")


def provn(result, run_id: str | None = None) -> str:
    folder = result.experiment_dir / f"run-{run_id}" if run_id else result.experiment_dir
    name = "prov.provn" if run_id else "experiment.provn"
    return (folder / name).read_text(encoding="utf-8")


def test_layout(exported):
    sample, result = exported
    assert result.experiment_dir.parent.exists()
    assert ".." not in result.experiment_dir.name and "/" not in result.experiment_dir.name
    for name in ("experiment.prov.json", "experiment.provn", "experiment.dot", "experiment.svg"):
        assert (result.experiment_dir / name).is_file()
    run_dir = result.experiment_dir / f"run-{sample.producer}"
    assert {p.name for p in run_dir.iterdir()} == {"prov.json", "prov.provn", "graph.dot",
                                                   "graph.svg", "requirements.txt"}
    assert result.run_count == 5


def test_every_prov_json_is_valid_and_round_trips(exported):
    _, result = exported
    files = list(result.experiment_dir.rglob("*.json"))
    assert len(files) == 6
    for path in files:
        content = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(content, SCHEMA)
        once = load(path)
        assert ProvDocument.deserialize(content=once.serialize(format="json"),
                                        format="json") == once


def test_prov_json_equals_provn(exported):
    _, result = exported
    for path in result.experiment_dir.rglob("*.provn"):
        parsed = ProvDocument.deserialize(content=path.read_text(encoding="utf-8"),
                                          format="provn")
        json_name = "experiment.prov.json" if path.name == "experiment.provn" else "prov.json"
        assert parsed == load(path.parent / json_name)


def test_namespaces_are_uris_and_types_qualified(exported):
    _, result = exported
    content = json.loads((result.experiment_dir / "experiment.prov.json").read_text())
    for prefix, uri in content["prefix"].items():
        assert uri.startswith(("http://", "https://", "urn:")), prefix
    # xsd and prov are predefined by PROV-JSON; if bound, it must be to the right URI
    assert content["prefix"].get("xsd", "http://www.w3.org/2001/XMLSchema#") == \
        "http://www.w3.org/2001/XMLSchema#"
    types = [attrs["prov:type"] for bundle in content["bundle"].values()
             for attrs in bundle.get("entity", {}).values() if "prov:type" in attrs]
    flat = [t for value in types for t in (value if isinstance(value, list) else [value])]
    assert flat and all(t["type"] == "xsd:QName" for t in flat)


def test_params_are_used_not_generated(exported):
    sample, result = exported
    text = provn(result, sample.producer)
    param = f"mlflow:run.{sample.producer}.param.lr"
    assert f"used(mlflow:run.{sample.producer}, {param}" in text
    assert f"wasGeneratedBy({param}" not in text


def test_lineage_across_runs(exported):
    sample, result = exported
    text = provn(result, sample.consumer)
    artifact = f"mlflow:run.{sample.producer}.artifact.data%2Ffeatures.csv"
    assert f"used(mlflow:run.{sample.consumer}.context.training, {artifact}" in text
    assert f"wasDerivedFrom(mlflow:run.{sample.consumer}.artifact.report.txt, {artifact}" in text
    assert f"wasInformedBy(mlflow:run.{sample.consumer}, mlflow:run.{sample.producer})" in text
    producer = provn(result, sample.producer)
    assert f"entity({artifact}," in producer and 'mlflowprov:sha256="' in producer


def test_parent_child_contexts_and_model(exported):
    sample, result = exported
    text = provn(result, sample.producer)
    assert (f"wasInformedBy(mlflow:run.{sample.producer}, mlflow:run.{sample.parent}, "
            "[prov:type='mlflowprov:ParentRun'])") in text
    assert (f"wasInformedBy(mlflow:run.{sample.producer}.context.validation, "
            f"mlflow:run.{sample.producer})") in text
    assert f"wasGeneratedBy(mlflow:model.{sample.model_id}, mlflow:run.{sample.producer}" in text
    assert "wasAssociatedWith(mlflow:run." in text and "prov:type='prov:Person'" in text


def test_metrics_summaries_with_non_finite_values(exported):
    sample, result = exported
    text = provn(result, sample.producer)
    assert "metric.train%2Floss.training, [prov:type='provml:Metric'" in text
    assert 'mlflowprov:max="INF" %% mlflowprov:nonFiniteDouble' in text
    assert 'mlflowprov:min="-INF" %% mlflowprov:nonFiniteDouble' in text
    assert "metric.m%C3%A9trique%2F%C3%BC" in text and 'prov:label="métrique/ü"' in text
    assert text.count("provml:Metric") == 3


def test_journal_history_tag_status_deletion(exported):
    sample, result = exported
    text = provn(result, sample.producer)
    old = f"mlflow:run.{sample.producer}.tag.stage.rev1"
    assert f'entity({old}, [prov:type=\'mlflowprov:Tag\', prov:label="stage", ' \
           'mlflowprov:key="stage", prov:value="draft"])' in text
    assert f"wasDerivedFrom(mlflow:run.{sample.producer}.tag.stage, {old}" in text
    failed = provn(result, sample.failed)
    assert 'prov:value="FAILED"' in failed and 'mlflowprov:status="FAILED"' in failed
    deleted = provn(result, sample.deleted)
    assert f"wasInvalidatedBy(mlflow:bundle.{sample.deleted}, mlflow:run.{sample.deleted}" \
           ".deleted.1" in deleted


def test_secrets_redacted(exported):
    sample, result = exported
    text = provn(result, sample.producer)
    assert "abc123" not in text and 'prov:value="[redacted]"' in text


def test_experiment_is_collection_of_run_bundles(exported):
    sample, result = exported
    doc = load(result.experiment_dir / "experiment.prov.json")
    assert len(list(doc.bundles)) == 5
    text = provn(result)
    assert f"hadMember(mlflow:experiment.{sample.experiment_id}, mlflow:bundle.{sample.consumer})" \
        in text


def test_sqlite_store_says_history_unavailable(sqlite_experiment, tmp_path):
    result = export(sqlite_experiment.name, tmp_path, tracking_uri=sqlite_experiment.tracking_uri,
                    options=ExportOptions(formats=("prov-json", "provn"), pseudonymize=True))
    text = (result.experiment_dir / "experiment.provn").read_text(encoding="utf-8")
    assert HISTORY_UNAVAILABLE in text
    assert 'mlflowprov:historyAvailable="false" %% xsd:boolean' in text
    assert "tag.stage.rev1" not in text
    assert "wasInvalidatedBy(mlflow:bundle." in text  # deletion known without the journal
    from mlflow import MlflowClient

    user = MlflowClient(sqlite_experiment.tracking_uri).get_run(
        sqlite_experiment.producer).info.user_id
    assert user and f'prov:label="{user}"' not in text
    assert f'\\"mlflow.user\\": \\"{user}' not in text
    assert "mlflow:user.user-" in text


def test_run_selection_and_filter(prov_experiment, tmp_path):
    only = export(prov_experiment.experiment_id, tmp_path / "a",
                  tracking_uri=prov_experiment.tracking_uri, run_ids=[prov_experiment.failed])
    assert only.run_count == 1
    filtered = export(prov_experiment.experiment_id, tmp_path / "b",
                      tracking_uri=prov_experiment.tracking_uri,
                      filter_string="params.batch_size = '32'")
    assert filtered.run_count == 1


def _software_agents(document: ProvDocument) -> dict[str, tuple[str, str]]:
    """label -> (version, versionSource) of every prov:SoftwareAgent in the document."""
    agents = {}
    for record in document.get_records():
        attributes = {str(k): v for k, v in record.attributes}
        if str(attributes.get("prov:type")) == "prov:SoftwareAgent":
            agents[attributes["prov:label"]] = (attributes["mlflowprov:version"],
                                                attributes["mlflowprov:versionSource"])
    return agents


def test_software_agents_are_the_versions_the_run_was_logged_with(exported):
    import mlflow

    sample, result = exported
    agents = _software_agents(load(result.experiment_dir / f"run-{sample.producer}" / "prov.json"))
    assert agents["mlflow"] == (mlflow.__version__, "logging")
    assert agents["python"][1] == "logging" and "mlflow-prov" in agents


def test_without_a_journal_software_versions_say_they_are_the_exporters(sqlite_experiment,
                                                                        tmp_path):
    result = export(sqlite_experiment.experiment_id, tmp_path,
                    tracking_uri=sqlite_experiment.tracking_uri)
    run_doc = load(result.experiment_dir / f"run-{sqlite_experiment.producer}" / "prov.json")
    assert {source for _, source in _software_agents(run_doc).values()} == {"export"}


def test_credentials_and_home_paths_stay_out_of_every_file(tmp_path):
    """A token in the repo URL and the home folder in the source name reach neither PROV nor
    the crate; under --pseudonymize the home folder's user becomes a pseudonym."""
    from mlflow_runs import client_for

    client = client_for(tmp_path)
    experiment_id = client.create_experiment("leaks",
                                             artifact_location=(tmp_path / "a").as_uri())
    run = client.create_run(experiment_id, tags={
        "mlflow.source.git.repoURL": "https://x-access-token:s3cretvalue123@github.com/acme/r.git",
        "mlflow.source.name": "/home/carol/projects/train.py",
        "mlflow.project.entryPoint": "/Users/carol/main.py"})
    client.set_terminated(run.info.run_id)
    result = export("leaks", tmp_path / "out", tracking_uri=client.tracking_uri,
                    options=ExportOptions(formats=("prov-json", "provn", "rocrate"),
                                          crate_as_folder=True, pseudonymize=True))
    texts = [p.read_text(encoding="utf-8") for p in result.experiment_dir.rglob("*")
             if p.suffix in (".json", ".provn")]
    assert len(texts) >= 5
    for text in texts:
        assert "s3cretvalue123" not in text and "x-access-token" not in text
        assert "carol" not in text
    assert any("https://github.com/acme/r.git" in text for text in texts)
    assert any("/home/user-" in text and "/projects/train.py" in text for text in texts)


@pytest.mark.parametrize("points", [
    [(5, 1000, 0.5), (1, 2000, 0.1)],
    [(5, 1000, 0.5), (1, 2000, 0.1), (5, 3000, math.nan)],
    [(2, 1000, 0.5), (2, 1000, -1.0), (0, 500, 9.0)],
], ids=["step-before-time", "nan-latest", "same-step-and-time"])
def test_summary_last_is_mlflows_latest_value(tmp_path, points):
    """Steps logged out of time order: the range is by step and ``last`` is the value MLflow
    itself reports as the run's latest (largest step, then timestamp, then value)."""
    from mlflow.entities import Metric
    from mlflow_runs import client_for, new_run, run_record

    from exporters.collect import metric_series, summarise

    client = client_for(tmp_path)
    run_id = new_run(client, "order", tmp_path)
    client.log_batch(run_id, metrics=[Metric("loss", v, t, s) for s, t, v in points])
    [series] = metric_series(client, run_record(client, run_id), "loss", {})
    summary = summarise(series, None)
    latest = client.get_run(run_id).data.metrics["loss"]
    assert (summary.first_step, summary.last_step) == (min(p[0] for p in points),
                                                       max(p[0] for p in points))
    assert summary.last == latest or (math.isnan(summary.last) and math.isnan(latest))
    assert summary.first_time.timestamp() * 1000 == min(p[1] for p in points)
    assert summary.last_time.timestamp() * 1000 == max(p[1] for p in points)


def _writer_agents(document: dict) -> list[dict]:
    return [a for a in document.get("agent", {}).values()
            if "mlflowprov:Writer" in [t["$"] for t in _as_list(a["prov:type"])]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_journal_writers_and_integrity_are_exported(exported):
    import os

    sample, result = exported
    document = json.loads((result.experiment_dir / f"run-{sample.producer}" / "prov.json")
                          .read_text(encoding="utf-8"))
    (run,) = [a for a in document["activity"].values()
              if a.get("mlflowprov:runId") == sample.producer]
    assert run["mlflowprov:journalIntact"] is True
    writers = _writer_agents(document)
    assert [w["mlflowprov:pid"] for w in writers] == [
        {"$": str(os.getpid()), "type": "xsd:int"}]
    roles = [r.get("prov:role") for r in document["wasAssociatedWith"].values()
             if r["prov:agent"] in document["agent"] and r["prov:agent"].endswith("writer.0")
             and r["prov:activity"] == f"mlflow:run.{sample.producer}"]
    assert [role["$"] for role in roles] == ["mlflowprov:Writer"]


def test_a_tampered_journal_exports_as_not_intact(tmp_path):
    import sqlite3

    from mlflow import MlflowClient
    from store_templates import prov_store

    store = tmp_path / "store"
    uri = prov_store(store)
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("tampered")).info.run_id
    client.log_param(run_id, "lr", "0.1")
    with sqlite3.connect(store / "mlflow.db") as connection:
        connection.execute("UPDATE prov_journal SET payload = '{\"params\":{\"lr\":\"9\"}}' "
                           "WHERE kind = 'run.params_logged'")
    result = export("tampered", tmp_path / "out", tracking_uri=uri)
    document = json.loads((result.experiment_dir / f"run-{run_id}" / "prov.json").read_text())
    (run,) = [a for a in document["activity"].values() if a.get("mlflowprov:runId") == run_id]
    assert run["mlflowprov:journalIntact"] is False
