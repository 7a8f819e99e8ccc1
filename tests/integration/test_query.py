"""``mlflow-prov query``: SPARQL over a prov store and over its exported PROV-O, and the named
questions answering as ``mlflow-prov lineage`` does on the same store (both through the
CLI, as a user runs them)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os

import mlflow
import pytest
from click.testing import CliRunner
from lineage_scenario import SECRET, write
from mlflow import MlflowClient
from store_templates import prov_store

from exporters import ExportOptions, export
from exporters.cli import main

# the scenario, a registered version, an export and a dozen reads of the store take seconds
pytestmark = pytest.mark.slow

FEATURES = "x,y\n1,2\n3,4\n5,6\n"  # what lineage_scenario logs as data/features.csv
EXPERIMENTS = ("features", "training", "scoring")
RUNS = "SELECT ?runId WHERE { ?run a mlflowprov:Run ; mlflowprov:runId ?runId }"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """lineage_scenario (prepare-data -> features.csv -> train-model -> model -> evaluate;
    score-copy uses a copy of features.csv linked to it only by its SHA-256), the model
    registered, the ``phase`` tag set once more by a second writer (rank 1 of a distributed
    job), and the three experiments exported as Turtle, JSON-LD and PROV-JSON."""
    tmp = tmp_path_factory.mktemp("query")
    uri = prov_store(tmp / "store")
    try:
        ids = write(uri)
        mlflow.set_registry_uri(uri)
        mlflow.register_model(f"models:/{ids['model']}", "classifier")
        os.environ["RANK"] = "1"
        try:
            MlflowClient(uri).set_tag(ids["producer"], "phase", "final")
        finally:
            del os.environ["RANK"]
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    out = tmp / "out"
    formats = ("provo-ttl", "jsonld", "prov-json")
    for name in EXPERIMENTS:
        export(name, out, tracking_uri=uri,
               options=ExportOptions(formats=formats, show_progress=False))
    return {"uri": uri, "out": out, **ids}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def failing(*args: str) -> str:
    """The error line of a command that must fail with one, and no traceback (click puts
    its usage lines above a usage error's)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert result.output.rstrip().endswith(line)
    return line


def query(store: dict, *args: str) -> list[dict[str, str]]:
    """The rows of ``mlflow-prov query ... --output json`` (SPARQL 1.1 JSON results)."""
    answer = json.loads(cli("query", "--tracking-uri", store["uri"], "--output", "json", *args))
    names = answer["head"]["vars"]
    return [{n: b[n]["value"] for n in names if n in b} for b in answer["results"]["bindings"]]


def lineage(store: dict, node: str, depth: int = 50) -> dict:
    """``mlflow-prov lineage NODE --downstream --json``: the downstream tree."""
    return json.loads(cli("lineage", "--tracking-uri", store["uri"], node, "--downstream",
                          "--depth", str(depth), "--json"))["downstream"]


def lineage_ids(tree: dict) -> set[tuple[str, str]]:
    """(kind, id) of every node below the root, named as ``query --derived-from`` names
    them: run id, model id, ``name/version``, dataset digest (kinds as
    :mod:`exporters.lineage.keys` names them)."""
    found: set[tuple[str, str]] = set()
    for child in tree["children"]:
        a = child["attributes"]
        key = {"run": a.get("run_id"), "model": a.get("model_id"),
               "version": f"{a.get('name')}/{a.get('version')}",
               "dataset": a.get("digest")}.get(child["kind"])
        if key is not None:
            found.add((child["kind"], key))
        found |= lineage_ids(child)
    return found


def users_in_lineage(tree: dict) -> set[str]:
    """Runs the lineage tree shows as using the root, directly or through a dataset made
    from it."""
    runs = set()
    for child in tree["children"]:
        if child["kind"] == "run" and child["relation"] == "used":
            runs.add(child["attributes"]["run_id"])
        elif child["kind"] == "dataset":
            runs |= users_in_lineage(child)
    return runs


@pytest.mark.parametrize("role", ["producer", "consumer", "child"])
def test_derived_from_answers_as_lineage_does(store, role):
    rows = query(store, "--derived-from", store[role])
    answered = {(row["kind"], row["id"]) for row in rows}
    assert answered == lineage_ids(lineage(store, store[role]))
    if role == "producer":  # the whole chain, across the three experiments
        assert ("run", store["consumer"]) in answered and ("run", store["child"]) in answered
        assert ("model", store["model"]) in answered
        assert ("version", "classifier/1") in answered
        # the copy of features.csv reaches its producer by its SHA-256 alone
        assert ("run", store["copy_user"]) in answered


def test_what_used_answers_as_lineage_does(store):
    digest = next(row["digest"] for row in query(store, "--what-used", "features.csv"))
    artifact = f"runs:/{store['producer']}/data/features.csv"
    # one dataset per digest: training used features.csv, score-copy the same bytes under
    # another name; the evaluation used the model made from the file, not the file
    users = {store["consumer"], store["copy_user"]}
    for needle in (digest[:8], f"sha256:{digest}", "features.csv", artifact):
        used_by = {row["runId"] for row in query(store, "--what-used", needle)}
        assert used_by == users_in_lineage(lineage(store, needle, depth=2)) == users, needle
    sha256 = hashlib.sha256(FEATURES.encode()).hexdigest()
    # by the file's hash: what used the artifact with those bytes
    assert {row["runId"] for row in query(store, "--what-used", f"sha256:{sha256}")} \
        == users_in_lineage(lineage(store, artifact, depth=2)) == users
    assert query(store, "--what-used", "no-such-dataset") == []


def test_who_changed_names_each_writer_and_when(store):
    rows = query(store, "--who-changed", "phase")
    assert [(r["runId"], r["keyKind"], r["events"], r.get("rank")) for r in rows] == [
        (store["producer"], "tag", "2", None), (store["producer"], "tag", "1", "1")]
    first, second = rows
    assert first["first"] < first["last"] <= second["first"] == second["last"]
    assert first["user"] and first["host"] and first["pid"]
    metric = query(store, "--who-changed", "carbon/emissions_kgco2eq")
    assert [(r["keyKind"], r["events"]) for r in metric] == [("metric", "1")]


def test_exported_files_answer_as_the_store_does(store):
    out = store["out"]
    expected = query(store, "--derived-from", store["producer"])
    assert expected
    for files in ([str(out)],
                  [str(out / e / "experiment.jsonld") for e in EXPERIMENTS],
                  [str(out / e / "experiment.prov.json") for e in EXPERIMENTS]):
        args = [a for f in files for a in ("--file", f)]
        assert query(store, *args, "--derived-from", store["producer"]) == expected, files
    assert query(store, "--file", str(out), "--who-changed", "phase") \
        == query(store, "--who-changed", "phase")


def test_show_sparql_prints_the_query_that_runs(store):
    shown = cli("query", "--what-used", 'features.csv" } ?x ?y ?z { "', "--show-sparql")
    assert shown.startswith("# Runs that used a dataset")
    assert 'VALUES ?needle { "features.csv\\" } ?x ?y ?z { \\"" }' in shown
    named = query(store, "--derived-from", store["consumer"])
    shown = cli("query", "--derived-from", store["consumer"], "--show-sparql")
    assert query(store, shown) == named


def test_any_sparql_over_chosen_experiments_in_each_output(store):
    rows = query(store, "--experiment", "features", RUNS)
    assert [r["runId"] for r in rows] == [store["producer"]]
    text = cli("query", "--tracking-uri", store["uri"], "--output", "csv", RUNS)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["runId"]
    assert {row[0] for row in parsed[1:]} == {store[r] for r in ("producer", "consumer",
                                                                "child", "copy_user")}
    table = cli("query", "--tracking-uri", store["uri"], "--experiment", "training", RUNS)
    assert table.splitlines()[0] == "runId" and table.rstrip().endswith("(2 rows)")
    values = cli("query", "--tracking-uri", store["uri"], "--output", "csv",
                 "SELECT ?v WHERE { ?e prov:value ?v }")
    assert SECRET not in values and "main" in values


def test_bad_input_is_one_line(store, tmp_path):
    uri = ["--tracking-uri", store["uri"]]
    assert "bad SPARQL at line 2, column 9, near '?x ?p }'" in failing(
        "query", *uri, "SELECT ?x\nWHERE { ?x ?p }")
    assert "unknown prefix" in failing("query", *uri, "SELECT ?x WHERE { ?x foo:bar ?y }")
    assert "no-such-experiment" in failing("query", *uri, "--experiment",
                                           "no-such-experiment", RUNS)
    assert "give one SPARQL query or one of" in failing("query", *uri)
    provn = tmp_path / "prov.provn"
    provn.write_text("document\nendDocument\n")
    assert "PROV-N cannot be read back" in failing("query", "--file", str(provn), RUNS)
    assert "no such file or folder" in failing("query", "--file", "/no/such/export", RUNS)


def test_who_changed_says_when_the_provenance_cannot_tell(store, tmp_path):
    """Files exported before key changes were recorded answer nothing, and say why."""
    old = tmp_path / "old.ttl"
    old.write_text("@prefix mlflowprov: <https://w3id.org/mlflow-prov/ns#> .\n"
                   "<urn:mlflow:run.x> a mlflowprov:Run ; mlflowprov:runId \"x\" .\n")
    result = CliRunner().invoke(main, ["query", "--file", str(old), "--who-changed", "lr"])
    assert result.exit_code == 0
    assert "(0 rows)" in result.stdout
    assert "records no key changes" in result.stderr
    assert "records no key changes" not in CliRunner().invoke(
        main, ["query", "--tracking-uri", store["uri"], "--who-changed", "lr"]).stderr
