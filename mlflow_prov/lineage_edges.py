"""Lineage kept at write time: producer -> consumer edges in an indexed table beside the journal.

Why: MLflow links each object to its origin only (a run to its inputs, a logged model to its
source run), and a dataset's source names the run that made it only inside a JSON string. A
question such as "what came from this run, three hops down" would read the whole journal to
find those links. Instead every journaled write that makes a link adds a row here, in the
write's own transaction (``ProvTrackingMixin.journaled`` / ``ProvRegistryMixin.journaled``),
so a lineage question reads the rows of its answer through an index, whatever the store's size.

Edges point from the derived thing to its origin, with PROV's relation names: a run ``used``
a dataset or logged model; a dataset ``wasDerivedFrom`` the artifact or model its source
names; an artifact or logged model ``wasGeneratedBy`` its run (an artifact as soon as it is
recorded: the run-end manifest, each upload through the ``prov`` server app); a model version
``wasDerivedFrom`` its logged model (or artifact; ``wasGeneratedBy`` its run when it names
nothing else) and ``wasRevisionOf`` the version before; a child run ``wasInformedBy`` its
parent. GenAI links (issue 19) as MLflow makes them: a run or trace ``used`` the prompt
versions linked to it, a logged model ``wasDerivedFrom`` them, a trace ``used`` the logged
model its metadata names and ``wasInformedBy`` the run it was recorded in, and a prompt
version ``wasRevisionOf`` the one before. Node ids are ``run:<run_id>``, ``dataset:<digest>``
(the same data under two names is one dataset), ``artifact:<run_id>/<path>``,
``model:<model_id>``, ``version:<name>/<version>``, ``prompt:<name>/<version>`` and
``trace:<trace_id>``; the nodes table keeps each node's kind, label, experiment and a few
attributes.

A journal written before these tables existed, or before the rules that make their rows last
changed (:data:`LINEAGE_VERSION`), gets them on the first open by a writer, filled from the
journal's events in one transaction (:func:`ensure_tables`). A reader of a store no writer
has opened since computes the same rows from the journal on read (:func:`open_lineage`).

Read API (for exporters): :func:`open_lineage` -> :class:`LineageReader`, :class:`EdgeRow`,
:class:`NodeRow`, :func:`node_id`, :func:`artifact_reference`, :func:`source_uri`.
"""

from __future__ import annotations

import json
import re
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mlflow_prov.sql_dialects import (
    ROWS_PER_STATEMENT,
    insert_all_unless_present,
    is_mysql,
)
from mlflow_prov.vocabulary import (
    DATASET_CONTEXT_TAG,
    LINKED_PROMPTS_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    TRACE_MODEL_ID_KEY,
    TRACE_SOURCE_RUN_KEY,
    EventKind,
    linked_prompts,
    normalise_context,
)

EDGES_TABLE = "prov_lineage_edges"
NODES_TABLE = "prov_lineage_nodes"
VERSION_TABLE = "prov_lineage_version"
# The rules the rows were made by. Bump it when a describer makes rows from events it did
# not before: stores filled by older rules are refilled from their journal once.
# 1: runs, datasets, logged models, versions. 2: recorded artifacts, prompts and traces.
LINEAGE_VERSION = 2
ID_LENGTH = 500
QUERY_CHUNK = 500  # ids per IN (...) list: far below every database's parameter limit
SCAN_PAGE = 1000

metadata = sa.MetaData()

edges_table = sa.Table(
    EDGES_TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(ID_LENGTH), nullable=False),  # the derived thing
    sa.Column("relation", sa.String(32), nullable=False),
    sa.Column("target", sa.String(ID_LENGTH), nullable=False),  # its origin
    sa.Column("context", sa.String(250), nullable=True),  # a dataset use's context
    sa.Index("ix_prov_lineage_source", "source"),
    sa.Index("ix_prov_lineage_target", "target"),
)

