"""Graphs for DOT and SVG: the ML view by default (:mod:`exporters.viewer`), or the complete
PROV drawing (``--graph-detail full``), in which above ``max_nodes`` detail entities are
summarised.

Graphviz takes ~0.3 s for 1k nodes and about a minute for 10k (docs/internals.md,
"Graphviz"), so a
graph with more nodes than ``max_nodes`` replaces each group of detail entities (params,
metrics, tags, artifact and model files, status revisions) hanging off one activity or
collection by a single node saying how many it stands for, and states that in the graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import pydot
from prov.dot import prov_to_dot
from prov.model import (
    PROV,
    PROV_ATTR_ACTIVITY,
    PROV_ATTR_COLLECTION,
    PROV_ATTR_ENTITY,
    ProvDocument,
    ProvElement,
    ProvRelation,
    QualifiedName,
)

from exporters.lineage.prov import ExportLineage
from exporters.options import ExportOptions
from exporters.prov_model import (
    MLFLOWPROV,
    PROVML,
    new_document,
    qid,
    xml_safe_document,
)
from exporters.records import ExperimentRecord, RunRecord
from exporters.viewer.dot import view_to_dot
from exporters.viewer.ml_view import experiment_view, run_view

DETAIL_TYPES = (PROVML["HyperParameter"], PROVML["Metric"], MLFLOWPROV["Tag"],
                MLFLOWPROV["Artifact"], MLFLOWPROV["ModelFile"], MLFLOWPROV["RunStatus"])


def to_dot(doc: ProvDocument, max_nodes: int) -> pydot.Dot:
    """The DOT graph of ``doc``, summarised (and labelled as such) when it is too big."""
    graph_doc, note = summarise(xml_safe_document(doc), max_nodes)
    dot = prov_to_dot(graph_doc, use_labels=True, show_element_attributes=note is None)
    if note:
        dot.set("label", note)
        dot.set("labelloc", "t")
    return dot


def count_nodes(doc: ProvDocument) -> int:
    """Distinct element ids in the document and all its bundles."""
    return len({r.identifier for r in doc.flattened().get_records(ProvElement)})


def summarise(doc: ProvDocument, max_nodes: int) -> tuple[ProvDocument, str | None]:
    """``(doc, None)`` when small enough, else a flattened document with detail entities
    grouped per (anchor, type) and a sentence saying what was summarised."""
    total = count_nodes(doc)
    if total <= max_nodes:
        return doc, None
    flat = doc.flattened()
    groups = _detail_groups(flat)
    replacement = {member: group_id for group_id, (_, members) in groups.items()
                   for member in members}
    summary = new_document()
    for element in flat.get_records(ProvElement):
        if element.identifier not in replacement:
            summary.add_record(element)
    for group_id, (label, members) in groups.items():
        summary.entity(group_id, [(PROV["label"], f"{len(members)} {label}"),
                                  (PROV["type"], MLFLOWPROV["Summary"])])
    _copy_relations(flat, summary, replacement)
    kept = count_nodes(summary)
    note = (f"Summarised graph: {total} nodes exceed --max-nodes {max_nodes}; "
            f"{len(replacement)} detail entities are shown as {len(groups)} summary nodes "
            f"({kept} nodes drawn). The PROV files hold every node.")
    return summary, note


def _detail_groups(flat: ProvDocument) -> dict[QualifiedName, tuple[str, list[QualifiedName]]]:
    """Detail entities keyed by a new summary id per (anchor activity/collection, type)."""
    kinds: dict[QualifiedName, QualifiedName] = {}
    for element in flat.get_records(ProvElement):
        types = set(element.get_attribute(PROV["type"]))
        kind = next((t for t in DETAIL_TYPES if t in types), None)
        if kind is not None and element.identifier is not None:
            kinds[element.identifier] = kind
    grouped: dict[tuple, list[QualifiedName]] = defaultdict(list)
    for entity, anchor in _anchors(flat, kinds).items():
        grouped[(anchor, kinds[entity])].append(entity)
    return {qid("summary", str(anchor), kind.localpart): (f"{kind.localpart} of {anchor}",
                                                          members)
            for (anchor, kind), members in grouped.items()}


def _anchors(flat: ProvDocument, kinds: dict) -> dict[QualifiedName, QualifiedName]:
    """The activity that used/generated each detail entity, or the collection holding it."""
    anchors: dict[QualifiedName, QualifiedName] = {}
    for relation in flat.get_records(ProvRelation):
        attrs = dict(relation.formal_attributes)
        entity = attrs.get(PROV_ATTR_ENTITY)
        holder = attrs.get(PROV_ATTR_ACTIVITY) or attrs.get(PROV_ATTR_COLLECTION)
        if isinstance(entity, QualifiedName) and entity in kinds and holder is not None:
            anchors.setdefault(entity, holder)
    for entity in kinds:
        anchors.setdefault(entity, QualifiedName(MLFLOWPROV, "unattached"))
    return anchors


def _copy_relations(flat: ProvDocument, summary: ProvDocument,
                    replacement: dict[QualifiedName, QualifiedName]) -> None:
    """Relations with summarised ends redirected; duplicates and self-loops dropped."""
    seen: set[tuple] = set()
    for relation in flat.get_records(ProvRelation):
        formal = [(k, replacement.get(v, v)) for k, v in relation.formal_attributes]
        ends = [v for _, v in formal if isinstance(v, QualifiedName)]
        key = (relation.get_type(), tuple(formal))
        if key in seen or (len(ends) >= 2 and ends[0] == ends[1]):
            continue
        seen.add(key)
        summary.new_record(relation.get_type(), None, formal)


def run_graph(options: ExportOptions, run: RunRecord, doc: ProvDocument,
              lineage: ExportLineage | None = None) -> pydot.Dot:
    """A run's drawing at ``options.graph_detail``: the ML view (with the runs whose outputs
    it used, when ``lineage`` indexes them), or the full PROV graph."""
    if options.graph_detail == "full":
        return to_dot(doc, options.max_nodes)
    return view_to_dot(run_view(run, lineage))


def experiment_graph(options: ExportOptions, experiment: ExperimentRecord,
                     runs: Sequence[RunRecord], doc: ProvDocument) -> pydot.Dot:
    """The experiment's drawing at ``options.graph_detail``, bounded by ``max_nodes``."""
    if options.graph_detail == "full":
        return to_dot(doc, options.max_nodes)
    return view_to_dot(experiment_view(experiment, runs, options.max_nodes))
