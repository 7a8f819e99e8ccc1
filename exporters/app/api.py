"""``/prov/api/``: the journal, chain verification and lineage as read-only JSON.

Every route is a GET; errors are JSON ``{"error_code", "message"}`` as in MLflow's REST API.
A reader sees only what their experiment permissions allow: a filter on an experiment or run
they may not read is refused (403), and lineage drops nodes of such experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any

from flask import Blueprint, Response, jsonify, request
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from exporters.app import chain_access
from exporters.app.history import (
    EVENT_PARAMS,
    event_json,
    events_page,
    journal_token,
    parse_filters,
)
from exporters.app.openapi import describe, document
from exporters.app.params import (
    ARTIFACT,
    DATASET,
    EXPERIMENT,
    LINEAGE_QUERY,
    MODEL,
    RUN,
    BadRequestError,
    Param,
    choice,
    lineage_depth,
    read,
    shown,
)
from exporters.app.setup import ProvServer, prov_server
from exporters.app.views import DEPTH, graph_json, neighbourhood_graph, readable_keys
from exporters.lineage.keys import RUN as RUN_KIND
from exporters.lineage.keys import NodeKey, artifact_key, dataset_key, model_key, run_key
from exporters.lineage.resolve import HELP, AmbiguousNodeError, UnknownNodeError, resolve
from exporters.lineage.sources import LineageError
from exporters.privacy import redact
from exporters.verify import verify_store
from mlflow_prov.journal import JournalEvent, JournalUnavailableError, chain_head, verify_chain
from mlflow_prov.lineage_edges import LineageReader, open_lineage
from mlflow_prov.stored_rows import UnknownSchemaError
from mlflow_prov.vocabulary import ChainKind, experiment_chain, run_chain

api = Blueprint("prov_api", __name__, url_prefix="/prov/api")
RUN_PAGE = 1000
PAGE_TOKEN = "next_page_token"
# verify's problem lines about a registered model's chain (a model version made from a run
# of the experiment): only readers of every experiment see registered models here
REGISTRY_CHAIN_PROBLEM = f"chain {ChainKind.REGISTERED_MODEL.value}:"


class ForbiddenError(PermissionError):
    """The reader may not read the experiment a request names."""


class NotFoundError(LookupError):
    """A run, model or experiment that does not exist."""


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error_code": code, "message": redact(message)}), status


def unrouted_api_answer(exc: HTTPException) -> Any:
    """A path under ``/prov/api/`` that names no route, or a method no route takes, answered
    like every other API error: one JSON line, not Werkzeug's HTML page. Other paths keep the
    answer MLflow's app gives them."""
    if not request.path.startswith(api.url_prefix or ""):
        return exc
    if isinstance(exc, MethodNotAllowed):
        answer = _error(405, "METHOD_NOT_ALLOWED",
                        f"{request.method} is not served at {request.path}; "
                        f"use {', '.join(sorted(exc.valid_methods or ['GET']))}")
        answer[0].headers["Allow"] = ", ".join(sorted(exc.valid_methods or ["GET"]))
        return answer
    return _error(404, "ENDPOINT_NOT_FOUND", f"no API endpoint {request.path}; the endpoints "
                  "are listed at /prov/api/openapi.json")


def _redacted(body: dict[str, Any]) -> dict[str, Any]:
    """An answer as :func:`exporters.privacy.redact` shows it, but for the page token: the
    server's own opaque cursor, whose key names a token."""
    cleaned = redact({k: v for k, v in body.items() if k != PAGE_TOKEN})
    return {**cleaned, PAGE_TOKEN: body[PAGE_TOKEN]} if PAGE_TOKEN in body else cleaned


