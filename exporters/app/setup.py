"""Attach the ``/prov/`` routes to MLflow's Flask app, with the store they read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from flask import Flask, current_app

from exporters.app.permissions import Permissions
from exporters.app.tokens import PageTokens, page_token_secret
from exporters.compat import backend_store_env_var
from exporters.privacy import Pseudonymizer

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXTENSION = "mlflow_prov"
PSEUDONYMIZE_ENV = "MLFLOW_PROV_PSEUDONYMIZE"
PSEUDONYM_SALT_ENV = "MLFLOW_PROV_PSEUDONYM_SALT"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass
class ProvServer:
    """What every ``/prov/`` route needs: the store's URI, a client on it, who may read what,
    how writers' names are shown and how page tokens are signed."""

    tracking_uri: str
    permissions: Permissions
    tokens: PageTokens
    pseudonymize: Pseudonymizer = field(default_factory=lambda: Pseudonymizer(False))

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)


def server_tracking_uri() -> str:
    """The store this server serves: the URI ``mlflow server`` gave its workers
    (``MLFLOW_TRACKING_URI`` for a Flask app started some other way)."""
    return (os.environ.get(backend_store_env_var()) or os.environ.get("MLFLOW_TRACKING_URI")
            or "sqlite:///mlflow.db")


def pseudonymizer_from_environment() -> Pseudonymizer:
    """Writers' user and host names follow ``MLFLOW_PROV_PSEUDONYMIZE`` (the export's
    ``--pseudonymize``). ``MLFLOW_PROV_PSEUDONYM_SALT`` keeps pseudonyms the same across
    workers and restarts; without it each worker salts its own."""
    enabled = os.environ.get(PSEUDONYMIZE_ENV, "").strip().lower() in TRUE_WORDS
    salt = os.environ.get(PSEUDONYM_SALT_ENV)
    return Pseudonymizer(enabled, salt=salt.encode("utf-8") if salt else None)


def install(app: Flask, permissions: Permissions) -> None:
    """Register the API and page blueprints and the state they share."""
    from exporters.app.api import api, unrouted_api_answer
    from exporters.app.pages import pages
    from exporters.app.seal_api import seal_api
    from exporters.app.ui_link import attach
    from mlflow_prov.artifact_uploads import attach_upload_recording

    tracking_uri = server_tracking_uri()
    app.extensions[EXTENSION] = ProvServer(tracking_uri=tracking_uri, permissions=permissions,
                                           pseudonymize=pseudonymizer_from_environment(),
                                           tokens=PageTokens(page_token_secret(tracking_uri)))
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(seal_api)
    for status in (404, 405):
        app.register_error_handler(status, unrouted_api_answer)
    attach(app)
    attach_upload_recording(app, tracking_uri)


def prov_server() -> ProvServer:
    """The state of the app serving the current request."""
    return current_app.extensions[EXTENSION]
