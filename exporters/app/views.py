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

from exporters.app.permissions import Permissions
from exporters.lineage import Edge, Lineage, Node, NodeKey, Walker
from exporters.lineage.keys import run_key
from exporters.viewer.model import ViewEdge, ViewGraph, ViewNode
from mlflow_prov.lineage_edges import LineageReader

PARENT_TAG = "mlflow.parentRunId"
PREFETCH_BATCH = 100
DEPTH = 3  # run -> artifact -> dataset -> run: the furthest a producer is from its consumer
SHOWN_FILES = 6  # a run's files nothing else links to, drawn one by one up to this many


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


def mlflow_trace_href(experiment_id: str, trace_id: str) -> str:
    return f"/#/experiments/{experiment_id}/traces?selectedEvaluationId={quote(trace_id)}"


def prompt_page_href(name: str, version: int | str | None = None) -> str:
    """This server's history page of a prompt (``/prov/prompts/<name>``), at one version."""
    page = f"/prov/prompts/{quote(name, safe='')}"
    return page if version is None else f"{page}?version={version}"


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


def view_label(edge: Edge) -> str:
    """The words on a producer -> consumer arrow for a lineage edge (derived -> origin)."""
    if edge.relation == "used":
        return f"used ({edge.context})" if edge.context else "used"
    if edge.relation == "wasGeneratedBy":
        return {"model": "logged", "version": "registered"}.get(edge.source.kind, "produced")
    if edge.relation == "wasInformedBy" and edge.source.kind == "trace":
        return "recorded"
    return {"wasDerivedFrom": "source of", "wasInformedBy": "parent of",
            "wasRevisionOf": "revised by"}.get(edge.relation, edge.relation)


class GraphBuilder:
    """Turns a lineage walk into a :class:`ViewGraph`, never passing through, nor showing, a
    node of an experiment the reader may not read (nor the edges that touch it)."""

    def __init__(self, reader: LineageReader, runs: RunDirectory,
                 permissions: Permissions) -> None:
        self.runs, self.permissions = runs, permissions
        self.walker = Walker(reader, self.passable)

    def visible(self, node: Node) -> bool:
        """A node the store knows, of an experiment the reader may read; a registry version
        belongs to no experiment (only readers of every experiment see it)."""
        experiment_id = None if node.kind in ("version", "prompt") else node.experiment_id
        return "missing" not in node.attributes and self.permissions.can_read(experiment_id)

    def passable(self, node: Node) -> bool:
        """Whether the walk may go through ``node``: for a reader who sees everything any
        node; for others only one they may read."""
        return self.permissions.sees_everything() or self.visible(node)

    def graph(self, found: Lineage, title: str) -> ViewGraph:
        shown = {key: node for key, node in found.nodes.items() if self.visible(node)}
        self.runs.prefetch((key.ref for key in shown if key.kind == "run"),
                           {node.experiment_id or "" for node in shown.values()} - {""})
        nodes = {key: view for key, node in shown.items()
                 if (view := self._view(node)) is not None}
        edges = {(e.target.id, e.source.id, view_label(e)):
                 ViewEdge(e.target.id, e.source.id, view_label(e))
                 for e in found.edges if e.source in nodes and e.target in nodes}
        return ViewGraph(title=title, nodes=list(nodes.values()), edges=list(edges.values()))

    def _view(self, node: Node) -> ViewNode | None:
        experiment_id = node.experiment_id or ""
        attributes = {"experiment_id": experiment_id}
        if node.kind == "run":
            run = self.runs.get(node.key.ref)
            if run is None:  # in the journal, no longer in MLflow
                return None
            attributes |= {"run_id": run.run_id, "status": run.status,
                           "prov_page": f"/prov/runs/{run.run_id}"}
            return ViewNode(node.id, run.name, "run", mlflow_run_href(run.experiment_id,
                                                                      run.run_id), attributes)
        if node.kind == "model":
            attributes["model_id"] = node.key.ref
            return ViewNode(node.id, node.label, "model",
                            mlflow_model_href(experiment_id, node.key.ref), attributes)
        if node.kind == "version":
            name, _, number = node.key.ref.rpartition("/")
            attributes |= {"name": name, "version": number}
            return ViewNode(node.id, node.label, "model",
                            f"/#/models/{quote(name)}/versions/{number}", attributes)
        if node.kind == "prompt":
            name, _, number = node.key.ref.rpartition("/")
            attributes |= {"name": name, "version": number,
                           "prov_page": prompt_page_href(name, number)}
            return ViewNode(node.id, node.label, "prompt", prompt_page_href(name, number),
                            attributes)
        if node.kind == "trace":
            attributes["trace_id"] = node.key.ref
            return ViewNode(node.id, node.label, "trace",
                            mlflow_trace_href(experiment_id, node.key.ref), attributes)
        if node.kind == "artifact":
            run_id, path = node.key.run_id or "", node.key.path or ""
            attributes |= {"run_id": run_id, "path": path}
            return ViewNode(node.id, path, "artifact",
                            mlflow_artifact_href(experiment_id, run_id, path), attributes)
        attributes |= {"name": node.attributes.get("name", node.label), "digest": node.key.ref}
        return ViewNode(node.id, node.label, "dataset", mlflow_experiment_href(experiment_id),
                        attributes)


