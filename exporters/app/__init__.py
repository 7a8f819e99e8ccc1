"""Provenance pages and a read-only journal API inside ``mlflow server``.

Two server apps for MLflow's ``mlflow.app`` entry point (how ``--app-name basic-auth``
works): ``prov`` adds the routes under ``/prov/`` to MLflow's own Flask app, and
``prov-auth`` is MLflow's basic-auth app plus the same routes, where every read is checked
against the user's per-experiment READ permission. MLflow's UI and REST API stay as they are.

Why a factory that may return a FastAPI app: uvicorn is ``mlflow server``'s default since
MLflow 3.3 and cannot serve a Flask (WSGI) app directly; MLflow's basic-auth factory wraps it
the same way (design notes §8).
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def _mlflow_app(app: Flask | None) -> Flask:
    """The app to extend: uvicorn calls a factory with no argument, so it is MLflow's own."""
    if app is not None:
        return app
    from mlflow.server import app as mlflow_app

    return mlflow_app


def create_app(app: Flask | None = None) -> Any:
    """``mlflow server --app-name prov``: MLflow's app plus ``/prov/`` for everyone."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    from exporters.app.permissions import OpenAccess
    from exporters.app.setup import install

    app = _mlflow_app(app)
    install(app, OpenAccess())
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app


def create_auth_app(app: Flask | None = None) -> Any:
    """``mlflow server --app-name prov-auth``: basic-auth plus ``/prov/`` under MLflow's
    per-experiment READ permissions."""
    from mlflow.server import auth

    from exporters.app.permissions import ExperimentReadPermissions, gate_prov_routes
    from exporters.app.setup import install

    app = _mlflow_app(app)
    install(app, ExperimentReadPermissions())
    served = auth.create_app(app)
    gate_prov_routes(app)
    return served
