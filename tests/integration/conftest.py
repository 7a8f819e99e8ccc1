"""Real stores for integration tests: sqlite in tmp_path, and a fresh PostgreSQL database.

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth), each in a database of its
own that is dropped afterwards. Where no server answers they skip, saying so. Fresh stores
are copies of one migrated template per session (:mod:`store_templates` for sqlite, a
template database for PostgreSQL): MLflow's migrations take seconds, a copy milliseconds.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial

import pytest
import sqlalchemy as sa
from store_templates import prov_store, sqlite_store

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
    """MLflow and the journal reader cache one engine per database URI; drop ours so the
    database can go (or serve as a template)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from mlflow_prov import journal

    for cache in (SqlAlchemyStore._engine_map, getattr(RegistryStore, "_engine_map", {})):
        for uri in [uri for uri in cache if uri.endswith(f"/{database}")]:
            cache.pop(uri).dispose()
    with journal._engines_lock:
        engines = [journal._engines.pop(uri) for uri in list(journal._engines)
                   if str(uri).endswith(f"/{database}")]
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="session")
def _prov_postgres_template(postgres_available: str,
                            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A database the prov store created and MLflow migrated, once per session: each
    ``prov_postgres_uri`` is a copy (``CREATE DATABASE ... TEMPLATE``, a fraction of a second,
    where the migrations take 2-3 s). Yields its name and the working directory it was made
    in (MLflow's Default experiment keeps its artifacts under the working directory)."""
    name = f"mlflow_prov_template_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    uri = sa.engine.make_url(postgres_available).set(database=name)
    place = tmp_path_factory.mktemp("pg-template")
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(place)
        MlflowClient("prov+" + uri.render_as_string(hide_password=False)).search_experiments()
    _dispose_cached_engines(name)
    with admin.connect() as connection:  # a template may have no other session on it
        connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    yield name, str(place)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


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


@contextmanager
def _postgres_copy(postgres_available: str, template: str, made_in: str) -> Iterator[str]:
    name = f"mlflow_prov_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    uri = sa.engine.make_url(postgres_available).set(database=name).render_as_string(
        hide_password=False)
    engine = sa.create_engine(uri)
    try:
        with engine.begin() as connection:  # the Default experiment MLflow would make here
            location = connection.exec_driver_sql(
                "SELECT artifact_location FROM experiments WHERE experiment_id = 0").scalar()
            assert made_in in location, location
            now = int(time.time() * 1000)
            connection.execute(
                sa.text("UPDATE experiments SET artifact_location = :location, "
                        "creation_time = :now, last_update_time = :now WHERE experiment_id = 0"),
                {"location": location.replace(made_in, os.getcwd(), 1), "now": now})
    finally:
        engine.dispose()
    yield "prov+" + uri
    _dispose_cached_engines(name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def prov_postgres_uri(postgres_available: str,
                      _prov_postgres_template: tuple[str, str]) -> Iterator[str]:
    """``prov+postgresql://`` over a fresh database of its own, created and migrated (a copy
    of the session's template), dropped afterwards."""
    with _postgres_copy(postgres_available, *_prov_postgres_template) as uri:
        yield uri


@pytest.fixture(scope="session")
def prov_postgres_stores(postgres_available: str, _prov_postgres_template: tuple[str, str]
                         ) -> Callable[[], AbstractContextManager[str]]:
    """For fixtures wider than a test: ``with prov_postgres_stores() as uri:`` is a fresh
    store (as :func:`prov_postgres_uri`) for as long as the block lasts."""
    return partial(_postgres_copy, postgres_available, *_prov_postgres_template)


@pytest.fixture
def prov_uri(tmp_path) -> str:
    """The embedded default: ``prov:///<tmp>/runs``, created and migrated (a copy of a
    template: :mod:`store_templates`)."""
    return prov_store(tmp_path / "runs")


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    """Plain MLflow sqlite, the reference a prov store must match (created and migrated)."""
    return sqlite_store(tmp_path / "plain.db")


@pytest.fixture(autouse=True)
def _isolated_mlflow_state(monkeypatch, tmp_path) -> Iterator[None]:
    """No test leaks an active run, experiment or tracking URI into the next, nor writes a
    server's page-token secret into the real cache folder."""
    import mlflow
    from mlflow.tracking import fluent

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))  # servers' token secrets
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    mlflow.clear_active_model()
    fluent._active_experiment_id = None