def experiment_graph(reader: LineageReader, runs: list[Run], client: MlflowClient,
                     permissions: Permissions, title: str) -> ViewGraph:
    """A page of an experiment's runs with everything upstream and downstream of them,
    in any experiment the reader may read, parents and children included."""
    builder = GraphBuilder(reader, RunDirectory(client, runs), permissions)
    starts = [run_key(run.info.run_id) for run in runs]
    found = builder.walker.neighbourhood(starts, DEPTH)
    return fold_files(builder.graph(found, title))


def fold_files(graph: ViewGraph) -> ViewGraph:
    """A run's recorded files that nothing else in the picture links to, drawn as one
    "N files" node when there are more than :data:`SHOWN_FILES`: a run that wrote a
    thousand files is one box, not a thousand, and the box leads to the run's page, which
    lists every file with its digest. Files another run used stay drawn one by one."""
    linked: dict[str, int] = {}
    for edge in graph.edges:
        for end in (edge.source, edge.target):
            linked[end] = linked.get(end, 0) + 1
    nodes = {node.id: node for node in graph.nodes}
    leaves: dict[str, list[str]] = {}
    for edge in graph.edges:
        file = nodes.get(edge.target)
        if (file is not None and file.kind == "artifact" and linked[file.id] == 1
                and nodes[edge.source].kind == "run"):
            leaves.setdefault(edge.source, []).append(file.id)
    folded = {run: files for run, files in leaves.items() if len(files) > SHOWN_FILES}
    if not folded:
        return graph
    gone = {file for files in folded.values() for file in files}
    groups = [_files_node(nodes[run], len(files)) for run, files in folded.items()]
    return ViewGraph(
        title=graph.title,
        nodes=[node for node in graph.nodes if node.id not in gone] + groups,
        edges=[edge for edge in graph.edges if edge.target not in gone]
        + [ViewEdge(run, group.id, "produced") for run, group in zip(folded, groups, strict=True)])


def _files_node(run: ViewNode, count: int) -> ViewNode:
    run_id = run.attributes.get("run_id", "")
    return ViewNode(f"files:{run_id}", f"{count} files", "artifact",
                    f"/prov/runs/{run_id}#recorded-artifacts",
                    {"run_id": run_id, "files": str(count),
                     "experiment_id": run.attributes.get("experiment_id", "")})


def neighbourhood_graph(reader: LineageReader, start: NodeKey, client: MlflowClient,
                        permissions: Permissions, depth: int = DEPTH) -> ViewGraph:
    """One run, model, version, dataset or artifact with its upstream and downstream,
    ``depth`` relations each way."""
    builder = GraphBuilder(reader, RunDirectory(client), permissions)
    title = f"lineage of {start.kind} {start.ref}"
    if not builder.visible(builder.walker.nodes([start])[start]):
        return ViewGraph(title=title)
    return builder.graph(builder.walker.neighbourhood([start], depth), title)


def readable_keys(reader: LineageReader, keys: list[NodeKey], client: MlflowClient,
                  permissions: Permissions) -> list[NodeKey]:
    """Those of ``keys`` whose nodes the reader may see, in order: what a reader is told
    an ambiguous prefix matches, so that it names nothing they may not read."""
    builder = GraphBuilder(reader, RunDirectory(client), permissions)
    found = builder.walker.nodes(keys)
    return [key for key in keys if builder.visible(found[key])]


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