def json_route(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every answer redacted (:func:`exporters.privacy.redact`: secret-named keys, values and
    names that look like credentials, URL user info), and each failure mapped to a one-line
    JSON error with the status a client can act on."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return jsonify(_redacted(view(*args, **kwargs)))
        except BadRequestError as exc:
            return _error(400, "INVALID_PARAMETER_VALUE", str(exc))
        except JournalUnavailableError as exc:
            return _error(404, "PROV_JOURNAL_UNAVAILABLE",
                          f"this server's store has no provenance journal ({exc}); "
                          "serve a prov store: mlflow server --app-name prov "
                          "--backend-store-uri prov:///path")
        except ForbiddenError as exc:
            return _error(403, "PERMISSION_DENIED", str(exc))
        except NotFoundError as exc:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", str(exc))
        except UnknownSchemaError as exc:  # MLflow's tables are newer than verify knows
            return _error(409, "PROV_SCHEMA_UNKNOWN",
                          f"{exc}; upgrade mlflow-prov to verify this store")

    return wrapper


def run_experiment(server: ProvServer, run_id: str) -> str:
    """The experiment of a run, or NotFoundError naming the run."""
    try:
        return server.client.get_run(run_id).info.experiment_id
    except MlflowException as exc:
        raise NotFoundError(f"no run {run_id!r} on this server") from exc


def require_experiment(server: ProvServer, experiment_id: str) -> None:
    """NotFoundError unless the experiment exists (deleted ones do)."""
    try:
        server.client.get_experiment(experiment_id)
    except MlflowException as exc:
        raise NotFoundError(f"no experiment {experiment_id!r} on this server") from exc


def require_read(server: ProvServer, experiment_id: str | None) -> None:
    if not server.permissions.can_read(experiment_id):
        raise ForbiddenError(f"no READ permission on experiment {experiment_id}")


def readable_events(server: ProvServer, events: list[JournalEvent]) -> list[JournalEvent]:
    """The events the reader may see, each by MLflow's rule for the object its chain
    records (:mod:`exporters.app.chain_access`): a model version made from a run is
    journaled with the run's ids but belongs to a registered model, a trace's events follow
    MLflow's trace permission, a prompt's its prompt permission."""
    return chain_access.readable_events(server.permissions, events)


EVENT = {"type": "object", "properties": {
    "seq": {"type": "integer"}, "time_us": {"type": "integer"}, "time": {"type": "string"},
    "chain": {"type": "string"}, "experiment_id": {"type": ["string", "null"]},
    "run_id": {"type": ["string", "null"]}, "kind": {"type": "string"},
    "payload": {"type": "object"}, "writer": {"type": "object"},
    "prev_hash": {"type": ["string", "null"]}, "hash": {"type": "string"}}}
NEXT_PAGE_TOKEN = {"type": ["string", "null"],
                   "description": "pass as page_token for the next page; null on the last"}


@api.get("/events")
@describe("/prov/api/events", "Journal events by experiment, run, chain, kind and time, a "
          "page at a time", EVENT_PARAMS,
          response={"type": "object", "required": ["events", "next_page_token"],
                    "properties": {"events": {"type": "array", "items": EVENT},
                                   "next_page_token": NEXT_PAGE_TOKEN}})
@json_route
def events() -> dict[str, Any]:
    """Journal events by experiment, run, chain, kind and time; ``page_token`` pages on. A
    chain the reader may not read (a prompt without its permission) answers 403."""
    server = prov_server()
    filters = parse_filters(request.args, server.tokens)
    if filters.run_id:
        require_read(server, run_experiment(server, filters.run_id))
    if filters.experiment_id:
        require_read(server, filters.experiment_id)
    if not (filters.run_id or filters.experiment_id or filters.chain
            or server.permissions.sees_everything()):
        raise BadRequestError("name an experiment_id, run_id or chain: only readers of every "
                              "experiment may list the whole journal")
    page = events_page(server.tracking_uri, filters)
    shown = readable_events(server, page.events)
    if filters.chain and page.events and not shown:
        raise ForbiddenError(f"no READ permission on {filters.chain}")
    return {"events": [event_json(e, server.pseudonymize) for e in shown],
            PAGE_TOKEN: journal_token(server.tokens, page.next_after_seq)}


def _experiment_run_ids(server: ProvServer, experiment_id: str) -> list[str]:
    run_ids, token = [], None
    while True:
        page = server.client.search_runs([experiment_id], run_view_type=ViewType.ALL,
                                         max_results=RUN_PAGE, page_token=token)
        run_ids += [run.info.run_id for run in page]
        token = page.token
        if not token:
            return run_ids


METRICS = Param("metrics", choice(("all", "changed")),
                 {"type": "string", "enum": ["all", "changed"], "default": "all"},
                 "all: rehash every metric row; changed: only series whose summaries say "
                 "they changed")
VERIFY_PARAMS = (RUN, EXPERIMENT, METRICS)
CHAIN_REPORT = {"type": "object", "properties": {
    "chain": {"type": "string"}, "length": {"type": "integer"}, "intact": {"type": "boolean"},
    "problems": {"type": "array", "items": {"type": "string"}}}}


@api.get("/verify")
@describe("/prov/api/verify", "Recompute the hash chains of a run, or of an experiment and "
          "its runs, and reconcile MLflow's rows with the journal (name exactly one of "
          "run_id, experiment_id)", VERIFY_PARAMS,
          response={"type": "object", "properties": {
              "intact": {"type": "boolean"}, "chains": {"type": "array", "items": CHAIN_REPORT},
              "problems": {"type": "array", "items": {"type": "string"}},
              "notes": {"type": "array", "items": {"type": "string"}},
              "metric_rows_rehashed": {"type": "integer"}}})
@json_route
def verify() -> dict[str, Any]:
    """Recompute the hash chain of a run, or of an experiment and each of its runs, and
    reconcile MLflow's rows with the journal as ``mlflow-prov verify`` does (``problems``):
    an export over HTTP takes its ``journalIntact`` from here. ``metrics=changed`` reads only
    the metric series whose stored summary marks them changed (what exports ask for)."""
    server = prov_server()
    given = read(VERIFY_PARAMS, request.args)
    run_id, experiment_id = given["run_id"], given["experiment_id"]
    every_metric_row = given["metrics"] != "changed"
    if bool(run_id) == bool(experiment_id):
        raise BadRequestError("name exactly one of run_id or experiment_id")
    if run_id:
        require_read(server, run_experiment(server, run_id))
        chains = [run_chain(run_id)]
    else:
        experiment = str(experiment_id)  # given: exactly one of the two was, checked above
        require_read(server, experiment)
        require_experiment(server, experiment)
        chains = [experiment_chain(experiment),
                  *(run_chain(r) for r in _experiment_run_ids(server, experiment))]
    reports = [verify_chain(server.tracking_uri, chain) for chain in chains]
    rows = verify_store(server.tracking_uri, run_ids=[run_id] if run_id else (),
                        experiment_id=None if run_id else str(experiment_id),
                        every_metric_row=every_metric_row)
    return {"intact": all(r.intact for r in reports) and rows.ok,
            "chains": [{"chain": r.chain, "length": r.length, "intact": r.intact,
                        "problems": r.problems} for r in reports],
            "problems": [str(problem) for problem in rows.problems
                         if server.permissions.can_read(None)
                         or not problem.where.startswith(REGISTRY_CHAIN_PROBLEM)],
            "notes": rows.notes, "metric_rows_rehashed": rows.metric_rows_rehashed}


HEAD_PARAMS = (replace(RUN, required=True, description="the run whose chain head to read"),)


@api.get("/head")
@describe("/prov/api/head", "The head of a run's chain: its length and last hash",
          HEAD_PARAMS, response={"type": "object", "properties": {
              "chain": {"type": "string"}, "length": {"type": ["integer", "null"]},
              "last_hash": {"type": ["string", "null"]}}})
@json_route
def head() -> dict[str, Any]:
    """The head of a run's chain (its length and last hash) without reading the chain: what
    an export records as ``journalHead`` so that it can be checked against the store later."""
    server = prov_server()
    run_id = read(HEAD_PARAMS, request.args)["run_id"]
    require_read(server, run_experiment(server, run_id))
    found = chain_head(server.tracking_uri, run_chain(run_id))
    return {"chain": run_chain(run_id), "length": found[0] if found else None,
            "last_hash": found[1] if found else None}


LINEAGE_STARTS = {
    "run_id": run_key,
    "model_id": model_key,
    "dataset": lambda parsed: dataset_key(parsed[1]),  # one dataset per digest, any name
    "artifact": lambda parsed: artifact_key(*parsed),
}
LINEAGE_PARAMS = (LINEAGE_QUERY, RUN, MODEL, DATASET, ARTIFACT)
LINEAGE_DEPTH = lineage_depth(DEPTH)
VIEW_GRAPH = {"type": "object", "properties": {
    "nodes": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "kind": {"type": "string"}, "label": {"type": "string"},
        "href": {"type": "string"}, "attributes": {"type": "object"}}}},
    "edges": {"type": "array", "items": {"type": "object", "properties": {
        "source": {"type": "string"}, "target": {"type": "string"},
        "label": {"type": "string"}}}}}}


