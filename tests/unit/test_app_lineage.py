"""The ``/prov/`` lineage walk: upstream and downstream of the starts, never through a node
the reader may not see."""

from __future__ import annotations

from exporters.app.lineage import LineageIndex, Node, artifact_node, dataset_node, run_node

PRODUCER, CONSUMER = run_node("a" * 32), run_node("b" * 32)
ARTIFACT, DATA = artifact_node("a" * 32, "data/x.csv"), dataset_node("x.csv", "d1")


def _index() -> LineageIndex:
    index = LineageIndex()
    index.add(PRODUCER, ARTIFACT, "produced")
    index.add(ARTIFACT, DATA, "source of")
    index.add(DATA, CONSUMER, "used")
    return index


def _nodes(edges: list) -> set[Node]:
    return {node for edge in edges for node in (edge.source, edge.target)}


def test_starts_given_as_a_generator_reach_downstream_as_well_as_upstream():
    edges = _index().neighbourhood(node for node in [DATA])
    assert _nodes(edges) == {PRODUCER, ARTIFACT, DATA, CONSUMER}


def test_a_hidden_node_leads_nowhere():
    edges = _index().neighbourhood([CONSUMER], passable=lambda node: node != DATA)
    assert edges == []
    edges = _index().neighbourhood([PRODUCER], passable=lambda node: node != ARTIFACT)
    assert edges == []
