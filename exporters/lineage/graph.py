"""One lineage graph and one bounded walk over it.

The walk reads a :class:`~mlflow_prov.lineage_edges.LineageReader` one level at a time (one
indexed query per level on a prov store), so a question costs its answer: ``depth`` levels,
never the store. It never steps sideways (a dataset's other users are not upstream of a run),
never through a node ``passable`` refuses (a node the reader may not see must not lead to
the ones behind it), and never twice through one node (graphs may join and, with bad data,
loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from exporters.lineage.keys import NodeKey
from mlflow_prov.lineage_edges import EdgeRow, LineageReader, NodeRow

Direction = Literal["upstream", "downstream"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream")
DEFAULT_DEPTH = 10
Passable = Callable[["Node"], bool]


@dataclass(frozen=True)
class Node:
    """A lineage node as shown: ``attributes`` are strings worth showing; ``experiment_id``
    decides who may see it."""

    key: NodeKey
    label: str
    experiment_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return self.key.id

    @property
    def kind(self) -> str:
        return self.key.kind

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label,
                "attributes": dict(self.attributes)}


@dataclass(frozen=True)
class Edge:
    """``source`` (the derived thing) relates to ``target`` (its origin) by ``relation``;
    ``context`` says how a run used a dataset (training, evaluation...)."""

    source: NodeKey
    relation: str
    target: NodeKey
    context: str | None = None

    @classmethod
    def of(cls, row: EdgeRow) -> Edge:
        return cls(NodeKey.parse(row.source), row.relation, NodeKey.parse(row.target),
                   row.context)

    def other(self, direction: Direction) -> NodeKey:
        return self.target if direction == "upstream" else self.source

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source.id, "relation": self.relation, "target": self.target.id}


def node_of(key: NodeKey, row: NodeRow | None) -> Node:
    """The node a row describes; a node no row describes is one an edge names but the store
    does not know (a deleted run, a run of another store)."""
    if row is None:
        return Node(key, key.ref, None, {"missing": "true"})
    return Node(key, row.label, row.experiment_id, dict(row.attributes))


@dataclass
class LineageTree:
    """A node and, below it, its origins (upstream) or what was made from it (downstream).

    ``relation`` says how this node relates to the one above it (``None`` at the root);
    ``repeated`` marks a node already shown elsewhere in the tree, whose children are not
    repeated; ``truncated`` marks a node at the depth limit that has more below it."""

    node: Node
    direction: Direction
    relation: str | None = None
    children: list[LineageTree] = field(default_factory=list)
    repeated: bool = False
    truncated: bool = False
    context: str | None = None  # how a run used a dataset: training, evaluation...

    def to_dict(self) -> dict[str, Any]:
        return {**self.node.to_dict(), "relation": self.relation, "context": self.context,
                "repeated": self.repeated, "truncated": self.truncated,
                "children": [c.to_dict() for c in self.children]}

    def walk(self) -> Iterator[LineageTree]:
        """This tree and every subtree, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def edges(self) -> list[Edge]:
        """The tree's edges, oriented derived -> origin whichever way it was walked."""
        found: dict[Edge, None] = {}
        for tree in self.walk():
            for child in tree.children:
                derived, origin = ((tree.node.key, child.node.key)
                                   if self.direction == "upstream"
                                   else (child.node.key, tree.node.key))
                found.setdefault(Edge(derived, child.relation or "", origin), None)
        return list(found)


@dataclass
class Lineage:
    """The nodes and edges one question reached: what every renderer draws."""

    nodes: dict[NodeKey, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, other: Lineage) -> None:
        self.nodes.update(other.nodes)
        self.edges = list(dict.fromkeys([*self.edges, *other.edges]))


def _reader_direction(direction: Direction) -> Literal["origins", "derived"]:
    return "origins" if direction == "upstream" else "derived"


class Walker:
    """Reads nodes once each per question, and the edges of one level at a time."""

    def __init__(self, reader: LineageReader, passable: Passable | None = None) -> None:
        self.reader = reader
        self.passable = passable
        self._nodes: dict[NodeKey, Node] = {}

    def nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, Node]:
        wanted = [key for key in dict.fromkeys(keys) if key not in self._nodes]
        if wanted:
            rows = self.reader.nodes([key.id for key in wanted])
            for key in wanted:
                self._nodes[key] = node_of(key, rows.get(key.id))
        return self._nodes

    def allowed(self, key: NodeKey) -> bool:
        return self.passable is None or self.passable(self.nodes([key])[key])

    def step(self, frontier: Iterable[NodeKey], direction: Direction) -> list[Edge]:
        """Edges one level beyond ``frontier`` whose far end the reader may pass."""
        rows, far = self.reader.step([key.id for key in frontier], _reader_direction(direction))
        edges = [Edge.of(row) for row in rows]
        for edge in edges:
            key = edge.other(direction)
            self._nodes.setdefault(key, node_of(key, far.get(key.id)))
        known = self._nodes
        return [edge for edge in edges
                if self.passable is None or self.passable(known[edge.other(direction)])]

    def tree(self, start: NodeKey, direction: Direction, depth: int) -> LineageTree:
        """The tree of ``start``'s origins or descendants, ``depth`` relations deep.

        Breadth first, so a node reachable by a short and a long path is expanded at its
        shortest distance and marked ``repeated`` elsewhere."""
        root = LineageTree(self.nodes([start])[start], direction)
        seen = {start}
        level = [root]
        for _ in range(depth):
            by_node: dict[NodeKey, list[LineageTree]] = {}
            for tree in level:
                by_node.setdefault(tree.node.key, []).append(tree)
            following: list[LineageTree] = []
            for edge in self.step(by_node, direction):
                near = edge.source if direction == "upstream" else edge.target
                other = edge.other(direction)
                for tree in by_node.get(near, ()):
                    child = LineageTree(self._nodes[other], direction, edge.relation,
                                        repeated=other in seen, context=edge.context)
                    tree.children.append(child)
                    if not child.repeated:
                        seen.add(other)
                        following.append(child)
            level = following
            if not level:
                break
        if level:
            beyond = {edge.source if direction == "upstream" else edge.target
                      for edge in self.step([t.node.key for t in level], direction)}
            for tree in level:
                tree.truncated = tree.node.key in beyond
        return root

    def neighbourhood(self, starts: Iterable[NodeKey], depth: int) -> Lineage:
        """Upstream and downstream of ``starts``, ``depth`` relations each way."""
        starts = [key for key in dict.fromkeys(starts) if self.allowed(key)]
        found = Lineage()
        for direction in DIRECTIONS:
            frontier, seen = list(starts), set(starts)
            for _ in range(depth):
                edges = self.step(frontier, direction)
                found.edges.extend(edges)
                frontier = [key for key in dict.fromkeys(e.other(direction) for e in edges)
                            if key not in seen]
                seen.update(frontier)
                if not frontier:
                    break
        found.edges = list(dict.fromkeys(found.edges))
        keys = [*starts, *(k for e in found.edges for k in (e.source, e.target))]
        nodes = self.nodes(keys)
        found.nodes = {key: nodes[key] for key in dict.fromkeys(keys)}
        return found
