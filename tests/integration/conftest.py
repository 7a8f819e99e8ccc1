"""Real stores for integration tests: sqlite in tmp_path, and a fresh PostgreSQL database.

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth), each in a database of its
own that is dropped afterwards. Where no server answers they skip, saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_ADMIN_URI = os.environ.get("MLFLOW_PROV_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URI = os.environ.get("MLFLOW_PROV_TEST_MYSQL",
                                 "mysql+pymysql://root@127.0.0.1:3306/test")


def _admin_engine() -> sa.engine.Engine:
    return sa.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def postgres_available() -> str:
    """The admin URI, or a skip naming what was tried and how to start the server."""
    try:
        with _admin_engine().connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as error:  # refused, timed out: no server here
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URI} ({type(error).__name__}); "
                    "start it with: pg_ctlcluster --skip-systemctl-redirect "
                    "$(ls /etc/postgresql) main start")
    return PG_ADMIN_URI


@pytest.fixture
def postgres_database(postgres_available: str) -> Iterator[str]:
    """A fresh, empty database; yields its ``postgresql://`` URI and drops it afterwards."""
    name = f"mlflow_prov_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = sa.engine.make_url(postgres_available)
    yield base.set(database=name).render_as_string(hide_password=False)
    _dispose_cached_engines(name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _dispose_cached_engines(database: str) -> None:
    """MLflow caches one engine per database URI; drop ours so the database can go."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for cache in (SqlAlchemyStore._engine_map, getattr(RegistryStore, "_engine_map", {})):
        for uri in [uri for uri in cache if uri.endswith(f"/{database}")]:
            cache.pop(uri).dispose()


@pytest.fixture
def prov_mysql_uri() -> Iterator[str]:
    """``prov+mysql+pymysql://`` over a fresh MySQL/MariaDB database, dropped afterwards."""
    admin = sa.create_engine(MYSQL_ADMIN_URI, isolation_level="AUTOCOMMIT")
    name = f"mlflow_prov_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    except sa.exc.OperationalError as error:  # refused, timed out: no server here
        pytest.skip(f"MySQL/MariaDB not reachable at {MYSQL_ADMIN_URI} ({type(error).__name__})")
    url = sa.engine.make_url(MYSQL_ADMIN_URI).set(database=name)
    yield "prov+" + url.render_as_string(hide_password=False)
    _dispose_cached_engines(name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture
def prov_postgres_uri(postgres_database: str) -> str:
    """``prov+postgresql://`` over a fresh database."""
    return "prov+" + postgres_database


@pytest.fixture
def prov_uri(tmp_path) -> str:
    """The embedded default: ``prov:///<tmp>/runs``."""
    return f"prov://{tmp_path / 'runs'}"


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    """Plain MLflow sqlite, the reference a prov store must match."""
    return f"sqlite:///{tmp_path / 'plain.db'}"


@pytest.fixture(autouse=True)
def _isolated_mlflow_state(monkeypatch, tmp_path) -> Iterator[None]:
    """No test leaks an active run, experiment or tracking URI into the next."""
    import mlflow
    from mlflow.tracking import fluent

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    mlflow.clear_active_model()
    fluent._active_experiment_id = None