@api.get("/lineage")
@describe("/prov/api/lineage", "Upstream and downstream of a run, logged model, model version, "
          "dataset or artifact, across experiments: name exactly one, as q (what "
          "mlflow-prov lineage takes: a unique run id prefix is enough) or by its full id",
          (*LINEAGE_PARAMS, LINEAGE_DEPTH), response=VIEW_GRAPH)
@json_route
def lineage() -> dict[str, Any]:
    """Upstream and downstream of what ``q`` names (anything ``mlflow-prov lineage``
    takes), or of a run, logged model, dataset (``name@digest``) or artifact
    (``run_id/path``) by full id, across experiments, ``depth`` relations each way."""
    server = prov_server()
    values = read((*LINEAGE_PARAMS, LINEAGE_DEPTH), request.args)
    depth = values.pop(LINEAGE_DEPTH.name) or DEPTH
    given = [(name, value) for name, value in values.items() if value is not None]
    if len(given) != 1:
        raise BadRequestError(f"name exactly one of q, {', '.join(LINEAGE_STARTS)} "
                              "(dataset as name@digest, artifact as run_id/path)")
    name, value = given[0]
    reader = open_lineage(server.tracking_uri)
    start = (_resolved(server, reader, value) if name == LINEAGE_QUERY.name
             else LINEAGE_STARTS[name](value))
    if start.kind == RUN_KIND:  # the lineage knows a run's experiment: no read of the run
        known = reader.nodes([start.id]).get(start.id)
        require_read(server, known.experiment_id if known
                     else run_experiment(server, start.ref))
    graph = neighbourhood_graph(reader, start, server.client, server.permissions, depth)
    if not graph.nodes:
        raise NotFoundError(f"nothing readable is known about {start.kind} {start.ref!r}")
    return graph_json(graph)


