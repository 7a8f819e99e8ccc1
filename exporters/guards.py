"""What stands between a careless or hostile input and a broken export.

Why one module: the failures users met were each small and each at a boundary: a mistyped
scheme answered with MLflow's model-registry message, no URI at all quietly creating
``mlflow.db`` in the working folder, an unreachable ``http://`` server retried for minutes, a
read-only or full output folder ending in three tracebacks or in a partial export that
looked complete, and a secret under an innocent key that no pattern can know. Each guard
here turns one of them into a clear line or an option:

* :func:`resolve_tracking_uri` and :func:`check_scheme`: which URI is read, said plainly;
* :func:`request_limits`: a bounded time for servers (``--timeout``);
* :class:`StagedOutput`: an export is written beside its target and renamed into place;
* :func:`apply_user_privacy`: ``--redact KEY_OR_REGEX`` and ``--omit PART``.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from exporters.compat import tracking_store_schemes
from exporters.errors import ExportError, ExportInterrupted, ReaderError, WriterError
from exporters.privacy import redact, redact_text
from mlflow_prov.vocabulary import EventKind

if TYPE_CHECKING:  # annotations only: records import numpy, which `--help` need not load
    from exporters.records import ExperimentRecord, HistoryEvent, RunRecord

# --- which store is read ---------------------------------------------------------------------

# Database schemes MLflow also answers with a driver: ``postgresql+psycopg2``, ``mysql+pymysql``.
DRIVER_SCHEMES = ("postgresql", "mysql", "mssql", "sqlite")
DATABASE_SCHEMES = ("postgresql", "mysql")
NO_URI_HINT = "pass --tracking-uri (or set MLFLOW_TRACKING_URI)"


def known_schemes() -> list[str]:
    """Every tracking-URI scheme this installation answers, MLflow's and plugins'."""
    return tracking_store_schemes()


def check_scheme(uri: str) -> None:
    """A ``ReaderError`` naming an unknown scheme (``pro:///x``) and the known ones, before
    MLflow answers it with a misleading model-registry message."""
    scheme = urlsplit(uri).scheme.lower()
    if not scheme or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return
    known = known_schemes()
    base = scheme.partition("+")[0]
    if scheme in known or (base in DRIVER_SCHEMES and base in known):
        return
    raise ReaderError(f"unknown tracking-URI scheme {scheme!r} in {redact_text(uri)}; "
                      f"known schemes: {', '.join(known)}")


def resolve_tracking_uri(tracking_uri: str | None) -> tuple[str, bool]:
    """(the URI to read, whether it was MLflow's default rather than the user's choice).

    Without one, MLflow's default is a local ``mlflow.db`` (or ``./mlruns``) that MLflow
    would create on first use: an export must never do that, so a default that does not
    exist is an error naming it."""
    if tracking_uri:
        check_scheme(tracking_uri)
        return tracking_uri, False
    import mlflow

    uri = mlflow.get_tracking_uri()
    local = _local_store(uri)
    if local is not None and not local.exists():
        raise ReaderError(f"no tracking URI given and MLflow's default store {uri} does not "
                          f"exist in {Path.cwd()}; {NO_URI_HINT}")
    return uri, True


def _local_store(uri: str) -> Path | None:
    """The file or folder a local MLflow store URI names (``sqlite:///x.db``, ``./mlruns``)."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if parts.scheme in ("", "file"):
        return Path(parts.path)
    return None


def experiments_listing(client: Any, limit: int = 20) -> str:
    """``a (1), b (2)`` for the experiments in a store: what a user can pass instead."""
    try:
        found = client.search_experiments(max_results=limit + 1)
    except Exception:  # the listing only helps an error message; never replace the error
        return "(could not list them)"
    names = [f"{e.name} ({e.experiment_id})" for e in found[:limit]]
    more = ", ..." if len(found) > limit else ""
    return (", ".join(names) + more) if names else "(none)"


def explain_missing_experiment(error: ReaderError, client: Any, uri: str,
                               defaulted: bool) -> ReaderError:
    """The error of a missing experiment, saying which URI was searched (and that it was
    MLflow's default) and which experiments it holds. A store that failed to answer (the
    error has MLflow's own as its cause) is not asked again for a listing: the error as is."""
    if error.__cause__ is not None:
        return error
    where = f"MLflow's default {uri}" if defaulted else redact_text(uri)
    hint = f"; {NO_URI_HINT} for another store" if defaulted else ""
    return ReaderError(f"{error} in {where}; experiments there: "
                       f"{experiments_listing(client)}{hint}")


# --- bounded waits -----------------------------------------------------------------------------

DEFAULT_TIMEOUT = 30.0
_HTTP_LIMITS = {  # MLflow's own variables (mlflow/environment_variables.py)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": lambda timeout: "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": lambda timeout: "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": lambda timeout: str(max(1, round(timeout))),
    "MLFLOW_PROV_CONNECT_TIMEOUT": lambda timeout: str(timeout),
}


@contextmanager
def request_limits(uri: str, timeout: float | None) -> Iterator[None]:
    """For the export's duration, bound every wait on a server by ``timeout`` seconds: an
    ``http(s)://`` server is probed once (refused or silent -> one line at once), MLflow's
    HTTP requests get that timeout and two quick retries, and a database server's connection is
    retried for at most that long. A variable the user set wins. ``None``: MLflow's defaults."""
    if timeout is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in _HTTP_LIMITS}
    for name, value in _HTTP_LIMITS.items():
        if saved[name] is None:
            os.environ[name] = value(timeout)
    try:
        scheme = urlsplit(uri).scheme.lower()
        if scheme in ("http", "https"):
            probe_server(uri, timeout)
        elif scheme.partition("+")[0] in DATABASE_SCHEMES:  # MLflow would retry ~100 s
            # here, not at the top: preflight imports MLflow, seconds that `--help` must not pay
            from mlflow_prov.preflight import DatabaseUnavailableError, check_database

            try:
                check_database(uri)  # MLFLOW_PROV_CONNECT_TIMEOUT: set above or the user's
            except DatabaseUnavailableError as exc:
                raise ReaderError(exc.message) from None
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def probe_server(uri: str, timeout: float) -> None:
    """One request to the server's ``/health``; a ``ReaderError`` when it cannot be reached
    or does not answer within ``timeout`` seconds."""
    import requests

    where = redact_text(uri)
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except requests.Timeout:
        raise ReaderError(f"the tracking server {where} did not answer within {timeout:g} s "
                          "(--timeout); check that it is up, or allow more time") from None
    except requests.RequestException as exc:
        reason = _connection_reason(exc)
        raise ReaderError(f"cannot reach the tracking server {where} ({reason}); start "
                          "`mlflow server` there or fix --tracking-uri") from None


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host",
                  "Network is unreachable"):
        if known in text:
            return known.lower()
    return type(exc).__name__


