"""``prov+sqlite:///:memory:``: a prov store in this process's memory, journal included.

Why not MLflow's own ``sqlite:///:memory:``: SQLAlchemy gives that URI a connection *per
thread*, each its own empty database, so a write from another thread (async logging, the
system-metrics monitor, a server's request threads) fails with "no such table". And a
shared-cache in-memory database answers concurrent writers with "database table is locked".

So the store lives in sqlite's ``memdb`` VFS under one process-wide name: every connection
in this process opening that name (MLflow's pool, the registry store, the journal readers)
sees the same database with ordinary sqlite locking, and one connection kept open here keeps
it alive until the process exits. MLflow would turn the ``file:/…`` name into a folder to
create (it makes a sqlite URI's parent folder), so its stores are handed a ready engine.
"""

from __future__ import annotations

import sqlite3
import threading

MEMORY_PATH = ":memory:"
MEMORY_URI = "prov+sqlite:///:memory:"
_DATABASE_NAME = "file:/mlflow-prov-memory?vfs=memdb"
MEMORY_DB_URI = f"sqlite:///{_DATABASE_NAME}&uri=true"
BUSY_TIMEOUT_SECONDS = 30.0

_keep_alive: list[sqlite3.Connection] = []
_lock = threading.Lock()


def is_memory_database(db_uri: str) -> bool:
    """Whether ``db_uri`` is the in-memory prov store's database."""
    return db_uri == MEMORY_DB_URI


def is_open() -> bool:
    """Whether a store in this process opened the in-memory database (it exists nowhere
    else: another process has its own, empty one)."""
    return bool(_keep_alive)


def open_memory_database() -> None:
    """Create the in-memory database once per process, kept alive, and give MLflow's stores
    an engine for it (pooled connections across threads, waiting on each other's locks)."""
    import sqlalchemy as sa

    from mlflow_prov import compat

    with _lock:
        if _keep_alive:
            return
        _keep_alive.append(sqlite3.connect(_DATABASE_NAME, uri=True, check_same_thread=False))
        engine = sa.create_engine(MEMORY_DB_URI,
                                  connect_args={"timeout": BUSY_TIMEOUT_SECONDS,
                                                "check_same_thread": False})
        compat.share_engine(MEMORY_DB_URI, engine)
