"""``mlflow-prov query`` answers as a table, CSV and SPARQL 1.1 JSON results, over a small
PROV-O graph in oxigraph; and bad SPARQL as one line naming where and what to fix."""

from __future__ import annotations

import csv
import io
import json

import pytest
import rdflib
from pyoxigraph import RdfFormat, Store

from exporters.sparql import SparqlError, render, run_query
from exporters.sparql_questions import QUESTIONS, Question

GRAPH = """
@prefix mlflow: <urn:mlflow:> .
@prefix mlflowprov: <https://w3id.org/mlflow-prov/ns#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
mlflow:run.a a mlflowprov:Run ; rdfs:label "first, \\"quoted\\"" ; mlflowprov:runId "a" .
mlflow:run.b a mlflowprov:Run ; rdfs:label "two\\nlines" ; mlflowprov:runId "b" ;
    prov:used <https://example.org/data.csv> .
"""
RUNS = """SELECT ?runId ?label ?used WHERE {
  ?run a mlflowprov:Run ; mlflowprov:runId ?runId ; rdfs:label ?label .
  OPTIONAL { ?run prov:used ?used } } ORDER BY ?runId"""


@pytest.fixture(scope="module")
def store() -> Store:
    store = Store()
    store.load(GRAPH, format=RdfFormat.TURTLE)
    return store


def test_table_aligns_columns_and_shortens_names(store):
    lines = render(run_query(store, RUNS), "table").splitlines()
    assert lines[0].split() == ["runId", "label", "used"]
    assert lines[2].startswith("a      first, \"quoted\"")
    assert lines[3] == "b      two lines        <https://example.org/data.csv>"
    assert lines[-1] == "(2 rows)"
    prefixed = render(run_query(store, "SELECT ?run WHERE { ?run mlflowprov:runId 'a' }"),
                      "table")
    assert "mlflow:run.a" in prefixed and "(1 row)" in prefixed


def test_csv_is_sparql_csv_results(store):
    rows = list(csv.reader(io.StringIO(render(run_query(store, RUNS), "csv"))))
    assert rows == [["runId", "label", "used"], ["a", 'first, "quoted"', ""],
                    ["b", "two\nlines", "https://example.org/data.csv"]]


def test_json_is_sparql_json_results(store):
    answer = json.loads(render(run_query(store, RUNS), "json"))
    assert answer["head"]["vars"] == ["runId", "label", "used"]
    first, second = answer["results"]["bindings"]
    assert first["label"] == {"type": "literal", "value": 'first, "quoted"'}
    assert "used" not in first
    assert second["used"] == {"type": "uri", "value": "https://example.org/data.csv"}


def test_ask_and_construct(store):
    ask = run_query(store, "ASK { ?run mlflowprov:runId 'b' }")
    assert render(ask, "table") == "true"
    assert json.loads(render(run_query(store, "ASK { ?r mlflowprov:runId 'z' }"), "json")) \
        == {"head": {}, "boolean": False}
    turtle = render(run_query(store, "CONSTRUCT { ?r rdfs:label ?l } WHERE "
                                     "{ ?r rdfs:label ?l }"), "json")
    graph = rdflib.Graph().parse(data=turtle, format="turtle")
    assert len(graph) == 2


@pytest.mark.parametrize(("sparql", "expected"), [
    ("SELECT ?x\nWHERE { ?x ?p }", "bad SPARQL at line 2, column 9, near '?x ?p }': expected"),
    ("SELECT ?x WHERE { ?x ?p ?o } LIMT 3",
     "bad SPARQL at line 1, column 30, near 'LIMT 3': expected one of HAVING"),
    ("SELECT ?x WHERE { ?x nope:p ?o }",
     "column 22: unknown prefix nope:; declare it with PREFIX nope: <iri>"),
])
def test_bad_sparql_is_one_line_naming_where(store, sparql, expected):
    with pytest.raises(SparqlError) as raised:
        run_query(store, sparql)
    message = str(raised.value)
    assert expected in message and "\n" not in message and len(message) < 300


def test_unknown_output_is_refused(store):
    with pytest.raises(SparqlError, match="--output must be one of table, csv, json"):
        render(run_query(store, RUNS), "xml")


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_named_questions_parse_and_bind_any_text_as_a_literal(store, name):
    hostile = 'x" } } ; DROP ALL ; SELECT * { "'
    answer = json.loads(render(run_query(store, QUESTIONS[name].bound(hostile)), "json"))
    assert answer["results"]["bindings"] == []


def test_a_bound_argument_arrives_as_written(store):
    echo = Question("--echo", "TEXT", "SELECT ?needle WHERE { VALUES ?needle { {{NEEDLE}} } }")
    text = 'back\\slash "quote"\nnew line\ttab\r'
    (row,) = run_query(store, echo.bound(text))
    assert row["needle"].value == text