def _resolved(server: ProvServer, reader: LineageReader, text: str) -> NodeKey:
    """The node ``q`` names, as ``mlflow-prov lineage`` resolves it: a name that matches
    nothing is a 404, a prefix that matches several nodes the reader may see a 400 naming
    them (those they may not see are neither named nor chosen), anything malformed a 400. A
    node the reader may not see is answered as one that does not exist: the answer must not
    tell a prefix of a hidden run from nothing."""
    try:
        key = resolve(reader, text, server.client)
    except AmbiguousNodeError as exc:
        keys = readable_keys(reader, [NodeKey.parse(c) for c in exc.candidates],
                             server.client, server.permissions)
        if len(keys) == 1:
            return keys[0]
        if not keys:
            raise NotFoundError(f"q={shown(text)} names nothing readable on this server; "
                                f"{HELP}") from exc
        raise BadRequestError(f"q={shown(text)} matches more than one node "
                              f"({', '.join(key.id for key in keys)}); give more of it") from exc
    except UnknownNodeError as exc:
        raise NotFoundError(f"q: {exc}") from exc
    except LineageError as exc:
        raise BadRequestError(f"q: {exc}") from exc
    if not readable_keys(reader, [key], server.client, server.permissions):
        raise NotFoundError(f"q={shown(text)} names nothing readable on this server; {HELP}")
    return key


@api.get("/openapi.json")
@describe("/prov/api/openapi.json", "This description (OpenAPI 3.1)", (),
          response={"type": "object"}, errors=(401,))
def openapi() -> Response:
    return jsonify(document())
