"""The view model: plain dataclasses a renderer draws, independent of PROV and of MLflow.

A :class:`ViewNode` with ``children`` is a group (a run's params, its system metrics, the
software agents) that a renderer may show collapsed and let the reader expand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Edges with these labels do not order the layout (a parent run is not upstream of its child's
# data), so nesting runs adds no columns; both renderers draw them dashed.
LOOSE_EDGE_LABELS: tuple[str, ...] = ("parent of",)


@dataclass
class ViewNode:
    """One thing the reader sees: a run, dataset, model, artifact, context or a group.

    ``kind`` picks the shape and colour (``run``, ``dataset``, ``model``, ``artifact``,
    ``context``, ``experiment``, ``agent``, ``params``, ``metrics``, ``tags``, ``group``...);
    ``href`` is where clicking through leads (MLflow's own page for the thing), if anywhere.
    """

    id: str
    label: str
    kind: str
    href: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    children: list[ViewNode] = field(default_factory=list)


@dataclass
class ViewEdge:
    """A labelled arrow from ``source`` to ``target`` (node ids), e.g. ``used``, ``produced``."""

    source: str
    target: str
    label: str


@dataclass
class ViewGraph:
    """What one picture shows: a title, its nodes (groups hold their members) and edges."""

    title: str
    nodes: list[ViewNode] = field(default_factory=list)
    edges: list[ViewEdge] = field(default_factory=list)
