"""Linked-data formats (provo-ttl, jsonld, prov-xml) in `export`, and `mlflow-prov convert` /
`collect` on our PROV-JSON and on yProv4ML's files of every generation (tests/data copies)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rdflib
from click.testing import CliRunner
from prov.model import ProvDocument
from rdflib.compare import isomorphic

from exporters.cli import main
from exporters.writers.linked_data import serialize

DATA = Path(__file__).resolve().parents[1] / "data" / "yprov4ml" / "samples"
YPROV4ML = {"v0": DATA / "dataset_v0-distributed_provgraph_3B.json",
            "v1": DATA / "dataset_v1-inline_MetricsType.TXT_False_None_0.json",
            "v2": DATA / "dataset_v2-contexts_prov_MetricsType.NETCDF_False_GR0_0.json",
            "v3": DATA / "v3_demo_0" / "prov_demo_GR0_0.json"}
PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")


@pytest.fixture(scope="module")
def exported(prov_experiment, tmp_path_factory) -> Path:
    """The sample experiment exported once in every linked-data format (plus PROV-JSON)."""
    out = tmp_path_factory.mktemp("linked")
    result = CliRunner().invoke(main, [
        "export", "--tracking-uri", prov_experiment.tracking_uri,
        "--experiment", prov_experiment.name, "--out", str(out),
        "--format", "prov-json,provo-ttl,jsonld,prov-xml"])
    assert result.exit_code == 0, result.output
    return next(out.iterdir())


def run_dir(exported: Path, run_id: str) -> Path:
    return exported / f"run-{run_id}"


def test_turtle_and_jsonld_hold_the_run_as_a_prov_activity(exported, prov_experiment):
    folder = run_dir(exported, prov_experiment.producer)
    run = rdflib.URIRef(f"urn:mlflow:run.{prov_experiment.producer}")
    turtle = rdflib.Graph().parse(folder / "prov.ttl", format="turtle")
    assert (run, rdflib.RDF.type, PROV.Activity) in turtle
    assert any(turtle.triples((run, PROV.startedAtTime, None)))
    assert any(turtle.triples((None, PROV.wasGeneratedBy, run)))
    # PROV-JSON-LD writes each relation as a node pointing at its ends (prov:activity …)
    jsonld = rdflib.Graph().parse(folder / "prov.jsonld", format="json-ld")
    assert (run, rdflib.RDF.type, PROV.Activity) in jsonld
    assert any(jsonld.triples((None, PROV.activity, run)))


def test_prov_xml_loads_back_with_the_same_statements_as_prov_json(exported, prov_experiment):
    for folder, stem in ((run_dir(exported, prov_experiment.consumer), "prov"),
                         (exported, "experiment.prov")):
        from_json = ProvDocument.deserialize(folder / f"{stem}.json", format="json")
        from_xml = ProvDocument.deserialize(folder / f"{stem}.xml", format="xml")
        assert from_xml == from_json


def test_turtle_round_trip_keeps_the_statements(exported, prov_experiment):
    """Read back with rdflib: prov 3.2.3's own RDF reader merges an activity's qualified and
    unqualified wasInformedBy (a run with a parent and an upstream run) and fails."""
    folder = run_dir(exported, prov_experiment.consumer)
    from_json = ProvDocument.deserialize(folder / "prov.json", format="json")
    graph_ttl = rdflib.Graph().parse(folder / "prov.ttl", format="turtle")
    typed = {str(s) for kind in (PROV.Entity, PROV.Activity, PROV.Agent)
             for s in graph_ttl.subjects(rdflib.RDF.type, kind)}
    elements = {r.identifier.uri for r in from_json.flattened().get_records() if r.is_element()}
    assert typed == elements
    graph_json = rdflib.Graph().parse(data=serialize(from_json, "provo-ttl"), format="turtle")
    assert isomorphic(graph_json, graph_ttl)


@pytest.mark.parametrize("generation", YPROV4ML)
@pytest.mark.parametrize("fmt", ["provo-ttl", "jsonld", "prov-xml", "provn", "dot", "html"])
def test_convert_reads_every_yprov4ml_generation(generation, fmt, tmp_path):
    out = tmp_path / f"out.{fmt}"
    result = CliRunner().invoke(main, ["convert", str(YPROV4ML[generation]), "--to", fmt,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if fmt == "provo-ttl":
        graph = rdflib.Graph().parse(data=text, format="turtle")
        assert any(graph.triples((None, rdflib.RDF.type, PROV.Activity)))
        assert all(str(s).split(":")[0] in ("urn", "http", "https")
                   for s in graph.subjects() if isinstance(s, rdflib.URIRef))
    elif fmt == "jsonld":
        assert any(rdflib.Graph().parse(data=text, format="json-ld")
                   .triples((None, rdflib.RDF.type, PROV.Activity)))
    elif fmt == "prov-xml":
        source = ProvDocument.deserialize(YPROV4ML[generation], format="json") \
            if generation != "v2" else None
        if source is not None:
            assert ProvDocument.deserialize(content=text, format="xml") == source
    elif fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "mv-data" in text
        assert "\"label\":\"wasGeneratedBy\"" in text
    else:
        assert text.strip()


def test_convert_svg_of_our_run(exported, prov_experiment, tmp_path):
    out = tmp_path / "graph.svg"
    result = CliRunner().invoke(main, ["convert", str(run_dir(exported, prov_experiment.producer)
                                                      / "prov.json"),
                                       "--to", "svg", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text()


def test_a_graph_too_big_even_summarised_is_refused_before_graphviz(exported, tmp_path):
    result = CliRunner().invoke(main, ["convert", str(exported / "experiment.prov.json"),
                                       "--to", "svg", "--max-nodes", "3",
                                       "--out", str(tmp_path / "e.svg")])
    assert result.exit_code == 1 and "nodes even summarised, over --max-nodes 3" in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "e.svg").exists()


def test_convert_reports_repairs_of_foreign_names(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(YPROV4ML["v2"]), "--to", "provo-ttl",
                                       "--out", str(tmp_path / "v2.ttl")])
    assert result.exit_code == 0
    assert "note: 3 name(s) hold characters PROV-N cannot write" in result.output
    assert "made absolute IRIs" in result.output


def test_convert_errors_are_one_line(tmp_path):
    not_prov = tmp_path / "metrics.json"
    not_prov.write_text('{"loss": [1, 2]}')
    broken = tmp_path / "broken.json"
    broken.write_text('{"entity": ')
    cases = [([str(tmp_path / "missing.json")], "no such file"),
             ([str(not_prov)], "not PROV-JSON"),
             ([str(broken)], "not JSON")]
    for args, message in cases:
        result = CliRunner().invoke(main, ["convert", *args, "--to", "dot",
                                           "--out", str(tmp_path / "x.dot")])
        assert result.exit_code == 1, result.output
        assert message in result.output and result.output.count("\n") == 1
    bad_format = CliRunner().invoke(main, ["convert", str(broken), "--to", "png",
                                           "--out", "x"])
    assert bad_format.exit_code == 2 and "'png' is not one of" in bad_format.output


def test_collect_makes_one_bundle_per_file(exported, tmp_path):
    out = tmp_path / "all.prov.json"
    result = CliRunner().invoke(main, ["collect", str(exported), str(DATA / "v3_demo_0"),
                                       str(YPROV4ML["v0"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    run_files = sorted(exported.glob("run-*/prov.json"))
    doc = ProvDocument.deserialize(out, format="json")
    bundles = {str(b.identifier): b for b in doc.bundles}
    assert len(bundles) == len(run_files) + 1 + 2  # runs, experiment, v3, v0
    run_bundle = bundles[f"collection:{exported.name}/{run_files[0].parent.name}/prov.json"]
    original = ProvDocument.deserialize(run_files[0], format="json").flattened()
    assert set(run_bundle.records) == set(original.records)
    members = json.loads(out.read_text())["hadMember"]
    assert len(members) == len(bundles)
    assert f"collected {len(bundles)} file(s)" in result.output


def test_collect_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["collect", str(tmp_path / "empty"),
                                       "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "no PROV-JSON files found" in result.output
    result = CliRunner().invoke(main, ["collect", str(tmp_path / "nope"),
                                       "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "no such file or folder" in result.output


def test_a_collection_of_yprov4ml_files_converts_to_rdf(tmp_path):
    """Bundles whose names need repair (yProv4ML's non-URI namespaces) keep their records."""
    merged = tmp_path / "all.json"
    assert CliRunner().invoke(main, ["collect", str(DATA), "--out", str(merged)]).exit_code == 0
    for fmt, rdf_format in (("provo-ttl", "turtle"), ("jsonld", "json-ld")):
        out = tmp_path / f"all.{fmt}"
        result = CliRunner().invoke(main, ["convert", str(merged), "--to", fmt,
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        graph = rdflib.Dataset().parse(out, format=rdf_format)
        activities = {s for s, _, _, _ in graph.quads((None, rdflib.RDF.type, PROV.Activity,
                                                         None))}  # bundles: named graphs
        assert len(activities) >= len(YPROV4ML), fmt
        assert all(str(a).startswith(("urn:", "http")) for a in activities)
