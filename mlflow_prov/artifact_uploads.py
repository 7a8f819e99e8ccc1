"""Artifact uploads through ``mlflow server``'s artifact proxy, journaled one event each.

Why here: with ``--serve-artifacts`` (MLflow's default) a client uploads each artifact file
with ``PUT /api/2.0/mlflow-artifacts/artifacts/<path>``, and the run's artifact root is an
``mlflow-artifacts:`` URI the tracking store cannot read. The ``prov`` server app hashes
the request body as MLflow's handler streams it (one SHA-256 pass, no second read of the
stored file) and, once MLflow's handler has stored the file and answers 200, appends one
``run.artifact_uploaded`` (``logged_model.artifact_uploaded``) event in a transaction of its
own, before the answer leaves: one journal statement per upload (:func:`record_upload`
says when). Uploads after the run ended
are recorded the same way. Under uvicorn (``mlflow server``'s default) MLflow serves uploads
from a FastAPI route of its own, which :class:`UploadRecordingMiddleware` wraps; under
gunicorn or waitress the Flask handler serves them, which :func:`attach_upload_recording`
hooks.

MLflow lays out the files under the artifacts destination as the artifact URIs it hands
out: ``<experiment path>/<run_id>/artifacts/<file>`` for a run and
``<experiment path>/models/<model_id>/artifacts/<file>`` for a LoggedModel
(``SqlAlchemyStore.create_run`` and ``create_logged_model`` build them with
``append_to_uri_path``). A path is attributed to a run or model only when that object's
artifact URI ends with the same folders.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from mlflow_prov.artifact_records import artifact_owners
from mlflow_prov.identity import process_identity, writer_identity
from mlflow_prov.journal import (
    NewEvent,
    append_events,
    append_if_head_known,
    heads_committed,
    heads_rolled_back,
    now_us,
)
from mlflow_prov.lineage_edges import record as record_lineage
from mlflow_prov.uri import is_prov_uri, parse_prov_uri
from mlflow_prov.vocabulary import (
    ArtifactUploadedPayload,
    EventKind,
    logged_model_chain,
    run_chain,
)

_logger = logging.getLogger(__name__)

UPLOAD_ROUTE = "/mlflow-artifacts/artifacts/"
_MODEL_PATH = re.compile(r"^(?P<prefix>(?:.+/)?)models/(?P<id>m-[0-9a-f]{32})/artifacts/"
                         r"(?P<path>.+)$")
_RUN_PATH = re.compile(r"^(?P<prefix>(?:.+/)?)(?P<id>[0-9a-f]{32})/artifacts/(?P<path>.+)$")
_STREAM_KEY = "mlflow_prov.upload_stream"


class HashingStream(io.RawIOBase):
    """The request body as MLflow's handler reads it, hashed and counted on the way."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw
        self._digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        reader = getattr(self._raw, "readinto", None)
        if reader is not None:
            count = reader(view) or 0
        else:
            data = self._raw.read(len(view))
            count = len(data)
            view[:count] = data
        self._seen(view[:count])
        return count

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self._seen(data)
        return bytes(data)

    def _seen(self, data: Any) -> None:
        if data:
            self._digest.update(data)
            self.size += len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class UploadTarget:
    """Whose file an upload path is: a run's or a LoggedModel's, and its path below the
    object's artifact root."""

    kind: str  # "run" or "model"
    object_id: str
    folders: str  # the upload path's folders down to the object's artifact root
    path: str


def upload_target(artifact_path: str) -> UploadTarget | None:
    """The run or LoggedModel an upload path belongs to by MLflow's layout, or ``None``."""
    for kind, pattern in (("model", _MODEL_PATH), ("run", _RUN_PATH)):
        found = pattern.match(artifact_path)
        if found:
            folders = artifact_path[:found.start("path")].rstrip("/")
            return UploadTarget(kind, found["id"], folders, found["path"])
    return None


