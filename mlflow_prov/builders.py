"""Entry-point builders that MLflow calls for the ``prov`` URI schemes.

They import the store classes inside the function on purpose: importing
``SqlAlchemyStore`` while MLflow is still loading its entry points hits a circular import
that MLflow reports only as a warning, followed later by a misleading
``UnsupportedModelRegistryStoreURIException`` (docs/internals.md, "Plugin mechanics").
"""

from __future__ import annotations

from mlflow_prov.compat import serve_database_features


def build_tracking_store(store_uri: str, artifact_uri: str | None = None, **kwargs):
    """Build the tracking store for the prov, prov+sqlite, prov+postgresql, prov+mysql schemes."""
    from mlflow_prov.compat import register_prov_scorer_stores
    from mlflow_prov.store import tracking_store_class

    register_prov_scorer_stores()
    return tracking_store_class()(store_uri, artifact_uri, **kwargs)


def build_registry_store(store_uri: str, tracking_uri: str | None = None, **kwargs):
    """Build the model-registry store for the same schemes (``register_model`` needs it)."""
    from mlflow_prov.store import registry_store_class

    return registry_store_class()(store_uri, **kwargs)


def build_scorer_store(tracking_uri: str | None = None):
    """Build MLflow's scorer store for the same schemes (``Scorer.register``)."""
    from mlflow_prov.compat import scorer_store

    return scorer_store(tracking_uri)


def _database_uri(uri: str) -> str | None:
    from mlflow_prov.uri import database_uri

    return database_uri(uri)


# MLflow loads this module with its store entry points in every process that imports it (the
# server's workers and job runners too): from then on its database-only server features, job
# execution first, accept prov URIs (mlflow_prov/compat.py, DATABASE_URI_CHECKS).
serve_database_features(_database_uri)
