"""Fail fast, on one line, before MLflow builds a store on a location that cannot work.

Why: MLflow's ``SqlAlchemyStore`` creates its engine in ``create_sqlalchemy_engine_with_retry``
(``mlflow/store/db/utils.py``), which retries *every* error with exponential back-off for
about 100 s and then raises a 36-frame traceback: a wrong password or a missing database,
which no wait can heal, cost a user nearly two minutes to learn of. And an embedded store
path that is a file, or a folder the user cannot write, surfaced as a raw ``OSError``.

So before MLflow sees the database URI this module opens one connection of its own and
classifies a failure:

* cannot heal (login refused, no such database or role, unknown host): an
  ``MlflowException`` at once, naming the database (password hidden) and the fix;
* may heal (connection refused, timed out, server starting up): retried with back-off for
  at most ``MLFLOW_PROV_CONNECT_TIMEOUT`` seconds (default :data:`DEFAULT_CONNECT_TIMEOUT`),
  then the same one-line ``MlflowException``.

A URI that passed is not checked again in this process (MLflow caches its engine per URI).
Only public SQLAlchemy and MLflow names are used here: no MLflow internal.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from sqlalchemy.pool import NullPool

from mlflow_prov.memory_store import open_memory_database
from mlflow_prov.uri import ProvLocation

__all__ = ["CONNECT_TIMEOUT_VARIABLE", "DEFAULT_CONNECT_TIMEOUT", "DatabaseUnavailableError",
           "check_database", "check_location", "check_store_folder", "connect_timeout"]

CONNECT_TIMEOUT_VARIABLE = "MLFLOW_PROV_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10.0
# Failures a later attempt may not repeat: the server is not (yet) listening or answering.
_TRANSIENT = re.compile(
    r"connection refused|timeout expired|timed out|could not connect|can't connect"
    r"|the database system is (starting up|shutting down)|server closed the connection"
    r"|lost connection|too many connections", re.IGNORECASE)
_MYSQL_TRANSIENT_CODES = frozenset({1040, 2002, 2003, 2006, 2013})
_checked: set[str] = set()
_lock = threading.Lock()


class DatabaseUnavailableError(MlflowException):
    """The tracking database refused us, does not exist, or did not answer in time."""


def connect_timeout() -> float:
    """Seconds a refused connection is retried: ``MLFLOW_PROV_CONNECT_TIMEOUT`` or 10."""
    raw = os.environ.get(CONNECT_TIMEOUT_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise MlflowException(f"{CONNECT_TIMEOUT_VARIABLE}={raw!r} is not a number of seconds; "
                              "set it to e.g. 10", error_code=INVALID_PARAMETER_VALUE) from None
    return max(value, 0.0)


def check_location(location: ProvLocation) -> None:
    """Everything a prov store needs before MLflow opens it: its folder (embedded and sqlite
    stores, created here when missing), its in-memory database, or its database server
    (PostgreSQL, MySQL)."""
    if location.in_memory:
        open_memory_database()
        return
    if location.embedded_dir is not None:
        database = Path(location.db_uri.removeprefix("sqlite:///"))
        check_store_folder(location.embedded_dir, new=not database.exists())
        if database.is_dir():
            raise _invalid(f"the prov store database {database} is a folder; point the "
                           "tracking URI at a file (prov+sqlite:///path/to/file.db) or at "
                           "the folder that holds mlflow.db (prov:///path)")
        if database.exists() and not os.access(database, os.R_OK | os.W_OK):
            raise _invalid(f"the prov store database {database} is not readable and "
                           "writable; fix its permissions or choose another store")
    check_database(location.db_uri)


def check_store_folder(folder: Path, new: bool = True) -> None:
    """Raise ``MlflowException`` naming ``folder`` and the fix when an embedded store cannot
    live there: it is a file, cannot be created, or (for a ``new`` store, whose database
    sqlite must create) is not writable. An existing store in a read-only folder is left to
    open: readers such as the exporters need no write access."""
    if folder.exists() and not folder.is_dir():
        raise _invalid(f"the prov store path {folder} is a file, not a folder; "
                       "point the tracking URI at a folder (prov:///path/to/dir)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _invalid(f"cannot create the prov store folder {folder}: "
                       f"{error.strerror or error}; choose a folder you can write") from None
    if not new:
        return
    try:  # os.access says yes to root even on a read-only mount or an immutable folder
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise _invalid(f"the prov store folder {folder} is not writable "
                       f"({error.strerror or error}); make it writable or choose another "
                       "folder") from None


def check_database(db_uri: str, timeout: float | None = None) -> None:
    """Open and close one connection to a server database (sqlite is skipped: it has no
    server); raise :class:`DatabaseUnavailableError` with one line when that fails for
    good, or keeps failing for ``timeout`` seconds (default :func:`connect_timeout`)."""
    if db_uri.startswith("sqlite") or db_uri in _checked:
        return
    limit = connect_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    delay = 0.2
    while True:
        remaining = deadline - time.monotonic()
        error = _try_connect(db_uri, max(1, min(int(remaining) + 1, 10)))
        if error is None:
            with _lock:
                _checked.add(db_uri)
            return
        transient = _is_transient(error)
        remaining = deadline - time.monotonic()
        if not transient or remaining <= 0:
            raise DatabaseUnavailableError(_message(db_uri, error, transient, limit),
                                           error_code=INVALID_PARAMETER_VALUE)
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)


def _try_connect(db_uri: str, seconds: int) -> sa.exc.SQLAlchemyError | None:
    engine = sa.create_engine(db_uri, poolclass=NullPool,
                              connect_args={"connect_timeout": seconds})
    try:
        with engine.connect():
            return None
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        return error
    finally:
        engine.dispose()


def _is_transient(error: sa.exc.SQLAlchemyError) -> bool:
    original = getattr(error, "orig", None)
    code = original.args[0] if original is not None and original.args else None
    if isinstance(code, int):
        return code in _MYSQL_TRANSIENT_CODES
    return bool(_TRANSIENT.search(_reason(error)))


def _reason(error: sa.exc.SQLAlchemyError) -> str:
    """The driver's own words on one line: ``FATAL:  database "x" does not exist``."""
    original = getattr(error, "orig", None) or error
    args: tuple[Any, ...] = getattr(original, "args", ())
    text = args[1] if len(args) > 1 and isinstance(args[0], int) else str(original)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    return re.sub(r"\s+", " ", reason.rpartition(" failed: ")[2] or reason)


def _message(db_uri: str, error: sa.exc.SQLAlchemyError, transient: bool,
             limit: float) -> str:
    where = sa.engine.make_url(db_uri).render_as_string(hide_password=True)
    if transient:
        return (f"cannot connect to the tracking database {where}: {_reason(error)} "
                f"(retried for {limit:g} s, {CONNECT_TIMEOUT_VARIABLE}); start the database "
                "server or fix the host and port in the tracking URI")
    return (f"cannot open the tracking database {where}: {_reason(error)}; fix the user, "
            "password or database name in the tracking URI (or create the database)")


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)