# --- atomic output -----------------------------------------------------------------------------

STAGING_PREFIX = ".mlflow-prov-export-"
FULL_DISK_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


class StagedOutput:
    """An export written into a hidden folder beside its target, then renamed into place.

    A failed export (an exception, a full disk, an interrupt) removes the staging folder,
    so what is in ``out`` is always a complete earlier export or nothing. A target folder
    that does not exist yet is one rename; an existing one (exports of other runs into the
    same folder) has each new file renamed over its old one after everything was written.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.root = self._create()

    def _create(self) -> Path:
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise WriterError(f"the output folder {out} is a file; choose a folder for --out")
        try:
            out.mkdir(parents=True, exist_ok=True)
            root = out / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
            root.mkdir()
        except OSError as exc:
            raise WriterError(f"cannot write to the output folder {out}: "
                              f"{exc.strerror or exc}; choose a writable --out") from None
        return root

    def __enter__(self) -> StagedOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def publish(self, staged_dir: Path, files: Sequence[Path]) -> tuple[Path, tuple[Path, ...]]:
        """Move ``staged_dir`` (inside :attr:`root`) into the output folder; return its final
        path and the final paths of ``files``."""
        final = self.out_dir / staged_dir.relative_to(self.root)
        try:
            if not final.exists():
                staged_dir.rename(final)
            else:
                _merge(staged_dir, final)
        except OSError as exc:
            raise WriterError(f"cannot move the export into {final}: "
                              f"{exc.strerror or exc}; nothing was changed there") from None
        return final, tuple(final / Path(f).relative_to(staged_dir) for f in files)


INTERRUPTING = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`ExportInterrupted` inside the block, so the staging
    folder's ``with`` removes it (SIGTERM's default action would end the process at once and
    leave the folder behind). After the first signal both are ignored until the block ends,
    so the cleanup itself cannot be cut short; the previous handlers come back after it.
    A signal the process was started ignoring stays ignored. Outside the main thread (an
    export started by the server) Python cannot take signals and nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        for name in INTERRUPTING:
            signal.signal(name, signal.SIG_IGN)
        raise ExportInterrupted(signum)

    previous = {name: signal.getsignal(name) for name in INTERRUPTING
                if signal.getsignal(name) is not signal.SIG_IGN}  # nohup, `cmd &`: kept
    for name in previous:
        signal.signal(name, interrupt)
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


def _merge(source: Path, target: Path) -> None:
    """Rename every file of ``source`` over its counterpart in ``target`` (folders made)."""
    for folder, _, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in names:
            destination = target / relative / name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.replace(Path(folder) / name, destination)


def skip_reason(root: Path, file: Path) -> str | None:
    """Why a local artifact must not be read, or None: the file, or a folder between the
    artifact root and it, is a symbolic link (a link may point anywhere on the machine), or
    the file is a pipe, socket or device (reading one may never end)."""
    try:
        relative = file.relative_to(root)
    except ValueError:
        return "outside the run's artifact folder"
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            return "symbolic link, not followed"
    if current.exists() and not current.is_file() and not current.is_dir():
        return "not a regular file (a pipe, socket or device), not read"
    return None


def as_export_error(exc: OSError, out_dir: Path) -> ExportError:
    """An ``OSError`` while writing (disk full, permissions) as one line naming the folder."""
    return WriterError(f"cannot write the export to {out_dir}: {exc.strerror or exc}; "
                       "nothing was written there (free space or choose another --out)")


def full_disk_error(staging: Path, out_dir: Path) -> ExportError | None:
    """The one-line error for a library's own exception (netCDF4's ``RuntimeError: NetCDF:
    HDF error``) that hides a full disk, or None when the disk has room (a real bug then)."""
    try:
        free = os.statvfs(staging)
    except OSError:
        return None
    if free.f_bavail * free.f_frsize >= FULL_DISK_BYTES:
        return None
    return as_export_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), out_dir)


# --- what the user removes -----------------------------------------------------------------------

OMITTABLE = ("params", "tags", "metrics", "artifacts", "datasets", "environment")


def compile_redactions(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """``--redact`` values as patterns matched against whole keys: a plain key (``note``)
    matches itself only; anything else is a regular expression (``note|comment``,
    ``.*_url``). A ``ValueError`` names a pattern that does not compile."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"--redact {pattern!r} is not a key or a regular expression "
                             f"({exc}); quote it or escape special characters") from None
    return tuple(compiled)


