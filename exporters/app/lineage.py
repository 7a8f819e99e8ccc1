"""Lineage across runs and experiments, read from the journal.

Why the journal: MLflow keeps a run's inputs, but not which run made them, and has no query
for "who used what this run produced". Every ``log_inputs`` is journaled with each dataset's
source, and every LoggedModel's creation with its source run; a dataset whose source names a
run's artifact (``runs:/<run_id>/<path>`` or ``…/<run_id>/artifacts/<path>``) or a model
another run logged is a producer → consumer link. Two kind-filtered journal reads give the
whole store's links, across experiments, without loading a single run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mlflow_prov.journal import JournalEvent, read_events_page
from mlflow_prov.vocabulary import DATASET_CONTEXT_TAG, EventKind, normalise_context

RUN_ID = r"([0-9a-f]{32})"
ARTIFACT_REFERENCES = (re.compile(rf"runs:/{RUN_ID}/([^\"'\s]+)"),
                       re.compile(rf"/{RUN_ID}/artifacts/([^\"'\s]+)"))
SCAN_PAGE = 1000
DEPTH = 3  # run -> artifact -> dataset -> run: the furthest a producer is from its consumer


@dataclass(frozen=True)
class Node:
    """A lineage node: ``kind`` is run, dataset, artifact or model; ``ref`` identifies it
    in MLflow (a run id, a model id, ``run_id/path``, ``name@digest``)."""

    kind: str
    ref: str

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.ref}"


@dataclass(frozen=True)
class Edge:
    source: Node
    target: Node
    label: str


@dataclass
class LineageIndex:
    """Every producer → consumer link of a store, and the experiment each node belongs to."""

    edges: list[Edge] = field(default_factory=list)
    experiment_of: dict[Node, str | None] = field(default_factory=dict)
    labels: dict[Node, str] = field(default_factory=dict)
    _out: dict[Node, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    _in: dict[Node, list[Edge]] = field(default_factory=lambda: defaultdict(list))

    def add(self, source: Node, target: Node, label: str) -> None:
        edge = Edge(source, target, label)
        if edge not in self._out[source]:
            self.edges.append(edge)
            self._out[source].append(edge)
            self._in[target].append(edge)

    def neighbourhood(self, start: Iterable[Node], depth: int = DEPTH,
                      passable: Callable[[Node], bool] = lambda node: True) -> list[Edge]:
        """The edges reachable upstream and downstream of ``start``, within ``depth`` hops
        in each direction (never sideways: a dataset's other users are not upstream).

        Only ``passable`` nodes are reached: a node the reader may not see must not lead to
        the ones behind it, or the graph would show links that exist only through it."""
        found: dict[Edge, None] = {}
        starts = list(start)  # read once: a generator would leave downstream without starts
        for direction in (self._in, self._out):
            frontier = list(starts)
            seen = set(frontier)
            for _ in range(depth):
                step = []
                for node in frontier:
                    for edge in direction.get(node, ()):
                        other = edge.source if direction is self._in else edge.target
                        if not passable(other):
                            continue
                        found[edge] = None
                        if other not in seen:
                            seen.add(other)
                            step.append(other)
                frontier = step
        return list(found)


def run_node(run_id: str) -> Node:
    return Node("run", run_id)


def model_node(model_id: str) -> Node:
    return Node("model", model_id)


def dataset_node(name: str, digest: str) -> Node:
    return Node("dataset", f"{name}@{digest}")


def artifact_node(run_id: str, path: str) -> Node:
    return Node("artifact", f"{run_id}/{path}")


def artifact_references(source: str | None) -> list[tuple[str, str]]:
    """``(run_id, path)`` of each run artifact a dataset source names."""
    found: dict[tuple[str, str], None] = {}
    for pattern in ARTIFACT_REFERENCES:
        for match in pattern.finditer(source or ""):
            found[(match[1], match[2].rstrip("/"))] = None
    return list(found)


def _all_events(tracking_uri: str, kind: EventKind) -> Iterator[JournalEvent]:
    after = None
    while True:
        page = read_events_page(tracking_uri, kinds=[kind], after_seq=after, limit=SCAN_PAGE)
        yield from page.events
        if page.next_after_seq is None:
            return
        after = page.next_after_seq


def build_index(tracking_uri: str) -> LineageIndex:
    """The store's lineage from its LoggedModel creations and its runs' logged inputs."""
    index = LineageIndex()
    for event in _all_events(tracking_uri, EventKind.LOGGED_MODEL_CREATED):
        model = model_node(event.payload["model_id"])
        index.experiment_of[model] = event.experiment_id
        index.labels[model] = event.payload.get("name") or event.payload["model_id"]
        if event.run_id:
            producer = run_node(event.run_id)
            index.experiment_of[producer] = event.experiment_id
            index.add(producer, model, "logged")
    for event in _all_events(tracking_uri, EventKind.RUN_INPUTS_LOGGED):
        if not event.run_id:
            continue
        consumer = run_node(event.run_id)
        index.experiment_of[consumer] = event.experiment_id
        for dataset in event.payload.get("datasets") or ():
            _add_dataset(index, consumer, event.experiment_id, dataset)
        for model_id in event.payload.get("models") or ():
            index.add(model_node(model_id), consumer, "used")
    return index


def _add_dataset(index: LineageIndex, consumer: Node, experiment_id: str | None,
                 dataset: dict) -> None:
    node = dataset_node(dataset.get("name") or "dataset", dataset.get("digest") or "")
    index.experiment_of.setdefault(node, experiment_id)
    index.labels[node] = dataset.get("name") or "dataset"
    context = normalise_context(dataset.get("context") or dataset.get(DATASET_CONTEXT_TAG))
    index.add(node, consumer, f"used ({context})" if context else "used")
    for producer_id, path in artifact_references(dataset.get("source")):
        if producer_id == consumer.ref:
            continue
        artifact = artifact_node(producer_id, path)
        index.labels[artifact] = path
        index.add(run_node(producer_id), artifact, "produced")
        index.add(artifact, node, "source of")
