"""Translate ``prov`` tracking URIs into an MLflow database URI and a default artifact root.

Accepted forms (the scheme names are what MLflow's entry points register):

* ``prov:///abs/dir`` and ``prov:relative/dir`` -- the embedded default: ``dir/mlflow.db``
  (sqlite) and ``dir/artifacts/``, created on first use.
* ``prov+sqlite:///path/file.db`` -- sqlite at that file; artifacts beside it in ``artifacts/``.
* ``prov+sqlite:///:memory:`` -- a store in this process's memory (``mlflow_prov.memory_store``),
  gone when the process exits; artifacts default to ``./mlartifacts``. ``:memory:`` in the
  other forms is refused with this spelling: it must never become a file or folder named
  ``:memory:`` (at ``/`` for three slashes) that later stores would reuse.
* ``prov+postgresql://user@host:port/db`` and ``prov+mysql://user@host:port/db`` -- the
  matching MLflow SQL backend; artifacts default to ``./mlartifacts`` (as ``mlflow server``).

Every form takes ``?artifact_root=URI`` to choose another artifact root (any URI MLflow's
artifact repositories accept, e.g. ``s3://bucket/path`` or ``/shared/artifacts``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_prov.memory_store import MEMORY_DB_URI, MEMORY_PATH, MEMORY_URI

EMBEDDED_DB_NAME = "mlflow.db"
EMBEDDED_ARTIFACTS_DIR = "artifacts"
SERVER_DEFAULT_ARTIFACT_ROOT = "mlartifacts"
ARTIFACT_ROOT_PARAM = "artifact_root"

ACCEPTED_FORMS = (
    "prov:///absolute/dir",
    "prov:relative/dir",
    "prov+sqlite:///path/to/file.db",
    "prov+sqlite:///:memory:",
    "prov+postgresql://user[:password]@host[:port]/database",
    "prov+mysql://user[:password]@host[:port]/database",
    "(any of them with ?artifact_root=URI)",
)
_BACKENDS = ("sqlite", "postgresql", "mysql")


@dataclass(frozen=True)
class ProvLocation:
    """Where a prov store keeps its data: the MLflow database URI and the artifact root."""

    db_uri: str
    default_artifact_root: str
    embedded_dir: Path | None = None
    artifact_root_in_uri: bool = False
    in_memory: bool = False


def is_prov_uri(uri: str | None) -> bool:
    """True for every URI this package's store answers (``prov``, ``prov+<backend>``)."""
    if not uri:
        return False
    return urlsplit(uri).scheme.lower().partition("+")[0] == "prov"


def database_uri(uri: str) -> str | None:
    """The database behind a prov URI, for MLflow's features that open it themselves in other
    processes (job execution); ``None`` for any other URI, a malformed one, or a store in this
    process's memory, which no other process can open."""
    if not is_prov_uri(uri):
        return None
    try:
        location = parse_prov_uri(uri)
    except MlflowException:
        return None
    return None if location.in_memory else location.db_uri


def parse_prov_uri(uri: str) -> ProvLocation:
    """Resolve a prov URI; raise ``MlflowException`` naming the accepted forms when malformed."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    artifact_root = query.pop(ARTIFACT_ROOT_PARAM, None) or None
    if scheme == "prov":
        return _embedded_location(parts, query, artifact_root, uri)
    return _wrapped_location(parts, scheme, query, artifact_root, uri)


def _wrapped_location(parts, scheme: str, query: dict, artifact_root: str | None,
                      uri: str) -> ProvLocation:
    prefix, _, rest = scheme.partition("+")
    backend, _, driver = rest.partition("+")
    if prefix != "prov" or backend not in _BACKENDS:
        raise _malformed(uri, f"unknown scheme {parts.scheme!r}")
    if backend == "sqlite":
        return _sqlite_location(parts, query, artifact_root, uri)
    if not parts.netloc or not parts.path.strip("/"):
        raise _malformed(uri, f"a {backend} URI needs a host and a database name")
    db_scheme = f"{backend}+{driver}" if driver else backend
    db_uri = urlunsplit((db_scheme, parts.netloc, parts.path, urlencode(query), ""))
    return ProvLocation(db_uri, artifact_root or _server_artifact_root(),
                        artifact_root_in_uri=artifact_root is not None)


def _embedded_location(parts, query, artifact_root: str | None, uri: str) -> ProvLocation:
    if parts.netloc:
        raise _malformed(uri, f"'{parts.netloc}' reads as a host; use prov:///{parts.netloc}"
                              f"{parts.path} for an absolute path")
    if query:
        raise _malformed(uri, f"unknown query parameter(s) {sorted(query)}")
    if not parts.path:
        raise _malformed(uri, "no directory given")
    if _names_memory(parts.path):
        raise _malformed(uri, f"{MEMORY_PATH} is not a folder; for a store in memory use "
                              f"{MEMORY_URI}")
    directory = _local_path(parts.path)
    db_path = directory / EMBEDDED_DB_NAME
    root = artifact_root or (directory / EMBEDDED_ARTIFACTS_DIR).as_uri()
    return ProvLocation(f"sqlite:///{db_path}", root, embedded_dir=directory,
                        artifact_root_in_uri=artifact_root is not None)


def _sqlite_location(parts, query, artifact_root: str | None, uri: str) -> ProvLocation:
    if query:
        raise _malformed(uri, f"unknown query parameter(s) {sorted(query)}")
    if _names_memory(parts.netloc):
        raise _malformed(uri, f"{MEMORY_PATH} reads as a host; use {MEMORY_URI} (three slashes)")
    if _names_memory(parts.path):
        return ProvLocation(MEMORY_DB_URI, artifact_root or _server_artifact_root(),
                            artifact_root_in_uri=artifact_root is not None, in_memory=True)
    if parts.netloc or not parts.path or parts.path == "/":
        raise _malformed(uri, "prov+sqlite needs a file path: prov+sqlite:///path/to/file.db")
    db_path = _local_path(parts.path)
    root = artifact_root or (db_path.parent / EMBEDDED_ARTIFACTS_DIR).as_uri()
    return ProvLocation(f"sqlite:///{db_path}", root, embedded_dir=db_path.parent,
                        artifact_root_in_uri=artifact_root is not None)


def _names_memory(path: str) -> bool:
    """``:memory:`` with any number of leading slashes (``/:memory:`` is not a path we
    would ever create)."""
    return path.lstrip("/") == MEMORY_PATH


def _local_path(path: str) -> Path:
    """An absolute, resolved path; ``prov:////abs`` (an f-string's extra slash) means ``/abs``,
    not POSIX's implementation-defined ``//abs``."""
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return Path(os.path.expanduser(path)).resolve()


def _server_artifact_root() -> str:
    return (Path.cwd() / SERVER_DEFAULT_ARTIFACT_ROOT).as_uri()


def _malformed(uri: str, reason: str) -> MlflowException:
    forms = "\n  ".join(ACCEPTED_FORMS)
    return MlflowException(
        f"Malformed mlflow-prov tracking URI {uri!r}: {reason}.\nAccepted forms:\n  {forms}",
        error_code=INVALID_PARAMETER_VALUE,
    )
