"""``/prov/api/prompts/<name>``: a prompt's history as JSON, the twin of its page.

One reader (:func:`read_prompt_history`) serves the page (:mod:`exporters.app.pages`) and
this route, so both show the same versions, alias moves, tag changes and users. Prompts are
registry objects, which belong to no experiment: as for model versions, only readers of every
experiment see them; the runs, traces and models that used a version are filtered by their
experiment like every lineage node.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import request

from exporters.app.api import ForbiddenError, NotFoundError, api, json_route
from exporters.app.openapi import describe
from exporters.app.params import PROMPT_NAME, PROMPT_VERSION, read
from exporters.app.prompt_history import PromptHistory, add_uses, chain_events, fold_history
from exporters.app.setup import ProvServer, prov_server
from exporters.app.views import RunDirectory
from exporters.privacy import redact
from mlflow_prov.lineage_edges import open_lineage

PROMPT_PARAMS = (replace(PROMPT_NAME, where="path", required=True), PROMPT_VERSION)
CHANGE = {"type": ["object", "null"], "properties": {
    "seq": {"type": "integer"}, "time": {"type": "string"}, "who": {"type": "string"}}}
USE = {"type": "object", "properties": {
    "kind": {"type": "string", "enum": ["run", "trace", "model"]}, "id": {"type": "string"},
    "label": {"type": "string"}, "href": {"type": "string"},
    "experiment_id": {"type": ["string", "null"]}}}
PROMPT_HISTORY = {"type": "object", "required": ["name", "versions", "aliases", "tags"],
                  "properties": {
    "name": {"type": "string"}, "created": CHANGE, "deleted": CHANGE,
    "versions": {"type": "array", "items": {"type": "object", "properties": {
        "version": {"type": "integer"}, "created": CHANGE, "deleted": CHANGE,
        "template_sha256": {"type": ["string", "null"]},
        "template_length": {"type": ["integer", "null"]},
        "message": {"type": ["string", "null"]},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "used_by": {"type": "array", "items": USE}}}},
    "aliases": {"type": "array", "items": {"type": "object", "properties": {
        "alias": {"type": "string"}, "version": {"type": ["integer", "null"]},
        "old_version": {"type": ["integer", "null"]}, "change": CHANGE}}},
    "tags": {"type": "array", "items": {"type": "object", "properties": {
        "key": {"type": "string"}, "version": {"type": ["integer", "null"]},
        "value": {}, "old_value": {}, "deleted": {"type": "boolean"}, "change": CHANGE}}}}}


def read_prompt_history(server: ProvServer, name: str, version: int | None) -> PromptHistory:
    """The prompt's history (one version's part of it when ``version`` is given), redacted;
    :class:`NotFoundError` naming the prompt or version the journal does not know."""
    if not server.permissions.can_read_prompt(name):  # MLflow's rule for the prompt itself
        raise ForbiddenError(f"no READ permission on prompt {name!r}")
    history = fold_history(name, chain_events(server.tracking_uri, name), server.pseudonymize)
    if history is None:
        raise NotFoundError(f"no prompt {name!r} in this server's journal; check the name "
                            "(/prov/prompts lists them)")
    if version is not None:
        if version not in {row.version for row in history.versions}:
            raise NotFoundError(f"prompt {name!r} has no version {version} in this server's "
                                f"journal (it has {len(history.versions)})")
        history = history.only_version(version)
    add_uses(history, open_lineage(server.tracking_uri), RunDirectory(server.client),
             server.permissions.can_read)
    return redact(history)


@api.get("/prompts/<name>")
@describe("/prov/api/prompts/{name}", "A prompt's history: its versions, alias moves and tag "
          "changes, who made each and when, and the runs, traces and logged models that used "
          "each version", PROMPT_PARAMS, response=PROMPT_HISTORY)
@json_route
def prompt_history(name: str) -> dict[str, Any]:
    server = prov_server()
    given = read(PROMPT_PARAMS, request.args, {"name": name})
    return read_prompt_history(server, given["name"], given["version"]).to_json()
