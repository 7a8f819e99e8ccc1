"""``POST /prov/api/seal`` and ``/prov/api/unseal``: what ``mlflow-prov seal`` asks a server.

The only writing routes under ``/prov/``. Behind ``prov-auth`` they need MANAGE permission
(MLflow basic-auth's, checked here as MLflow's own routes check theirs): on the run's
experiment for ``runs:/ID``, on the experiment for ``experiments:/ID``, on the registered
model for ``models:/NAME/VERSION``. The seal is journaled by capture
(:func:`mlflow_prov.seals.seal`) with the signed-in user as who.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from mlflow.exceptions import MlflowException

from exporters.app.api import ForbiddenError, NotFoundError, json_route, run_experiment
from exporters.app.openapi import describe
from exporters.app.params import BadRequestError, shown
from exporters.app.setup import ProvServer, prov_server
from mlflow_prov.seals import SealTargetError, seal, unseal

seal_api = Blueprint("prov_seal_api", __name__, url_prefix="/prov/api")
MAX_REASON = 2000
MAX_TARGET = 600
SEAL_REQUEST = {"type": "object", "required": ["target", "reason"], "properties": {
    "target": {"type": "string", "maxLength": MAX_TARGET,
               "description": "runs:/RUN_ID, models:/NAME/VERSION or experiments:/ID",
               "examples": ["runs:/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "models:/churn/3"]},
    "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON,
               "description": "why: the journal keeps it with who and when"}}}
SEAL_ANSWER = {"type": "object", "required": ["changes"], "properties": {"changes": {
    "type": "array", "items": {"type": "object", "properties": {
        "target": {"type": "string"},
        "changed": {"type": "boolean",
                    "description": "false: it already was (or was not) sealed"},
        "seal": {"type": ["object", "null"],
                 "description": "who, when, why and target of the seal now held"}}}}}}
ERRORS = (400, 401, 403, 404)


@seal_api.post("/seal")
@describe("/prov/api/seal", "Seal a run, model version or experiment: later writes to it "
          "are refused with INVALID_STATE (MANAGE permission behind prov-auth)",
          method="post", request_body=SEAL_REQUEST, response=SEAL_ANSWER, errors=ERRORS)
@json_route
def seal_route() -> dict[str, Any]:
    return _change(sealing=True)


@seal_api.post("/unseal")
@describe("/prov/api/unseal", "Lift a seal (MANAGE permission behind prov-auth)",
          method="post", request_body=SEAL_REQUEST, response=SEAL_ANSWER, errors=ERRORS)
@json_route
def unseal_route() -> dict[str, Any]:
    return _change(sealing=False)


def _change(*, sealing: bool) -> dict[str, Any]:
    server = prov_server()
    target, reason = _body()
    _require_manage(server, target)
    try:
        changes = (seal if sealing else unseal)(server.tracking_uri, target, reason,
                                               user=server.permissions.user())
    except SealTargetError as error:
        raise NotFoundError(str(error)) from error
    except MlflowException as error:
        raise BadRequestError(error.message) from error
    return {"changes": [{"target": c.target, "changed": c.changed,
                         "seal": _pseudonymised(server, c.record)} for c in changes]}


def _pseudonymised(server: ProvServer, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A seal record with its who as the server shows writers (pseudonymised when it is)."""
    if record is None or "who" not in record:
        return record
    return {**record, "who": server.pseudonymize.writer(record["who"])}


def _body() -> tuple[str, str]:
    """The request's target and reason, or a BadRequestError naming what is wrong."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError('send a JSON body: {"target": "runs:/RUN_ID", "reason": "why"}')
    target, reason = body.get("target"), body.get("reason")
    if not isinstance(target, str) or not 0 < len(target) <= MAX_TARGET:
        raise BadRequestError("target: name runs:/RUN_ID, models:/NAME/VERSION or "
                              "experiments:/ID")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise BadRequestError(f"reason: say why, in 1 to {MAX_REASON} characters")
    return target, reason


def _require_manage(server: ProvServer, target: str) -> None:
    """ForbiddenError unless the user may MANAGE what ``target`` names."""
    kind, _, rest = target.partition(":/")
    parts = [part for part in rest.split("/") if part]
    if kind == "runs" and parts:
        allowed, what = (server.permissions.can_manage(run_experiment(server, parts[0])),
                         f"the experiment of run {parts[0]}")
    elif kind == "experiments" and parts and parts[0].isdigit():
        allowed, what = server.permissions.can_manage(parts[0]), f"experiment {parts[0]}"
    elif kind == "models" and len(parts) == 2:
        allowed, what = (server.permissions.can_manage_model(parts[0]),
                         f"registered model {parts[0]!r}")
    else:
        raise BadRequestError(f"target={shown(target)}: name runs:/RUN_ID, "
                              "models:/NAME/VERSION or experiments:/ID")
    if not allowed:
        raise ForbiddenError(f"sealing needs MANAGE permission on {what}")
