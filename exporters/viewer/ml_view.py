"""The ML view of an export: what a person asks about a run, built from the export's records.

The PROV document answers every question but draws ~40 nodes for one small run, a third of
them software agents, with ids as labels. This view draws what an ML practitioner names: the
run (by its name), the datasets it read (by name, schema as columns), the contexts they were
used in, the artifacts and models it produced (by path and name), and the lineage edges that
connect runs. Params, metrics and tags become one table each; software agents and system
metrics one node each, whose members a reader expands in the HTML view. Data flows left to
right: datasets and params → run → what it produced.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prov.model import QualifiedName

from exporters.lineage.keys import (
    MODEL,
    NodeKey,
    artifact_key,
    dataset_key,
    model_key,
    run_key,
)
from exporters.lineage.prov import ExportLineage, dataset_uri
from exporters.privacy import redact
from exporters.prov_model import (
    artifact_id_of,
    entity_of,
    model_id_of,
    software_versions,
)
from exporters.records import (
    ArtifactRecord,
    DatasetRecord,
    ExperimentRecord,
    HistoryEvent,
    LoggedModelRecord,
    MetricSummary,
    RunRecord,
)
from exporters.timeline import MetricFold, fold_events
from exporters.viewer.model import ViewEdge, ViewGraph, ViewNode
from exporters.wording import (
    WRITER_FIELDS,
    Change,
    changes,
    fold_summary,
    key_summary,
    span_text,
    time_text,
    writer_summary,
)
from mlflow_prov.vocabulary import (
    DEFAULT_CONTEXT_PREFIXES,
    OWN_TAG_PREFIX,
    SYSTEM_PREFIX,
    EventKind,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Artifacts of one run drawn one by one up to this many; more become one expandable group.
MAX_ARTIFACT_NODES = 8
MAX_VALUE_CHARS = 60
MAX_TIMELINE_ROWS = 5000


def shorten(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """One line of at most ``limit`` characters, ending in an ellipsis when cut."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def format_number(value: float) -> str:
    """``0.25``, ``1.2346e-05``, ``nan``, ``inf``: short and exact enough to read."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}"


def schema_columns(schema: str | None) -> str | None:
    """MLflow's JSON schema string as ``x: double, y: long`` instead of raw JSON."""
    if not schema:
        return None
    try:
        parsed = json.loads(schema)
    except ValueError:
        return shorten(schema)
    columns = parsed.get("mlflow_colspec") or parsed.get("mlflow_tensorspec") \
        if isinstance(parsed, dict) else None
    if not isinstance(columns, list):
        return shorten(schema)
    return ", ".join(f"{c.get('name', '?')}: {c.get('type', '?')}" for c in columns
                     if isinstance(c, dict))


@dataclass
class _Builder:
    """Collects nodes once by id, and edges once by (source, target, label)."""

    nodes: dict[str, ViewNode] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], ViewEdge] = field(default_factory=dict)
    origins: dict[QualifiedName, str] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)

    def node(self, node: ViewNode) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def group(self, group: ViewNode) -> str:
        """Add a group node; edges naming one of its members end at the group instead."""
        for child in group.children:
            self.alias[child.id] = group.id
        return self.node(group)

    def edge(self, source: str, target: str, label: str) -> None:
        source, target = self.alias.get(source, source), self.alias.get(target, target)
        if source != target:
            self.edges.setdefault((source, target, label), ViewEdge(source, target, label))

    def graph(self, title: str) -> ViewGraph:
        return ViewGraph(title=title, nodes=list(self.nodes.values()),
                         edges=list(self.edges.values()))


# --- node ids ------------------------------------------------------------------------------

def run_node_id(run_id: str) -> str:
    return run_key(run_id).id


def artifact_node_id(run_id: str, path: str) -> str:
    return artifact_key(run_id, path).id


def model_node_id(model_id: str) -> str:
    return model_key(model_id).id


def dataset_node_id(dataset: DatasetRecord) -> str:
    """One node per name and digest: a drawing shows each name a run gave its data."""
    return f"{dataset_key(dataset.digest).id}:{dataset.name}"


