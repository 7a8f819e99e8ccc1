"""Provenance pages and a read-only journal API inside ``mlflow server``.

Two server apps for MLflow's ``mlflow.app`` entry point (how ``--app-name basic-auth``
works): ``prov`` adds the routes under ``/prov/`` to MLflow's own Flask app, and
``prov-auth`` is MLflow's basic-auth app plus the same routes, where every read is checked
against the user's per-experiment READ permission. MLflow's UI and REST API stay as they are.

Why a factory that may return a FastAPI app: uvicorn is ``mlflow server``'s default since
MLflow 3.3 and cannot serve a Flask (WSGI) app directly; MLflow's basic-auth factory wraps it
the same way (docs/internals.md, "Server apps"). Every MLflow internal used here goes through
:mod:`exporters.compat`, each under a contract test.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def _mlflow_app(app: Flask | None) -> Flask:
    """The app to extend: uvicorn calls a factory with no argument, so it is MLflow's own."""
    from exporters.compat import mlflow_flask_app

    return app if app is not None else mlflow_flask_app()


def create_app(app: Flask | None = None) -> Any:
    """``mlflow server --app-name prov``: MLflow's app plus ``/prov/`` for everyone."""
    from exporters.app.permissions import OpenAccess
    from exporters.app.setup import install
    from exporters.compat import asgi_app, served_by_uvicorn

    app = _mlflow_app(app)
    install(app, OpenAccess())
    return _recording_uploads(asgi_app(app) if served_by_uvicorn() else app)


def create_auth_app(app: Flask | None = None) -> Any:
    """``mlflow server --app-name prov-auth``: basic-auth plus ``/prov/`` under MLflow's
    per-experiment READ permissions."""
    from exporters.app.permissions import ExperimentReadPermissions, gate_prov_routes
    from exporters.app.setup import install
    from exporters.compat import basic_auth_app

    app = _mlflow_app(app)
    install(app, ExperimentReadPermissions())
    served = basic_auth_app(app)
    gate_prov_routes(app)
    return _recording_uploads(served)


def _recording_uploads(served: Any) -> Any:
    """Under uvicorn MLflow serves artifact uploads from FastAPI, not Flask: journal them
    there (mlflow_prov/artifact_uploads.py)."""
    from exporters.app.setup import server_tracking_uri
    from mlflow_prov.artifact_uploads import record_asgi_uploads

    return record_asgi_uploads(served, server_tracking_uri())
