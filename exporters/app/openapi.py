"""The OpenAPI 3.1 description of the ``/prov/`` routes, served at ``/prov/api/openapi.json``.

Why written from the routes: each route declares its parameters (:class:`Param`, the very
objects that parse them) and its answer with :func:`describe`, so the document lists exactly
what the server accepts, with the same bounds. A test holds every ``/prov/`` rule of the Flask
app to having an entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

from exporters.app.params import Param

View = TypeVar("View", bound=Callable[..., Any])

ERROR = {"type": "object", "required": ["error_code", "message"],
         "properties": {"error_code": {"type": "string",
                                       "examples": ["INVALID_PARAMETER_VALUE"]},
                        "message": {"type": "string",
                                    "description": "one line naming the parameter or thing"}}}
STATUS_TEXT = {400: "a parameter is malformed or out of range (the message names it)",
               401: "prov-auth only: no or wrong credentials",
               403: "the reader may not read the experiment a parameter names (seal and "
                    "unseal: may not MANAGE it)",
               404: "no such run, experiment or lineage node, or no provenance journal"}


@dataclass(frozen=True)
class Operation:
    """One GET route as the document describes it."""

    path: str  # OpenAPI's form: /prov/runs/{run_id}
    summary: str
    params: tuple[Param, ...]
    response: Mapping[str, Any] | None  # the 200 JSON body's schema; None: a text body
    errors: tuple[int, ...]
    media_type: str = "text/html"  # the text body's type when ``response`` is None
    method: str = "get"
    request_body: Mapping[str, Any] | None = None  # a JSON body's schema (POST routes)


OPERATIONS: dict[str, Operation] = {}


def describe(path: str, summary: str, params: tuple[Param, ...] = (), *,
             response: Mapping[str, Any] | None = None,
             errors: tuple[int, ...] = (400, 401, 403, 404),
             media_type: str = "text/html", method: str = "get",
             request_body: Mapping[str, Any] | None = None) -> Callable[[View], View]:
    """Record a route's entry (``response=None`` for an HTML page, or another text body of
    ``media_type``; ``request_body``: the JSON body a ``method="post"`` route reads)."""

    def record(view: View) -> View:
        OPERATIONS[path] = Operation(path, summary, params, response, errors, media_type,
                                     method, request_body)
        return view

    return record


def _parameter(param: Param) -> dict[str, Any]:
    return {"name": param.name, "in": param.where, "description": param.description,
            "required": param.required or param.where == "path",
            "schema": dict(param.schema), **({"explode": True} if param.repeated else {})}


def _error_response(status: int, page: bool) -> dict[str, Any]:
    if status == 401:  # basic-auth's own answer, before any /prov/ code runs
        return {"description": STATUS_TEXT[status]}
    body = ({"text/html": {"schema": {"type": "string"}}} if page else
            {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
    return {"description": STATUS_TEXT[status], "content": body}


def _operation(operation: Operation) -> dict[str, Any]:
    page = operation.response is None
    ok = ({operation.media_type: {"schema": {"type": "string"}}} if page
          else {"application/json": {"schema": dict(operation.response or {})}})
    body = ({"requestBody": {"required": True, "content": {"application/json": {
        "schema": dict(operation.request_body)}}}} if operation.request_body else {})
    return {operation.method: {
        "summary": operation.summary, **body,
        "operationId": operation.path.strip("/").replace("/", "_").replace("{", "").replace(
            "}", "").replace(".", "_") or "prov",
        "parameters": [_parameter(param) for param in operation.params],
        "responses": {"200": {"description": "OK", "content": ok},
                      **{str(status): _error_response(status, page)
                         for status in operation.errors}}}}


def _version() -> str:
    try:
        return version("mlflow-prov")
    except PackageNotFoundError:  # a source tree on the path, not installed
        return "0+unknown"


def document() -> dict[str, Any]:
    """The whole description, every route recorded with :func:`describe`."""
    # imported for their routes, which describe themselves
    from exporters.app import api, pages, seal_api, ui_link  # noqa: F401

    return {
        "openapi": "3.1.0",
        "info": {"title": "mlflow-prov /prov/", "version": _version(),
                 "description": "Provenance pages and a read-only journal API inside "
                                "mlflow server (--app-name prov or prov-auth). Every route is "
                                "a GET but seal and unseal (POST); API errors are JSON "
                                "{error_code, message}, page errors HTML; both name the "
                                "parameter at fault."},
        "paths": {path: _operation(OPERATIONS[path]) for path in sorted(OPERATIONS)},
        "components": {"schemas": {"Error": ERROR},
                       "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                                     "description": "prov-auth only"}}},
    }