@functools.cache
def upload_engine(db_uri: str) -> sa.engine.Engine:
    """A write engine per database. On sqlite its transactions begin IMMEDIATE: the chain's
    head is read, then the event inserted, and only a transaction that holds the write lock
    from the start keeps a concurrent writer from forking the chain between the two
    (SQLAlchemy's documented recipe for pysqlite's transaction control)."""
    engine = sa.create_engine(db_uri, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        sa_event.listen(engine, "connect", _driver_transactions_off)
        sa_event.listen(engine, "begin", _begin_immediate)
    return engine


def _driver_transactions_off(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _owner(session: Session, target: UploadTarget) -> tuple[str, str | None] | None:
    """(experiment id, artifact URI) of the upload's run or model, if it exists."""
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModel, SqlRun

    if target.kind == "run":
        query: Any = sa.select(SqlRun.experiment_id, SqlRun.artifact_uri).where(
            SqlRun.run_uuid == target.object_id)
    else:
        query = sa.select(SqlLoggedModel.experiment_id, SqlLoggedModel.artifact_location).where(
            SqlLoggedModel.model_id == target.object_id)
    row: Any = session.execute(query).first()
    return (str(row[0]), row[1]) if row is not None else None


def _holds(owner: tuple[str, str | None], target: UploadTarget) -> bool:
    """Whether the upload path lies under the owner's artifact root."""
    return str(owner[1] or "").rstrip("/").endswith(target.folders)


def _uploaded(target: UploadTarget, experiment_id: str, size: int,
              sha256: str) -> tuple[str, NewEvent]:
    """The upload's chain and event."""
    payload: ArtifactUploadedPayload = {"path": target.path, "size": size, "sha256": sha256}
    if target.kind == "run":
        return run_chain(target.object_id), NewEvent(
            EventKind.RUN_ARTIFACT_UPLOADED, experiment_id, target.object_id, dict(payload))
    return logged_model_chain(target.object_id), NewEvent(
        EventKind.LOGGED_MODEL_ARTIFACT_UPLOADED, experiment_id, None, dict(payload))


def record_upload(tracking_uri: str, artifact_path: str, size: int, sha256: str,
                  writer: dict[str, Any] | None = None) -> bool:
    """Journal one uploaded file of a run or LoggedModel; ``False`` when the path belongs to
    neither (a file outside MLflow's layout). ``writer``: who uploaded it, when this thread
    is not the one serving the request (:func:`mlflow_prov.identity.writer_identity`).

    One journal statement on PostgreSQL (two on sqlite) when this process knows the object
    and its chain's head (it created the run, or journaled an upload or a write to it
    since): the head's compare-and-swap with the insert, no read. A head that moved (another
    process wrote, or purged the object) makes the swap miss; then the object is looked up
    and the head read under lock, as a first upload does. A run's file also becomes a
    lineage node its run generated, in the same transaction (one more statement on
    PostgreSQL, up to two on sqlite: :func:`mlflow_prov.lineage_edges.record`)."""
    target = upload_target(artifact_path)
    if target is None:
        return False
    engine = upload_engine(parse_prov_uri(tracking_uri).db_uri)
    known = artifact_owners.get(engine.url, target.object_id)
    who, when = writer or writer_identity(), now_us()
    with Session(engine) as session:
        try:
            with session.begin():
                event = None
                if known is not None and _holds(known, target):  # the one-statement path
                    event = _append_known(session, target, known[0], size, sha256, who, when)
                if event is None:
                    event = _record_looked_up(session, engine, target, size, sha256, who,
                                              when)
                if event is not None:
                    record_lineage(session.connection(), event.kind, event.run_id,
                                   event.experiment_id, event.payload, lambda _: None)
        except BaseException:
            heads_rolled_back(session)
            raise
        heads_committed(session)
    return event is not None


def _append_known(session: Session, target: UploadTarget, experiment_id: str, size: int,
                  sha256: str, writer: dict[str, Any], when: int) -> NewEvent | None:
    chain, event = _uploaded(target, experiment_id, size, sha256)
    if append_if_head_known(session, chain, [event], writer=writer, time_us=when):
        return event
    return None


def _record_looked_up(session: Session, engine: sa.engine.Engine, target: UploadTarget,
                      size: int, sha256: str, writer: dict[str, Any],
                      when: int) -> NewEvent | None:
    """The upload's object read from its row, then the event appended (head read under lock
    when the swap misses); the object is remembered for the next upload."""
    owner = _owner(session, target)
    if owner is None or not _holds(owner, target):
        return None
    artifact_owners.remember(engine.url, target.object_id, owner[0], owner[1])
    chain, event = _uploaded(target, owner[0], size, sha256)
    append_events(session, chain, [event], writer=writer, time_us=when)
    return event


def attach_upload_recording(app: Any, tracking_uri: str) -> None:
    """Hash every artifact upload MLflow's Flask ``app`` serves (gunicorn, waitress) and
    journal it once MLflow stored it. Nothing MLflow answers changes; a store that is not a
    prov store is left as it is."""
    if not is_prov_uri(tracking_uri):
        return
    from flask import g, request

    @app.before_request
    def _hash_upload() -> None:
        if request.method == "PUT" and UPLOAD_ROUTE in request.path:
            stream = HashingStream(request.environ["wsgi.input"])
            request.environ["wsgi.input"] = stream
            setattr(g, _STREAM_KEY, stream)

    @app.after_request
    def _journal_upload(response: Any) -> Any:
        stream = g.pop(_STREAM_KEY, None)
        artifact_path = (request.view_args or {}).get("artifact_path")
        if stream is not None and response.status_code == 200 and artifact_path:
            _record_logged(tracking_uri, artifact_path, stream)
        return response


class UploadRecordingMiddleware:
    """ASGI middleware: hash each upload's body chunks as MLflow's route receives them, and
    journal the upload when the route answers 200, before the answer is sent."""

    def __init__(self, app: Any, tracking_uri: str) -> None:
        self.app = app
        self.tracking_uri = tracking_uri

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http" or scope.get("method") != "PUT" or \
                UPLOAD_ROUTE not in path:
            await self.app(scope, receive, send)
            return
        stream = HashingStream(io.BytesIO())
        artifact_path = path.split(UPLOAD_ROUTE, 1)[1]
        writer = _asgi_client(scope)

        async def hashing_receive() -> dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request":
                stream._seen(message.get("body", b""))
            return message

        async def journaling_send(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start" and message.get("status") == 200:
                await asyncio.to_thread(_record_logged, self.tracking_uri, artifact_path,
                                        stream, writer)
            await send(message)

        await self.app(scope, hashing_receive, journaling_send)


def _asgi_client(scope: dict[str, Any]) -> dict[str, Any]:
    """The uploading client as a Flask request's writer is journaled (its address, via this
    server): the upload is journaled on a worker thread without Flask's request context."""
    client = scope.get("client") or (None,)
    server = process_identity()
    return {"client_address": client[0], "via": {"host": server["host"], "pid": server["pid"]}}


def _record_logged(tracking_uri: str, artifact_path: str, stream: HashingStream,
                   writer: dict[str, Any] | None = None) -> None:
    """Journal an upload MLflow stored; a failure is logged, never turned into an error
    answer (the file is stored: ``verify --artifacts`` then reports it as added)."""
    try:
        record_upload(tracking_uri, artifact_path, stream.size, stream.hexdigest(), writer)
    except (sa.exc.SQLAlchemyError, ValueError) as error:
        _logger.error("artifact upload %s stored but not journaled: %s", artifact_path, error)


def record_asgi_uploads(served: Any, tracking_uri: str) -> Any:
    """The app ``mlflow server`` serves, with uploads to a prov store journaled when it is
    MLflow's FastAPI app (uvicorn); any other app is returned as it is."""
    if is_prov_uri(tracking_uri) and hasattr(served, "add_middleware"):
        served.add_middleware(UploadRecordingMiddleware, tracking_uri=tracking_uri)
    return served
