"""Exports survive hostile input: a 10 MB tag whose text defeats naive credential regexes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import mlflow
import pytest
from click.testing import CliRunner
from prov.model import ProvDocument

from exporters import ExportOptions, export
from exporters.cli import main
from mlflow_prov.journal import verify_chain
from mlflow_prov.vocabulary import run_chain

HUGE = 10_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request, tmp_path) -> str:
    """A prov store over sqlite, then over a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"prov://{tmp_path / 'store'}"
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