def _omit_from_payload(payload: dict[str, Any], omit: frozenset[str]) -> dict[str, Any]:
    cleaned = dict(payload)
    for part, field_names in (("tags", ("tags", "old")), ("params", ("params",))):
        for name in field_names:
            if part in omit and isinstance(cleaned.get(name), dict):
                cleaned[name] = {}
    if "key" in cleaned and "tags" in omit:  # a single tag's event: set or deleted
        cleaned.pop("value", None)
        cleaned.pop("old_value", None)
    if "environment" in omit:
        cleaned.pop("environment", None)
        cleaned.pop("code", None)
    return cleaned


def _omit_from_history(history: Iterable[HistoryEvent],
                       omit: frozenset[str]) -> tuple[HistoryEvent, ...]:
    dropped = {EventKind.RUN_METRICS_LOGGED} if "metrics" in omit else set()
    return tuple(replace(event, payload=_omit_from_payload(event.payload, omit))
                 for event in history if event.kind not in dropped)


def apply_user_privacy(record: RunRecord, patterns: Sequence[re.Pattern[str]],
                       omit: frozenset[str]) -> RunRecord:
    """The run without the parts ``--omit`` names and with ``--redact`` keys' values replaced
    by :func:`exporters.privacy.redact`, in its params, tags, logged models and history alike
    (a value hidden in one place must not show in another)."""
    if not patterns and not omit:
        return record
    return redact(replace(
        record,
        params={} if "params" in omit else record.params,
        tags={} if "tags" in omit else record.tags,
        metric_keys=() if "metrics" in omit else record.metric_keys,
        metrics=() if "metrics" in omit else record.metrics,
        artifacts=() if "artifacts" in omit else record.artifacts,
        datasets=() if "datasets" in omit else record.datasets,
        history=_omit_from_history(record.history, omit)), patterns)


def apply_user_privacy_experiment(record: ExperimentRecord,
                                  patterns: Sequence[re.Pattern[str]],
                                  omit: frozenset[str]) -> ExperimentRecord:
    """The experiment's tags and history under the same ``--redact``/``--omit`` rules."""
    if not patterns and not omit:
        return record
    return redact(replace(record, tags={} if "tags" in omit else record.tags,
                          history=_omit_from_history(record.history, omit)), patterns)