# --- nodes ---------------------------------------------------------------------------------

def run_node(run: RunRecord) -> ViewNode:
    """The run, labelled by its name, with what identifies and dates it."""
    attributes = {
        "run id": run.run_id, "status": run.status, "lifecycle": run.lifecycle_stage,
        "start": _utc(run.start_time), "end": _utc(run.end_time),
        "user": run.user, "source": run.source_name, "entry point": run.entry_point,
        "git commit": run.git_commit, "git repo": run.git_repo_url,
        "parent run": run.parent_run_id,
        "journal chain": {True: "intact", False: "BROKEN", None: None}[run.journal_intact],
    }
    return ViewNode(id=run_node_id(run.run_id), label=run.name or run.run_id[:8], kind="run",
                    attributes={k: str(v) for k, v in attributes.items() if v is not None})


def _utc(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else None


def dataset_node(dataset: DatasetRecord) -> ViewNode:
    attributes = {"digest": dataset.digest, "source type": dataset.source_type,
                  "source": dataset_uri(dataset) or dataset.source,
                  "columns": schema_columns(dataset.schema), "profile": dataset.profile}
    return ViewNode(id=dataset_node_id(dataset), label=dataset.name, kind="dataset",
                    attributes={k: str(v) for k, v in attributes.items() if v})


def artifact_node(run_id: str, artifact: ArtifactRecord) -> ViewNode:
    attributes = {"path": artifact.path, "size (bytes)": artifact.size,
                  "sha256": artifact.sha256, "uri": artifact.uri}
    return ViewNode(id=artifact_node_id(run_id, artifact.path), label=artifact.path,
                    kind="artifact",
                    attributes={k: str(v) for k, v in attributes.items() if v is not None})


def model_node(model: LoggedModelRecord) -> ViewNode:
    attributes = {"model id": model.model_id, "status": model.status,
                  "type": model.model_type, "location": model.artifact_location}
    attributes |= {f"param {k}": v for k, v in sorted(model.params.items())}
    attributes |= {f"metric {k}": format_number(v) for k, v in sorted(model.metrics.items())}
    files = [ViewNode(id=f"modelfile:{model.model_id}:{a.path}", label=a.path, kind="artifact",
                      attributes={"size (bytes)": str(a.size), "sha256": str(a.sha256)})
             for a in model.artifacts]
    return ViewNode(id=model_node_id(model.model_id), label=model.name, kind="model",
                    attributes={k: str(v) for k, v in attributes.items() if v is not None},
                    children=files)


def table_node(node_id: str, title: str, kind: str, rows: dict[str, str],
               member_kind: str) -> ViewNode:
    """A group drawn as one table: ``key = value`` rows, each also a member node."""
    children = [ViewNode(id=f"{node_id}:{key}", label=f"{key} = {shorten(value)}",
                         kind=member_kind, attributes={"key": key, "value": value})
                for key, value in rows.items()]
    return ViewNode(id=node_id, label=f"{title} ({len(rows)})", kind=kind,
                    attributes=dict(rows), children=children)


def metric_row(summary: MetricSummary) -> tuple[str, str]:
    """``train/loss`` -> ``0.25 (last of 20, steps 0–19)``; the context is added when the
    key's prefix does not already say it (``loss [training]``)."""
    implied = summary.context is None or any(
        summary.key.startswith(prefix) and context == summary.context
        for prefix, context in DEFAULT_CONTEXT_PREFIXES.items())
    key = summary.key if implied else f"{summary.key} [{summary.context}]"
    if summary.count == 1:
        return key, format_number(summary.last)
    return key, (f"{format_number(summary.last)} (last of {summary.count}, "
                 f"steps {summary.first_step}–{summary.last_step})")


def agents_node(run: RunRecord) -> ViewNode:
    """Software versions and the journal's writers: one node, expandable."""
    versions, source = software_versions(run)
    children = [ViewNode(id=f"agents:{run.run_id}:{name}", label=f"{name} {version}",
                         kind="agent", attributes={"version": version, "known from": source})
                for name, version in versions]
    for writer in distinct_writers(run.history):
        label = "writer " + " ".join(f"{k}={v}" for k, v in writer.items())
        children.append(ViewNode(id=f"agents:{run.run_id}:{label}", label=shorten(label),
                                 kind="agent", attributes=dict(writer)))
    return ViewNode(id=f"agents:{run.run_id}", label=f"software & writers ({len(children)})",
                    kind="agent", attributes={c.label: "" for c in children}, children=children)


def distinct_writers(history: Iterable[HistoryEvent]) -> list[dict[str, str]]:
    """Each distinct writer (user, host, pid, rank, client address) once, in first-seen order."""
    seen: dict[tuple, dict[str, str]] = {}
    for event in history:
        writer = {f: str(event.writer[f]) for f in WRITER_FIELDS
                  if event.writer.get(f) is not None}
        seen.setdefault(tuple(writer.items()), writer)
    return [w for w in seen.values() if w]


# --- one run ---------------------------------------------------------------------------------

def add_run_outputs(builder: _Builder, run: RunRecord) -> str:
    """The run and what it produced; added for every run before any run's inputs, so an input
    that another run produced finds that run's node, whatever the order of the runs."""
    run_id = builder.node(run_node(run))
    _add_outputs(builder, run, run_id)
    return run_id


def add_run_inputs(builder: _Builder, run: RunRecord, index: ExportLineage, *,
                   detail: bool) -> None:
    """The run's datasets (with the upstream run that produced one), input models and, with
    ``detail``, its contexts, tables and agents."""
    run_id = run_node_id(run.run_id)
    contexts: dict[str, str] = {}

    def context_of(name: str | None) -> str:
        if name is None or not detail:
            return run_id
        if name not in contexts:
            contexts[name] = builder.node(ViewNode(id=f"context:{run.run_id}:{name}",
                                                   label=name, kind="context",
                                                   attributes={"context": name}))
            builder.edge(contexts[name], run_id, "part of")
        return contexts[name]

    for dataset in run.datasets:
        node = builder.node(dataset_node(dataset))
        target = context_of(dataset.context)
        label = "used" if detail or dataset.context is None else f"used ({dataset.context})"
        builder.edge(node, target, label)
        origin = index.origin_of(dataset)
        producer = index.producer_of(origin) if origin is not None else None
        if origin is not None and producer and producer != run.run_id:
            builder.edge(_upstream_node(builder, index, origin, producer), node, "source of")
    for model_id in run.input_model_ids:
        model = index.models.get(model_id)
        node = builder.node(model_node(model) if model else ViewNode(
            id=model_node_id(model_id), label=model_id, kind="model"))
        builder.edge(node, run_id, "used")
    if detail:
        _add_tables(builder, run, run_id)


def _upstream_node(builder: _Builder, index: ExportLineage, origin: NodeKey,
                   producer: str) -> str:
    """The artifact or model another run produced, with an edge from that run (named by its
    id when that run is not part of the view)."""
    node = builder.origins.get(entity_of(origin))
    if node is None:
        model = index.models.get(origin.ref) if origin.kind == MODEL else None
        path = origin.path
        node = builder.node(model_node(model) if model else ViewNode(
            id=artifact_node_id(producer, path) if path else f"upstream:{origin.id}",
            label=path or f"output of run {producer[:8]}", kind="artifact",
            attributes={"produced by run": producer, "path": path or ""}))
    if run_node_id(producer) not in builder.nodes:
        builder.node(ViewNode(id=run_node_id(producer), label=f"run {producer[:8]}",
                              kind="run", attributes={"run id": producer}))
    builder.edge(run_node_id(producer), node, "produced")
    return node


def _add_outputs(builder: _Builder, run: RunRecord, run_id: str) -> None:
    """Artifacts (one group above MAX_ARTIFACT_NODES), logged models, registry versions; each
    is remembered under its PROV id so a later run's dataset can point at it."""
    for artifact in run.artifacts:
        builder.origins[artifact_id_of(run.run_id, artifact.path)] = \
            artifact_node_id(run.run_id, artifact.path)
    if len(run.artifacts) <= MAX_ARTIFACT_NODES:
        for artifact in run.artifacts:
            builder.edge(run_id, builder.node(artifact_node(run.run_id, artifact)), "produced")
    else:
        group = ViewNode(id=f"artifacts:{run.run_id}", label=f"artifacts ({len(run.artifacts)})",
                         kind="group", children=[artifact_node(run.run_id, a)
                                                 for a in run.artifacts],
                         attributes={a.path: f"{a.size} bytes" for a in run.artifacts})
        builder.edge(run_id, builder.group(group), "produced")
    for model in run.logged_models:
        builder.origins[model_id_of(model.model_id)] = model_node_id(model.model_id)
        builder.edge(run_id, builder.node(model_node(model)), "produced")
    for version in run.model_versions:
        node = builder.node(ViewNode(
            id=f"version:{version.name}:{version.version}",
            label=f"{version.name} v{version.version}", kind="model_version",
            attributes={k: str(v) for k, v in {
                "registered model": version.name, "version": version.version,
                "status": version.status, "stage": version.current_stage,
                "aliases": ", ".join(version.aliases) or None,
                "source": version.source}.items() if v is not None}))
        source = model_node_id(version.model_id) if version.model_id and \
            version.model_id in builder.nodes else run_id
        builder.edge(source, node, "registered as")


def _add_tables(builder: _Builder, run: RunRecord, run_id: str) -> None:
    """Params, user metrics, system metrics and user tags as one table each; the agents."""
    if run.params:
        builder.edge(builder.node(table_node(f"params:{run.run_id}", "params", "params",
                                             dict(sorted(run.params.items())), "param")),
                     run_id, "configured")
    user_metrics = [m for m in run.metrics if m.source == "user"]
    if user_metrics:
        rows = dict(metric_row(m) for m in sorted(user_metrics,
                                                  key=lambda m: (m.key, m.context or "")))
        builder.edge(run_id, builder.node(table_node(f"metrics:{run.run_id}", "metrics",
                                                     "metrics", rows, "metric")), "logged")
    own_tags = {f"tag {k}": v for k, v in sorted(run.tags.items())
                if k.startswith(OWN_TAG_PREFIX)}
    system = [m for m in run.metrics if m.source != "user"]
    if system:
        rows = dict(system_row(m) for m in sorted(system, key=_system_order))
        node = table_node(f"system:{run.run_id}", "system metrics", "system", rows, "metric")
        node.attributes |= own_tags
        builder.edge(run_id, builder.node(node), "monitored")
    else:
        builder.nodes[run_id].attributes |= own_tags
    tags = {k: v for k, v in sorted(run.tags.items())
            if not k.startswith(("mlflow.", OWN_TAG_PREFIX))}
    if tags:
        builder.edge(run_id, builder.node(table_node(f"tags:{run.run_id}", "tags", "tags",
                                                     tags, "tag")), "tagged")
    builder.edge(builder.node(agents_node(run)), run_id, "ran")


CARBON_TOTALS = ("emissions_kg", "energy_consumed_kwh")


def _system_order(summary: MetricSummary) -> tuple[bool, str]:
    """Energy and emissions totals first: what a reader of a system table looks for."""
    return not summary.key.endswith(CARBON_TOTALS), summary.key


def system_row(summary: MetricSummary) -> tuple[str, str]:
    """``system/cpu_utilization_percentage`` -> (``cpu_utilization_percentage``, last value):
    the table's title already says these are system metrics."""
    return summary.key.removeprefix(SYSTEM_PREFIX), format_number(summary.last)


def run_view(run: RunRecord, index: ExportLineage | None = None) -> ViewGraph:
    """One run in full: datasets by context, tables, agents and outputs; with an ``index`` of
    the other exported runs, also the runs whose outputs it used."""
    builder = _Builder()
    add_run_outputs(builder, run)
    add_run_inputs(builder, run, index or ExportLineage.build([run]), detail=True)
    return builder.graph(f"run {run.name or run.run_id}")


# --- one experiment ----------------------------------------------------------------------------

def experiment_view(experiment: ExperimentRecord, runs: Sequence[RunRecord],
                    max_nodes: int, index: ExportLineage | None = None) -> ViewGraph:
    """Every run with its datasets, outputs and lineage; parent runs point at their children.

    Above ``max_nodes`` each run's artifacts and models fold into one group per run, then runs
    on no cross-run lineage path into one group, then whatever is still past the bound; the
    title says so (the HTML view expands groups).
    """
    index = index or ExportLineage.build(runs)
    graph = _experiment_graph(experiment, runs, index)
    total = _count(graph.nodes)
    if total <= max_nodes:
        return graph
    graph = _fold_outputs(graph)
    if len(graph.nodes) > max_nodes:
        graph = _fold_unlinked_runs(graph, max_nodes)
    if len(graph.nodes) > max_nodes:
        graph = _fold_tail(graph, max_nodes)
    graph.title += (f" — summarised: {total} nodes exceed --max-nodes {max_nodes}, "
                    f"{len(graph.nodes)} drawn; groups hold the rest")
    return graph


def _experiment_graph(experiment: ExperimentRecord, runs: Sequence[RunRecord],
                      index: ExportLineage) -> ViewGraph:
    builder = _Builder()
    for run in runs:
        add_run_outputs(builder, run)
    for run in runs:
        add_run_inputs(builder, run, index, detail=False)
    for run in runs:
        if run.parent_run_id and run_node_id(run.parent_run_id) in builder.nodes:
            builder.edge(run_node_id(run.parent_run_id), run_node_id(run.run_id), "parent of")
    for run in runs:
        node = builder.nodes[run_node_id(run.run_id)]
        node.attributes |= {f"param {k}": v for k, v in sorted(run.params.items())}
        node.attributes |= {f"metric {k}": v for k, v in
                            (metric_row(m) for m in run.metrics if m.source == "user")}
    return builder.graph(f"experiment {experiment.name}")


def _count(nodes: Iterable[ViewNode]) -> int:
    return sum(1 + _count(n.children) for n in nodes)


def _fold_outputs(graph: ViewGraph) -> ViewGraph:
    """Each run's artifacts, models and versions that nothing else uses become one group."""
    consumers = {e.source for e in graph.edges if not e.source.startswith("run:")}
    produced: dict[str, list[str]] = {}
    for edge in graph.edges:
        if edge.source.startswith("run:") and edge.label in ("produced", "registered as") \
                and edge.target not in consumers:
            produced.setdefault(edge.source, []).append(edge.target)
    return _fold(graph, {f"outputs:{run}": (members, "outputs")
                         for run, members in produced.items() if len(members) > 1})


def _fold_unlinked_runs(graph: ViewGraph, max_nodes: int) -> ViewGraph:
    """Just enough runs on no cross-run lineage path (the last ones, with their outputs) fold
    into one group to bring the graph down to ``max_nodes``."""
    sources = {e.source for e in graph.edges if e.label == "source of"}
    consumed = {e.target for e in graph.edges if e.label == "source of"}
    linked = {e.source for e in graph.edges if e.target in sources}
    linked |= {e.target for e in graph.edges if e.source in consumed}
    outputs: dict[str, list[str]] = {}
    for edge in graph.edges:
        if edge.label == "produced":
            outputs.setdefault(edge.source, []).append(edge.target)
    excess = len(graph.nodes) - max_nodes + 1
    folded: list[str] = []
    for node in reversed(graph.nodes):
        if excess <= 0:
            break
        if node.kind == "run" and node.id not in linked:
            members = [node.id, *outputs.get(node.id, [])]
            folded += members
            excess -= len(members)
    return _fold(graph, {"runs:unlinked": (folded, "more runs without lineage")})


def _fold_tail(graph: ViewGraph, max_nodes: int) -> ViewGraph:
    """The last resort: nodes past ``max_nodes - 1`` fold into one group; runs are kept
    first, existing groups last."""
    ordered = sorted(graph.nodes, key=lambda n: (n.kind != "run", n.kind == "group"))
    rest = [n.id for n in ordered[max_nodes - 1:]]
    return _fold(graph, {"more": (rest, "more")})


def _fold(graph: ViewGraph, groups: dict[str, tuple[list[str], str]]) -> ViewGraph:
    """Replace member nodes by group nodes; edges to members go to their group."""
    by_id = {n.id: n for n in graph.nodes}
    owner = {member: group for group, (members, _) in groups.items() for member in members}
    nodes = [n for n in graph.nodes if n.id not in owner]
    for group, (members, title) in groups.items():
        children = [by_id[m] for m in members if m in by_id]
        if children:
            nodes.append(ViewNode(id=group, label=f"{title} ({len(children)})", kind="group",
                                  children=children,
                                  attributes={c.label: c.kind for c in children}))
    edges: dict[tuple[str, str, str], ViewEdge] = {}
    for edge in graph.edges:
        source, target = owner.get(edge.source, edge.source), owner.get(edge.target, edge.target)
        if source != target:
            edges.setdefault((source, target, edge.label), ViewEdge(source, target, edge.label))
    return ViewGraph(title=graph.title, nodes=nodes, edges=list(edges.values()))


# --- timeline ----------------------------------------------------------------------------------

def timeline(history: Iterable[HistoryEvent],
             max_rows: int = MAX_TIMELINE_ROWS) -> list[dict[str, Any]]:
    """Journal events as rows for the HTML view, worded as ``log`` and the ``/prov/`` pages
    word them (:mod:`exporters.wording`): one row per change (a tag old → new, a status
    transition), and one row per stretch of consecutive metric events of one writer
    (:mod:`exporters.timeline`) listing its keys, which the reader expands.

    Past ``max_rows`` a last row says how many events the PROV files still hold.
    """
    rows: list[dict[str, Any]] = []
    skipped = 0
    for item in fold_events(history, kind=lambda e: e.kind, seq=lambda e: e.seq,
                            time_us=_time_us, payload=lambda e: e.payload,
                            writer=lambda e: _writer(e.writer)):
        if isinstance(item, MetricFold):
            new, events = [_fold_row(redact(item))], item.events
        else:
            base = {"time": time_text(_time_us(item)), "kind": str(item.kind),
                    "writer": _writer(item.writer)}
            new, events = [base | _change_row(c) for c in changes(item)], 1
        if len(rows) + len(new) > max_rows:
            skipped += events
            continue
        rows += new
    if skipped:
        rows.append({"kind": "…", "what": f"{skipped} more events are not listed here; "
                                          "the PROV files hold the full history"})
    return rows


def _time_us(event: HistoryEvent) -> int:
    return (event.time - EPOCH) // timedelta(microseconds=1)


def _writer(writer: dict[str, Any]) -> str:
    """``user=alice host=node-1 pid=42``: the writer in one cell."""
    return " ".join(f"{k}={v}" for k, v in redact(writer_summary(writer)).items())


def _change_row(change: Change) -> dict[str, str]:
    row = {"what": change.what}
    if change.old is not None:
        row["old"] = shorten(change.old)
    if change.new is not None:
        row["new"] = shorten(change.new)
    return row


def _fold_row(fold: MetricFold) -> dict[str, Any]:
    """A folded stretch: its summary, time span and one entry per key."""
    return {"time": time_text(fold.first_us), "kind": str(EventKind.RUN_METRICS_LOGGED),
            "writer": fold.writer, "what": fold_summary(fold),
            "span": span_text(fold.first_us, fold.last_us),
            "keys": [{"key": key.key, "logged": key_summary(key),
                      "span": span_text(key.first_us, key.last_us)}
                     for key in fold.key_rows()]}