nodes_table = sa.Table(
    NODES_TABLE,
    metadata,
    sa.Column("node", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("experiment_id", sa.String(32), nullable=True),
    sa.Column("attributes", sa.Text, nullable=False),
)

version_table = sa.Table(
    VERSION_TABLE,
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
)

# the kinds whose events make lineage rows (what a backfill or a read-time build scans)
LINEAGE_KINDS = (EventKind.RUN_CREATED, EventKind.RUN_UPDATED, EventKind.RUN_TAGS_SET,
                 EventKind.RUN_INPUTS_LOGGED, EventKind.LOGGED_MODEL_CREATED,
                 EventKind.MODEL_VERSION_CREATED, EventKind.RUN_ARTIFACTS_RECORDED,
                 EventKind.RUN_ARTIFACT_UPLOADED, EventKind.LOGGED_MODEL_TAGS_SET,
                 EventKind.PROMPT_VERSION_CREATED, EventKind.TRACE_STARTED,
                 EventKind.TRACE_PROMPTS_LINKED, EventKind.RUN_TRACES_LINKED)
# the kinds whose rows are artifacts their run generated, written in bulk (:func:`record`)
ARTIFACT_KINDS = frozenset({EventKind.RUN_ARTIFACTS_RECORDED, EventKind.RUN_ARTIFACT_UPLOADED})

RUN_ID = r"([0-9a-f]{32})"
ARTIFACT_REFERENCES = (re.compile(rf"^runs:/{RUN_ID}/(.+)$"),
                       re.compile(rf"/{RUN_ID}/artifacts/(.+)$"))


def node_id(kind: str, ref: str) -> str:
    """The one spelling of a lineage node's id: ``<kind>:<ref>``."""
    return f"{kind}:{ref}"


@dataclass(frozen=True)
class EdgeRow:
    """``source`` (the derived thing) relates to ``target`` (its origin) by ``relation``."""

    source: str
    relation: str
    target: str
    context: str | None = None


@dataclass(frozen=True)
class NodeRow:
    """A lineage node as the write that first named it described it."""

    node: str
    kind: str
    label: str
    experiment_id: str | None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Rows:
    """What one event adds: nodes (first description wins), edges, and run renames."""

    nodes: list[NodeRow] = field(default_factory=list)
    edges: list[EdgeRow] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)


# --- which links an event makes ---------------------------------------------------------------

def source_uri(source: str | None) -> str | None:
    """The URI inside MLflow's JSON dataset ``source`` (``uri``, ``url`` or ``path``), or the
    source itself when it is plain text."""
    if not source:
        return None
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        return next((parsed[k] for k in ("uri", "url", "path") if isinstance(parsed.get(k), str)),
                    None)
    return parsed if isinstance(parsed, str) else None


def artifact_reference(uri: str | None) -> tuple[str, str] | None:
    """``(run_id, path)`` of the run artifact a URI names: ``runs:/<run_id>/<path>``, or a
    location inside a run's artifact folder (``…/<run_id>/artifacts/<path>``, where MLflow
    puts every run's artifacts under any artifact root)."""
    for pattern in ARTIFACT_REFERENCES:
        match = pattern.search(unquote(uri or ""))
        if match and match[2].strip("/"):
            return match[1], match[2].strip("/")
    return None


def model_reference(uri: str | None) -> str | None:
    """The logged-model id of ``models:/<model_id>`` (names and versions are not ids)."""
    rest = (uri or "").removeprefix("models:/").strip("/")
    if not (uri or "").startswith("models:/") or not rest or "/" in rest or "@" in rest:
        return None
    return rest


ExperimentOf = Callable[[str], "str | None"]


