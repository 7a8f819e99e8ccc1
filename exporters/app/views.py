"""Lineage as the reader sees it: named nodes that link to MLflow's own UI, filtered by what
the reader may see. One :class:`~exporters.viewer.model.ViewGraph` feeds the JSON API, the
table on the lineage page and the interactive graph (the HTML viewer's renderer)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException

from exporters.app.lineage import Edge, LineageIndex, Node, run_node
from exporters.app.permissions import Permissions
from exporters.viewer.model import ViewEdge, ViewGraph, ViewNode

PARENT_TAG = "mlflow.parentRunId"
MAX_CHILDREN = 100
PREFETCH_BATCH = 100


@dataclass(frozen=True)
class RunSummary:
    """What a lineage node shows of a run."""

    run_id: str
    name: str
    experiment_id: str
    status: str
    parent_id: str | None

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        return cls(run_id=run.info.run_id, name=run.info.run_name or run.info.run_id[:8],
                   experiment_id=run.info.experiment_id, status=run.info.status,
                   parent_id=run.data.tags.get(PARENT_TAG))


def mlflow_run_href(experiment_id: str, run_id: str) -> str:
    return f"/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_experiment_href(experiment_id: str) -> str:
    return f"/#/experiments/{experiment_id}"


def mlflow_model_href(experiment_id: str, model_id: str) -> str:
    return f"/#/experiments/{experiment_id}/models/{model_id}"


def mlflow_artifact_href(experiment_id: str, run_id: str, path: str) -> str:
    return f"/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{quote(path)}"


class RunDirectory:
    """Run summaries by id: those already read (a page of search results) and, fetched one
    at a time, the few others a lineage reaches (a producer in another experiment)."""

    def __init__(self, client: MlflowClient, known: Iterable[Run] = ()) -> None:
        self._client = client
        self._runs: dict[str, RunSummary | None] = {r.info.run_id: RunSummary.of(r)
                                                    for r in known}

    def prefetch(self, run_ids: Iterable[str], experiment_ids: Iterable[str]) -> None:
        """Read many runs at once (a search per 100 ids) instead of one request per run: a
        producer with 500 consumers is one page, not 500 round trips."""
        wanted = sorted(set(run_ids) - set(self._runs))
        experiments = sorted(set(experiment_ids))
        for start in range(0, len(wanted) if experiments else 0, PREFETCH_BATCH):
            chunk = wanted[start:start + PREFETCH_BATCH]
            listed = ", ".join(f"'{run_id}'" for run_id in chunk)
            for run in self._client.search_runs(experiments, f"attributes.run_id IN ({listed})",
                                                run_view_type=ViewType.ALL,
                                                max_results=PREFETCH_BATCH):
                self._runs[run.info.run_id] = RunSummary.of(run)

    def get(self, run_id: str) -> RunSummary | None:
        if run_id not in self._runs:
            try:
                self._runs[run_id] = RunSummary.of(self._client.get_run(run_id))
            except MlflowException:
                self._runs[run_id] = None  # named in a source but not (or no longer) a run
        return self._runs[run_id]

    def children(self, run: RunSummary) -> list[RunSummary]:
        found = self._client.search_runs([run.experiment_id],
                                         f"tags.`{PARENT_TAG}` = '{run.run_id}'",
                                         run_view_type=ViewType.ALL, max_results=MAX_CHILDREN)
        for child in found:
            self._runs[child.info.run_id] = RunSummary.of(child)
        return [RunSummary.of(child) for child in found]


class GraphBuilder:
    """Turns lineage edges into a :class:`ViewGraph`, dropping every node of an experiment
    the reader may not read (and the edges that touch it)."""

    def __init__(self, index: LineageIndex, runs: RunDirectory,
                 permissions: Permissions) -> None:
        self.index, self.runs, self.permissions = index, runs, permissions
        self._nodes: dict[str, ViewNode] = {}
        self._edges: dict[tuple[str, str, str], ViewEdge] = {}

    def experiment_of(self, node: Node) -> str | None:
        if node.kind == "run":
            summary = self.runs.get(node.ref)
            return summary.experiment_id if summary else None
        if node.kind == "artifact":
            return self.experiment_of(run_node(node.ref.split("/", 1)[0]))
        return self.index.experiment_of.get(node)

    def add_node(self, node: Node) -> bool:
        """Add ``node`` if the reader may see it; False when it is hidden or unknown."""
        if node.id in self._nodes:
            return True
        experiment_id = self.experiment_of(node)
        if experiment_id is None or not self.permissions.can_read(experiment_id):
            return False
        self._nodes[node.id] = self._view(node, experiment_id)
        return True

    def _view(self, node: Node, experiment_id: str) -> ViewNode:
        attributes = {"experiment_id": experiment_id}
        if node.kind == "run":
            run = self.runs.get(node.ref)
            assert run is not None  # experiment_of found it
            attributes |= {"run_id": run.run_id, "status": run.status,
                           "prov_page": f"/prov/runs/{run.run_id}"}
            return ViewNode(node.id, run.name, "run", mlflow_run_href(experiment_id, run.run_id),
                            attributes)
        if node.kind == "model":
            attributes["model_id"] = node.ref
            return ViewNode(node.id, self.index.labels.get(node, node.ref), "model",
                            mlflow_model_href(experiment_id, node.ref), attributes)
        if node.kind == "artifact":
            run_id, path = node.ref.split("/", 1)
            attributes |= {"run_id": run_id, "path": path}
            return ViewNode(node.id, path, "artifact",
                            mlflow_artifact_href(experiment_id, run_id, path), attributes)
        name, _, digest = node.ref.rpartition("@")
        attributes |= {"name": name, "digest": digest}
        return ViewNode(node.id, self.index.labels.get(node, name), "dataset",
                        mlflow_experiment_href(experiment_id), attributes)

    def passable(self, node: Node) -> bool:
        """Whether a lineage walk may go through ``node``: for a reader who sees everything
        any node; for others only one they may read (added to the graph on the way)."""
        return self.permissions.sees_everything() or self.add_node(node)

    def add_edge(self, source: Node, target: Node, label: str) -> None:
        if self.add_node(source) and self.add_node(target):
            self._edges.setdefault((source.id, target.id, label),
                                   ViewEdge(source.id, target.id, label))

    def add_edges(self, edges: list[Edge]) -> None:
        runs = {node for edge in edges for node in (edge.source, edge.target)
                if node.kind == "run"}
        self.runs.prefetch((node.ref for node in runs),
                           filter(None, (self.index.experiment_of.get(n) for n in runs)))
        for edge in edges:
            self.add_edge(edge.source, edge.target, edge.label)

    def add_family(self, run: RunSummary, with_children: bool = False) -> None:
        """Parent → child edges of ``run`` (its parent; its children when asked)."""
        if run.parent_id:
            self.add_edge(run_node(run.parent_id), run_node(run.run_id), "parent of")
        if with_children:
            for child in self.runs.children(run):
                self.add_edge(run_node(run.run_id), run_node(child.run_id), "parent of")

    def graph(self, title: str) -> ViewGraph:
        return ViewGraph(title=title, nodes=list(self._nodes.values()),
                         edges=list(self._edges.values()))


def experiment_graph(index: LineageIndex, runs: list[Run], client: MlflowClient,
                     permissions: Permissions, title: str) -> ViewGraph:
    """A page of an experiment's runs with everything upstream and downstream of them,
    in any experiment the reader may read, and their parent/child links."""
    builder = GraphBuilder(index, RunDirectory(client, runs), permissions)
    for run in runs:
        builder.add_node(run_node(run.info.run_id))
        builder.add_family(RunSummary.of(run))
    builder.add_edges(index.neighbourhood((run_node(r.info.run_id) for r in runs),
                                          passable=builder.passable))
    return builder.graph(title)


def neighbourhood_graph(index: LineageIndex, start: Node, client: MlflowClient,
                        permissions: Permissions) -> ViewGraph:
    """One run, model, dataset or artifact with its upstream and downstream."""
    runs = RunDirectory(client)
    builder = GraphBuilder(index, runs, permissions)
    if not builder.add_node(start):
        return builder.graph(f"lineage of {start.kind} {start.ref}")
    if start.kind == "run" and (summary := runs.get(start.ref)) is not None:
        builder.add_family(summary, with_children=True)
    builder.add_edges(index.neighbourhood([start], passable=builder.passable))
    return builder.graph(f"lineage of {start.kind} {start.ref}")


@dataclass(frozen=True)
class RunLink:
    """A producer run whose output (``via``: an artifact and the dataset made of it, or a
    model) a consumer run used: the run-to-run edge a reader looks for first."""

    producer: ViewNode
    consumer: ViewNode
    via: tuple[ViewNode, ...]


def run_links(graph: ViewGraph) -> list[RunLink]:
    """Every producer → consumer pair of runs the graph shows, with what passed between."""
    nodes = {node.id: node for node in graph.nodes}
    outgoing: dict[str, list[str]] = {}
    for edge in graph.edges:
        if edge.label != "parent of":
            outgoing.setdefault(edge.source, []).append(edge.target)
    links = []
    for producer in (n for n in graph.nodes if n.kind == "run"):
        paths = [[producer.id]]
        while paths:
            path = paths.pop()
            for target in outgoing.get(path[-1], ()):
                if nodes[target].kind == "run":
                    links.append(RunLink(producer, nodes[target],
                                         tuple(nodes[i] for i in path[1:])))
                elif target not in path and len(path) < 3:
                    paths.append([*path, target])
    return links


def graph_json(graph: ViewGraph) -> dict:
    return {"nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "href": n.href,
                       "attributes": n.attributes} for n in graph.nodes],
            "edges": [{"source": e.source, "target": e.target, "label": e.label}
                      for e in graph.edges]}
