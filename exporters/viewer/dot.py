"""Draw a :class:`~exporters.viewer.model.ViewGraph` with Graphviz (via pydot).

Left to right, so width grows with the number of steps in the lineage, not with the number of
things a run logged (those stack vertically). Tables (params, metrics, tags, system metrics)
are one HTML-like table node each, cut at :data:`MAX_TABLE_ROWS` rows; other groups (agents,
artifacts, folded runs) are one node saying how many members they hold. Parent → child edges
do not constrain ranks, so nesting runs does not add columns.
"""

from __future__ import annotations

import html
from typing import Any

import pydot

from exporters.sanitize import TEXT_NOTE, xml_safe_text, xml_unsafe
from exporters.viewer.model import LOOSE_EDGE_LABELS, ViewEdge, ViewGraph, ViewNode

MAX_TABLE_ROWS = 12
# System metrics are collapsed harder: the totals first (energy, emissions), then a count.
TABLE_ROWS = {"system": 4}
MAX_LABEL_CHARS = 48
TABLE_KINDS = ("params", "metrics", "tags", "system")

# kind -> (shape, fill colour); the HTML view uses the same colours (static/viewer.js)
STYLES: dict[str, tuple[str, str]] = {
    "run": ("box", "#bcd4f6"),
    "dataset": ("cylinder", "#fde68a"),
    "artifact": ("note", "#f3e8ff"),
    "model": ("box3d", "#c7f0d8"),
    "model_version": ("box3d", "#a7f3d0"),
    "prompt": ("note", "#fbcfe8"),
    "trace": ("hexagon", "#ccfbf1"),
    "context": ("ellipse", "#e0f2fe"),
    "agent": ("component", "#fed7aa"),
    "group": ("folder", "#eef2f7"),
    "params": ("plain", "#f1f5f9"),
    "metrics": ("plain", "#f1f5f9"),
    "tags": ("plain", "#f1f5f9"),
    "system": ("plain", "#fee2e2"),
}


def _escape(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """HTML-like label text: one line, cut at ``limit``, characters Graphviz's XML parser
    refuses written as ``\\uXXXX`` (:func:`~exporters.sanitize.xml_safe_text`)."""
    line = xml_safe_text(" ".join(str(text).split()))
    if len(line) > limit:
        line = line[:limit - 1] + "…"
    return html.escape(line, quote=True)


def _quote(identifier: str) -> str:
    """A DOT id for any string: always double-quoted, inner quotes and backslashes escaped,
    characters Graphviz refuses (NUL) or SVG cannot hold written as ``\\uXXXX``."""
    return '"' + xml_safe_text(identifier).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sanitized_comment(*texts: str) -> dict[str, str]:
    """``comment`` (Graphviz writes it into the SVG as an XML comment) saying the object's
    text was escaped: the drawing's ``mlflowprov:sanitized``."""
    if any(xml_unsafe(text) for text in texts):
        return {"comment": _quote(f"mlflowprov:sanitized: {TEXT_NOTE}")}
    return {}


def _table_label(node: ViewNode) -> str:
    fill = STYLES.get(node.kind, ("plain", "#ffffff"))[1]
    rows = [f'<tr><td bgcolor="{fill}"><b>{_escape(node.label)}</b></td></tr>']
    limit = TABLE_ROWS.get(node.kind, MAX_TABLE_ROWS)
    for child in node.children[:limit]:
        rows.append(f'<tr><td align="left">{_escape(child.label, 56)}</td></tr>')
    hidden = len(node.children) - limit
    if hidden > 0:
        rows.append(f'<tr><td align="left"><i>… and {hidden} more</i></td></tr>')
    return ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
            + "".join(rows) + "</table>>")


def _node_label(node: ViewNode) -> str:
    kind = node.kind.replace("_", " ")
    return (f'<<b>{_escape(node.label)}</b><br/>'
            f'<font point-size="9" color="#52606d">{_escape(kind)}</font>>')


def _dot_node(node: ViewNode) -> pydot.Node:
    shape, fill = STYLES.get(node.kind, ("box", "#ffffff"))
    attributes: dict[str, Any] = {"shape": shape, "tooltip": _quote(node.label)}
    attributes |= _sanitized_comment(node.id, node.label, node.href or "",
                                     *(child.label for child in node.children))
    if node.kind in TABLE_KINDS:
        attributes["label"] = _table_label(node)
    else:
        attributes |= {"label": _node_label(node), "style": '"filled,rounded"'
                       if shape == "box" else "filled", "fillcolor": _quote(fill)}
    if node.href:
        attributes["URL"] = _quote(node.href)
    return pydot.Node(_quote(node.id), **attributes)


def _dot_edge(edge: ViewEdge) -> pydot.Edge:
    attributes: dict[str, Any] = {"label": _quote(edge.label), "fontsize": "9",
                                  "fontcolor": '"#52606d"', "color": '"#7b8794"'}
    if edge.label in LOOSE_EDGE_LABELS:
        attributes |= {"constraint": "false", "style": "dashed"}
    return pydot.Edge(_quote(edge.source), _quote(edge.target), **attributes)


def view_to_dot(graph: ViewGraph) -> pydot.Dot:
    """The DOT graph of ``graph``: left to right, titled, one node per top-level view node."""
    dot = pydot.Dot(graph_type="digraph", rankdir="LR", nodesep="0.25", ranksep="0.45",
                    fontname="Helvetica", fontsize="12", label=_quote(graph.title),
                    labelloc="t", **_sanitized_comment(graph.title))
    dot.set_node_defaults(fontname="Helvetica", fontsize="11", margin='"0.12,0.06"')
    dot.set_edge_defaults(fontname="Helvetica", arrowsize="0.7")
    for node in graph.nodes:
        dot.add_node(_dot_node(node))
    for edge in graph.edges:
        dot.add_edge(_dot_edge(edge))
    return dot