class _Describe(Protocol):
    def __call__(self, rows: Rows, run_id: str | None, experiment_id: str | None,
                 payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None: ...


def rows_of(kind: str, run_id: str | None, experiment_id: str | None, payload: Mapping[str, Any],
            experiment_of: ExperimentOf) -> Rows:
    """The lineage rows one journal event makes (none for most kinds)."""
    rows = Rows()
    describe = _DESCRIBERS.get(str(kind))
    if describe is not None:
        describe(rows, run_id, experiment_id, payload, experiment_of)
    return rows


def _run_created(rows: Rows, run_id: str | None, experiment_id: str | None,
                 payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    if not run_id:
        return
    rows.nodes.append(NodeRow(node_id("run", run_id), "run", payload.get("run_name") or run_id,
                              experiment_id, {"run_id": run_id}))
    _parent(rows, run_id, payload.get("tags") or {})


def _parent(rows: Rows, run_id: str, tags: dict[str, Any]) -> None:
    parent = tags.get(PARENT_RUN_TAG)
    if isinstance(parent, str) and parent and parent != run_id:
        rows.edges.append(EdgeRow(node_id("run", run_id), "wasInformedBy",
                                  node_id("run", parent)))


def _tags_set(rows: Rows, run_id: str | None, experiment_id: str | None,
              payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    tags = payload.get("tags") or {}
    if run_id and isinstance(tags, dict):
        _parent(rows, run_id, tags)
        if isinstance(tags.get(RUN_NAME_TAG), str):
            rows.renamed[node_id("run", run_id)] = tags[RUN_NAME_TAG]
        _prompts_used(rows, node_id("run", run_id), "used", tags.get(LINKED_PROMPTS_TAG))


def _run_updated(rows: Rows, run_id: str | None, experiment_id: str | None,
                 payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    new_name = payload.get("new_name")
    if run_id and isinstance(new_name, str) and new_name != payload.get("old_name"):
        rows.renamed[node_id("run", run_id)] = new_name


def _inputs_logged(rows: Rows, run_id: str | None, experiment_id: str | None,
                   payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    if not run_id:
        return
    consumer = node_id("run", run_id)
    for dataset in payload.get("datasets") or ():
        digest = dataset.get("digest") or ""
        uri = source_uri(dataset.get("source"))
        node = node_id("dataset", digest)
        name = dataset.get("name") or "dataset"
        rows.nodes.append(NodeRow(node, "dataset", name, experiment_id, {
            "name": name, "digest": digest, "source_type": dataset.get("source_type") or "",
            "source": uri or ""}))
        context = normalise_context(dataset.get("context") or dataset.get(DATASET_CONTEXT_TAG))
        rows.edges.append(EdgeRow(consumer, "used", node, context or None))
        found = artifact_reference(uri)
        if found is not None and found[0] == run_id:
            continue  # the run's own artifact: no link between runs
        origin = _origin(rows, uri, experiment_of)
        if origin is not None:
            rows.edges.append(EdgeRow(node, "wasDerivedFrom", origin))
    for model_id in payload.get("models") or ():
        rows.edges.append(EdgeRow(consumer, "used", node_id("model", model_id)))


def _origin(rows: Rows, uri: str | None, experiment_of: ExperimentOf) -> str | None:
    """The artifact (added with its producing run) or logged model a URI names."""
    model_id = model_reference(uri)
    if model_id is not None:
        return node_id("model", model_id)
    found = artifact_reference(uri)
    if found is None:
        return None
    producer, path = found
    return _generated_artifact(rows, producer, path, experiment_of(producer))


def _generated_artifact(rows: Rows, run_id: str, path: str, experiment_id: str | None) -> str:
    """A run's artifact node and its ``wasGeneratedBy`` edge to the run."""
    artifact = node_id("artifact", f"{run_id}/{path}")
    rows.nodes.append(NodeRow(artifact, "artifact", path, experiment_id,
                              {"run_id": run_id, "path": path, "uri": f"runs:/{run_id}/{path}"}))
    rows.edges.append(EdgeRow(artifact, "wasGeneratedBy", node_id("run", run_id)))
    return artifact


def _artifacts_recorded(rows: Rows, run_id: str | None, experiment_id: str | None,
                        payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    """The run-end manifest's files (``files``) or one upload's file (``path``)."""
    if not run_id:
        return
    files = payload.get("files") if "files" in payload else [payload]
    for found in files or ():
        path = str(found.get("path") or "").strip("/")
        if path:
            _generated_artifact(rows, run_id, path, experiment_id)


def _logged_model_created(rows: Rows, run_id: str | None, experiment_id: str | None,
                          payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    model_id = payload.get("model_id")
    if not model_id:
        return
    model = node_id("model", model_id)
    rows.nodes.append(NodeRow(model, "model", payload.get("name") or model_id, experiment_id,
                              {"model_id": model_id, "uri": f"models:/{model_id}"}))
    if payload.get("source_run_id"):
        rows.edges.append(EdgeRow(model, "wasGeneratedBy",
                                  node_id("run", payload["source_run_id"])))


def _model_version_created(rows: Rows, run_id: str | None, experiment_id: str | None,
                           payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    name, number = payload.get("name"), payload.get("version")
    if not name or number is None:
        return
    version = node_id("version", f"{name}/{number}")
    rows.nodes.append(NodeRow(version, "version", f"{name} v{number}", experiment_id, {
        "name": name, "version": str(number), "uri": f"models:/{name}/{number}",
        "source": payload.get("source") or ""}))
    if int(number) > 1:
        rows.edges.append(EdgeRow(version, "wasRevisionOf",
                                  node_id("version", f"{name}/{int(number) - 1}")))
    model_id = payload.get("model_id")
    origin = node_id("model", model_id) if model_id else _origin(rows, payload.get("source"),
                                                                  experiment_of)
    if origin is not None:
        rows.edges.append(EdgeRow(version, "wasDerivedFrom", origin))
    elif run_id:
        rows.edges.append(EdgeRow(version, "wasGeneratedBy", node_id("run", run_id)))


def prompt_node(name: str, version: int) -> str:
    """A prompt version's node id: ``prompt:<name>/<version>``, as ``prompts:/`` URIs say."""
    return node_id("prompt", f"{name}/{version}")


def _prompts_used(rows: Rows, user: str, relation: str, value: Any) -> None:
    """``user`` (a run, trace or logged model) relates to each prompt version ``value``
    lists. The tag holds every link so far: a repeated edge reads once."""
    for name, version in linked_prompts(value):
        rows.edges.append(EdgeRow(user, relation, prompt_node(name, version)))


def _logged_model_tags_set(rows: Rows, run_id: str | None, experiment_id: str | None,
                           payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    tags, model_id = payload.get("tags") or {}, payload.get("model_id")
    if model_id and isinstance(tags, dict):
        _prompts_used(rows, node_id("model", model_id), "wasDerivedFrom",
                      tags.get(LINKED_PROMPTS_TAG))


def _prompt_version_created(rows: Rows, run_id: str | None, experiment_id: str | None,
                            payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    name, number = payload.get("name"), payload.get("version")
    if not name or number is None:
        return
    version = prompt_node(name, int(number))
    rows.nodes.append(NodeRow(version, "prompt", f"{name} v{number}", None, {
        "name": name, "version": str(number), "uri": f"prompts:/{name}/{number}"}))
    if int(number) > 1:
        rows.edges.append(EdgeRow(version, "wasRevisionOf", prompt_node(name, int(number) - 1)))


def _trace_node(rows: Rows, trace_id: str, experiment_id: str | None) -> str:
    trace = node_id("trace", trace_id)
    rows.nodes.append(NodeRow(trace, "trace", trace_id, experiment_id, {"trace_id": trace_id}))
    return trace


def _trace_started(rows: Rows, run_id: str | None, experiment_id: str | None,
                   payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    trace_id = payload.get("trace_id")
    if not trace_id:
        return
    trace = _trace_node(rows, trace_id, experiment_id)
    metadata = payload.get("metadata") or {}
    if isinstance(metadata.get(TRACE_SOURCE_RUN_KEY), str):
        rows.edges.append(EdgeRow(trace, "wasInformedBy",
                                  node_id("run", metadata[TRACE_SOURCE_RUN_KEY])))
    if isinstance(metadata.get(TRACE_MODEL_ID_KEY), str):
        rows.edges.append(EdgeRow(trace, "used", node_id("model", metadata[TRACE_MODEL_ID_KEY])))


def _trace_prompts_linked(rows: Rows, run_id: str | None, experiment_id: str | None,
                          payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    trace_id = payload.get("trace_id")
    if trace_id:
        _prompts_used(rows, _trace_node(rows, trace_id, experiment_id), "used",
                      payload.get("prompts"))


def _run_traces_linked(rows: Rows, run_id: str | None, experiment_id: str | None,
                       payload: Mapping[str, Any], experiment_of: ExperimentOf) -> None:
    if not run_id:
        return
    for trace_id in payload.get("trace_ids") or ():
        rows.edges.append(EdgeRow(_trace_node(rows, trace_id, experiment_id), "wasInformedBy",
                                  node_id("run", str(run_id))))


_DESCRIBERS: dict[str, _Describe] = {
    EventKind.RUN_CREATED: _run_created,
    EventKind.RUN_TAGS_SET: _tags_set,
    EventKind.RUN_UPDATED: _run_updated,
    EventKind.RUN_INPUTS_LOGGED: _inputs_logged,
    EventKind.LOGGED_MODEL_CREATED: _logged_model_created,
    EventKind.MODEL_VERSION_CREATED: _model_version_created,
    EventKind.RUN_ARTIFACTS_RECORDED: _artifacts_recorded,
    EventKind.RUN_ARTIFACT_UPLOADED: _artifacts_recorded,
    EventKind.LOGGED_MODEL_TAGS_SET: _logged_model_tags_set,
    EventKind.PROMPT_VERSION_CREATED: _prompt_version_created,
    EventKind.TRACE_STARTED: _trace_started,
    EventKind.TRACE_PROMPTS_LINKED: _trace_prompts_linked,
    EventKind.RUN_TRACES_LINKED: _run_traces_linked,
}


# --- writing ----------------------------------------------------------------------------------

def record(connection: sa.Connection, kind: str, run_id: str | None,
           experiment_id: str | None, payload: Mapping[str, Any],
           experiment_of: ExperimentOf) -> None:
    """Add the rows of one journaled event through the write's own connection."""
    if str(kind) not in _DESCRIBERS:
        return
    rows = rows_of(kind, run_id, experiment_id, payload, experiment_of)
    if str(kind) in ARTIFACT_KINDS and connection.dialect.name in ("postgresql", "sqlite") \
            and connection.dialect.insert_returning:
        _write_generated(connection, rows)
    else:
        write_rows(connection, rows)


def _write_generated(connection: sa.Connection, rows: Rows) -> None:
    """One event's artifact nodes in bulk, each with its ``wasGeneratedBy`` edge to the run
    only when the node is new: a manifest of many files costs the statements of one file
    (one on PostgreSQL, where a data-modifying ``WITH`` inserts both; two on sqlite), and a
    file recorded again (a later upload, a second run end) adds no edge."""
    if not rows.edges:
        return
    run = rows.edges[0].target  # one event, one run
    nodes = list({node.node[:ID_LENGTH]: _node_values(node) for node in rows.nodes}.values())
    for start in range(0, len(nodes), ROWS_PER_STATEMENT):
        chunk = nodes[start:start + ROWS_PER_STATEMENT]
        if connection.dialect.name == "postgresql":
            new = (postgresql_insert(nodes_table).values(chunk).on_conflict_do_nothing()
                   .returning(nodes_table.c.node).cte("new_nodes"))
            connection.execute(edges_table.insert().from_select(
                ["source", "relation", "target"],
                sa.select(new.c.node, sa.literal("wasGeneratedBy"), sa.literal(run))))
            continue
        made = connection.execute(sqlite_insert(nodes_table).values(chunk)
                                  .on_conflict_do_nothing().returning(nodes_table.c.node))
        fresh = list(made.scalars())
        if fresh:
            connection.execute(edges_table.insert().values([
                {"source": node, "relation": "wasGeneratedBy", "target": run}
                for node in fresh]))


def write_rows(connection: sa.Connection, rows: Rows) -> None:
    """Nodes not known yet (a known node's first description stays), then the edges, then
    the renamed runs' labels: the nodes in one statement per
    :data:`~mlflow_prov.sql_dialects.ROWS_PER_STATEMENT` of them, the edges in one."""
    insert_all_unless_present(connection, nodes_table, [_node_values(n) for n in rows.nodes])
    if rows.edges:
        connection.execute(edges_table.insert(), [
            {"source": e.source[:ID_LENGTH], "relation": e.relation,
             "target": e.target[:ID_LENGTH], "context": (e.context or None) and e.context[:250]}
            for e in rows.edges])
    for renamed, label in rows.renamed.items():
        connection.execute(nodes_table.update().where(nodes_table.c.node == renamed)
                           .values(label=label))


def _node_values(node: NodeRow) -> dict[str, Any]:
    return {"node": node.node[:ID_LENGTH], "kind": node.kind, "label": node.label,
            "experiment_id": node.experiment_id,
            "attributes": json.dumps(node.attributes, sort_keys=True)}


def ensure_tables(engine: sa.engine.Engine) -> None:
    """Create the lineage tables when missing, or refill them when an older mlflow-prov made
    their rows (:data:`LINEAGE_VERSION`), from the journal's events in one transaction (a
    journal written before they existed): no migration step for users. A store a newer
    mlflow-prov refilled is left as it is."""
    if _current(engine):
        return
    if is_mysql(engine.dialect.name):  # each read sees what others committed before it
        engine = engine.execution_options(isolation_level="READ COMMITTED")
    try:
        with engine.begin() as connection:
            metadata.create_all(connection, checkfirst=True)
            _hold_writers(connection)
            if (_version(connection, locked=True) or 0) >= LINEAGE_VERSION:
                return  # another process filled them first
            connection.execute(edges_table.delete())
            connection.execute(nodes_table.delete())
            _refill(connection, backfill_rows(_journal_events(connection)))
            connection.execute(version_table.delete())
            connection.execute(version_table.insert().values(version=LINEAGE_VERSION))
    except sa.exc.DatabaseError:
        if not _current(engine):
            raise


def _refill(connection: sa.Connection, rows: Rows) -> None:
    """Every row of a refill, each edge once (an upload and the run-end manifest both name a
    file; the write path adds its edge once). A writer's node that came in meanwhile stays
    (MySQL only: the others hold writers off)."""
    write_rows(connection, Rows(nodes=rows.nodes, renamed=rows.renamed, edges=list(
        dict.fromkeys(replace(e, source=e.source[:ID_LENGTH], target=e.target[:ID_LENGTH],
                              context=(e.context or None) and e.context[:250])
                      for e in rows.edges))))


def _current(engine: sa.engine.Engine) -> bool:
    """The tables exist and were filled by the rules of this version or a newer one."""
    if not sa.inspect(engine).has_table(VERSION_TABLE):
        return False
    with engine.connect() as connection:
        return (_version(connection) or 0) >= LINEAGE_VERSION


def _version(connection: sa.Connection, locked: bool = False) -> int | None:
    """The rules' version the rows were made by; ``locked``: read as the latest committed
    row, held until the transaction ends (PostgreSQL, MySQL), so two refills take turns."""
    query = (sa.select(version_table.c.version).order_by(version_table.c.version.desc())
             .limit(1))
    if locked and connection.dialect.name != "sqlite":
        query = query.with_for_update()
    return connection.execute(query).scalar()


def _hold_writers(connection: sa.Connection) -> None:
    """Keep other writers' lineage rows out until the refill commits, so an event is either
    read by the refill or added by its writer after it: sqlite's first write takes the
    database's lock, PostgreSQL's tables are locked here. MySQL holds off nothing: a writer
    that commits during the refill may have its edge twice (readers take each edge once)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"LOCK TABLE {EDGES_TABLE}, {NODES_TABLE} IN EXCLUSIVE MODE")


def _journal_events(connection: sa.Connection) -> Iterator[tuple[str, str | None, str | None,
                                                                  dict[str, Any]]]:
    from mlflow_prov.journal import JOURNAL_TABLE, _stored_spellings, events_table

    if not sa.inspect(connection).has_table(JOURNAL_TABLE):
        return
    columns = events_table.c
    query = (sa.select(columns.kind, columns.run_id, columns.experiment_id, columns.payload)
             .where(columns.kind.in_(_stored_spellings(list(LINEAGE_KINDS))))
             .order_by(columns.seq))
    for kind, run_id, experiment_id, payload in connection.execute(query):
        yield kind, run_id, experiment_id, json.loads(payload)


def backfill_rows(events: Iterable[tuple[str, str | None, str | None, dict[str, Any]]]) -> Rows:
    """Every lineage row of a journal's events, in write order, nodes once each."""
    from mlflow_prov.vocabulary import parse_kind

    experiments: dict[str, str | None] = {}
    rows = Rows()
    seen: set[str] = set()
    for kind, run_id, experiment_id, payload in events:
        if run_id and kind in (EventKind.RUN_CREATED, "run.created"):
            experiments[run_id] = experiment_id
        found = rows_of(parse_kind(kind), run_id, experiment_id, payload, experiments.get)
        rows.nodes += [n for n in found.nodes if n.node not in seen]
        seen.update(n.node for n in found.nodes)
        rows.edges += found.edges
        for node, label in found.renamed.items():
            rows.renamed[node] = label
    return rows


# --- reading ----------------------------------------------------------------------------------

Direction = Literal["origins", "derived"]


class LineageReader(Protocol):
    """Lineage rows by node, each read through an index (or from memory)."""

    def edges(self, nodes: Collection[str], direction: Direction) -> list[EdgeRow]:
        """Edges whose derived end (``derived``: whose origin) is one of ``nodes``: the
        ``origins`` of the nodes, or what was ``derived`` from them."""

    def nodes(self, ids: Collection[str]) -> dict[str, NodeRow]:
        """The known nodes among ``ids``."""

    def step(self, nodes: Collection[str],
             direction: Direction) -> tuple[list[EdgeRow], dict[str, NodeRow]]:
        """:meth:`edges`, and the known nodes at their far ends, in one read."""

    def find(self, kind: str, prefix: str, limit: int = 2) -> list[str]:
        """Ids of nodes of ``kind`` whose ref starts with ``prefix`` (at most ``limit``)."""

    def find_labelled(self, kind: str, label: str, limit: int = 2) -> list[str]:
        """Ids of nodes of ``kind`` with this label."""


class _TableReader:
    """The lineage tables, read one indexed query per batch of ids."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self._engine = engine

    def edges(self, nodes: Collection[str], direction: Direction) -> list[EdgeRow]:
        column = edges_table.c.source if direction == "origins" else edges_table.c.target
        found: dict[EdgeRow, None] = {}
        rows: list[Any] = []
        with self._engine.connect() as connection:
            for chunk in _chunks(nodes):
                query = sa.select(edges_table.c.id, edges_table.c.source,
                                  edges_table.c.relation, edges_table.c.target,
                                  edges_table.c.context).where(column.in_(chunk))
                rows.extend(connection.execute(query))
        # write order, sorted here: an ORDER BY could lead the planner to the id index
        for row in sorted(rows, key=lambda row: row.id):
            found.setdefault(EdgeRow(row.source, row.relation, row.target, row.context), None)
        return list(found)

    def step(self, nodes: Collection[str],
             direction: Direction) -> tuple[list[EdgeRow], dict[str, NodeRow]]:
        near, far = ((edges_table.c.source, edges_table.c.target) if direction == "origins"
                     else (edges_table.c.target, edges_table.c.source))
        rows: list[Any] = []
        with self._engine.connect() as connection:
            for chunk in _chunks(nodes):
                query = (sa.select(edges_table, nodes_table.c.node.label("far"),
                                   nodes_table.c.kind, nodes_table.c.label,
                                   nodes_table.c.experiment_id, nodes_table.c.attributes)
                         .select_from(edges_table.outerjoin(nodes_table,
                                                            nodes_table.c.node == far))
                         .where(near.in_(chunk)))
                rows.extend(connection.execute(query))
        rows.sort(key=lambda row: row.id)
        edges = list(dict.fromkeys(EdgeRow(row.source, row.relation, row.target, row.context)
                                   for row in rows))
        known = {row.far: NodeRow(row.far, row.kind, row.label, row.experiment_id,
                                  _attributes(row.attributes))
                 for row in rows if row.far is not None}
        return edges, known

    def nodes(self, ids: Collection[str]) -> dict[str, NodeRow]:
        found: dict[str, NodeRow] = {}
        with self._engine.connect() as connection:
            for chunk in _chunks(ids):
                for row in connection.execute(sa.select(nodes_table)
                                              .where(nodes_table.c.node.in_(chunk))):
                    found[row.node] = _node(row)
        return found

    def find(self, kind: str, prefix: str, limit: int = 2) -> list[str]:
        query = (sa.select(nodes_table.c.node)
                 .where(nodes_table.c.node.startswith(node_id(kind, prefix), autoescape=True))
                 .order_by(nodes_table.c.node).limit(limit))
        with self._engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def find_labelled(self, kind: str, label: str, limit: int = 2) -> list[str]:
        query = (sa.select(nodes_table.c.node).where(nodes_table.c.kind == kind)
                 .where(nodes_table.c.label == label).order_by(nodes_table.c.node).limit(limit))
        with self._engine.connect() as connection:
            return list(connection.execute(query).scalars())


def _node(row: Any) -> NodeRow:
    return NodeRow(row.node, row.kind, row.label, row.experiment_id,
                   _attributes(row.attributes))


def _attributes(text: str) -> dict[str, str]:
    try:
        attributes = json.loads(text)
    except ValueError:
        return {}
    return attributes if isinstance(attributes, dict) else {}


def _chunks(ids: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), QUERY_CHUNK):
        yield ordered[start:start + QUERY_CHUNK]


class MemoryReader:
    """Lineage rows held in memory: a journal no writer has opened since the tables came
    (computed on read from its events), or rows an exporter assembled itself."""

    def __init__(self, rows: Rows) -> None:
        self._nodes: dict[str, NodeRow] = {}
        for node in rows.nodes:
            self._nodes.setdefault(node.node, node)
        for renamed, label in rows.renamed.items():
            if renamed in self._nodes:
                old = self._nodes[renamed]
                self._nodes[renamed] = NodeRow(old.node, old.kind, label, old.experiment_id,
                                            old.attributes)
        self._by: dict[Direction, dict[str, list[EdgeRow]]] = {
            "origins": defaultdict(list), "derived": defaultdict(list)}
        for edge in dict.fromkeys(rows.edges):
            self._by["origins"][edge.source].append(edge)
            self._by["derived"][edge.target].append(edge)

    def edges(self, nodes: Collection[str], direction: Direction) -> list[EdgeRow]:
        table = self._by[direction]
        return list(dict.fromkeys(edge for node in nodes for edge in table.get(node, ())))

    def nodes(self, ids: Collection[str]) -> dict[str, NodeRow]:
        return {i: self._nodes[i] for i in ids if i in self._nodes}

    def step(self, nodes: Collection[str],
             direction: Direction) -> tuple[list[EdgeRow], dict[str, NodeRow]]:
        edges = self.edges(nodes, direction)
        return edges, self.nodes([e.target if direction == "origins" else e.source
                                  for e in edges])

    def find(self, kind: str, prefix: str, limit: int = 2) -> list[str]:
        start = node_id(kind, prefix)
        return sorted(n for n in self._nodes if n.startswith(start))[:limit]

    def find_labelled(self, kind: str, label: str, limit: int = 2) -> list[str]:
        return sorted(n.node for n in self._nodes.values()
                      if n.kind == kind and n.label == label)[:limit]


_with_tables: weakref.WeakSet[sa.engine.Engine] = weakref.WeakSet()


def open_lineage(tracking_uri: str) -> LineageReader:
    """The lineage of a prov store: its tables, or, for a journal no writer has opened since
    they came, the same rows computed from its events now. Raises
    :class:`~mlflow_prov.journal.JournalUnavailableError` for a store without a journal."""
    from mlflow_prov.journal import JOURNAL_TABLE, JournalUnavailableError, _engine_for

    engine = _engine_for(tracking_uri)
    if engine in _with_tables:
        return _TableReader(engine)
    if _current(engine):
        _with_tables.add(engine)  # tables once made stay: a server asks once
        return _TableReader(engine)
    if not sa.inspect(engine).has_table(JOURNAL_TABLE):
        raise JournalUnavailableError(f"{tracking_uri!r} has no provenance journal table yet")
    with engine.connect() as connection:
        return MemoryReader(backfill_rows(_journal_events(connection)))
