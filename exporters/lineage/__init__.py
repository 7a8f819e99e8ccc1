"""One lineage for every output: what a run, model, artifact or dataset came from (upstream)
and what was made from it (downstream), across experiments.

    tree = lineage("prov:///data/runs", "models:/m-1234", "upstream", depth=5)
    print(render_text(tree))
    json.dumps(tree.to_dict())

The parts: typed node keys (:mod:`.keys`), one resolver (:mod:`.resolve`), one graph and one
bounded walk (:mod:`.graph`), fed from the journal's lineage tables on a prov store or from
MLflow's client API on any other URI (:mod:`.sources`), and rendered as the text tree
(:mod:`.text`), the pages' view graph (:mod:`.view`) and PROV (:mod:`.prov`). The CLI,
``/prov/api/lineage``, the ``/prov/`` pages and every export ask the same questions of it.
"""

from __future__ import annotations

from mlflow import MlflowClient

from exporters.lineage.graph import (
    DEFAULT_DEPTH,
    DIRECTIONS,
    Direction,
    Edge,
    Lineage,
    LineageTree,
    Node,
    Walker,
)
from exporters.lineage.keys import NodeKey
from exporters.lineage.resolve import resolve
from exporters.lineage.sources import LineageError, open_source
from exporters.lineage.text import render_text, with_run_details
from exporters.privacy import redact

__all__ = ["DEFAULT_DEPTH", "DIRECTIONS", "Direction", "Edge", "Lineage", "LineageError",
           "LineageTree", "Node", "NodeKey", "Walker", "lineage", "lineage_trees",
           "render_text"]


def lineage_trees(tracking_uri: str, node: str, directions: tuple[Direction, ...] = DIRECTIONS,
                  depth: int = DEFAULT_DEPTH,
                  client: MlflowClient | None = None) -> dict[Direction, LineageTree]:
    """The lineage trees of ``node`` (anything :func:`~exporters.lineage.resolve.resolve`
    accepts) one per direction, redacted as every output is (:func:`exporters.privacy.redact`)."""
    for direction in directions:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    client = client or _open(tracking_uri)
    reader = open_source(tracking_uri, client)
    walker = Walker(reader)
    start = resolve(reader, node, client)
    return {d: redact(with_run_details(walker.tree(start, d, depth), client))
            for d in directions}


def lineage(tracking_uri: str, node: str, direction: Direction = "upstream",
            depth: int = DEFAULT_DEPTH) -> LineageTree:
    """The lineage tree of ``node`` one way: see :func:`lineage_trees`."""
    return lineage_trees(tracking_uri, node, (direction,), depth)[direction]


def _open(tracking_uri: str) -> MlflowClient:
    from exporters.collect import open_client

    return open_client(tracking_uri)
