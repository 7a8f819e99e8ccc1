"""The ``prov`` tracking and model-registry stores: MLflow's SQL stores plus a journal.

How an event lands in the same transaction as the write it describes:

1. Each hooked write method (see :mod:`mlflow_prov.events`) opens a *write scope* on a
   thread-local stack before calling MLflow's own implementation.
2. Every session MLflow opens while a scope is innermost is bound to that scope.
3. At ``before_commit`` of a bound session that executed DML, the scope's describer builds
   the event and :func:`mlflow_prov.journal.append_event` inserts it through that session,
   so it commits, or rolls back, with MLflow's rows. A rollback re-arms the scope, so
   MLflow's own retry paths (integrity-error recovery, deadlock retries) journal the attempt
   that finally commits, once.

The classes subclass MLflow's ``SqlAlchemyStore`` classes so MLflow's ``isinstance`` gates
(server-info ``store_type: SqlStore``, the UI's features) keep working; the journaling is a
mixin that can also sit on MLflow's workspace-aware stores.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.exceptions import MlflowException
from mlflow.store.model_registry.sqlalchemy_store import (
    SqlAlchemyStore as SqlAlchemyRegistryStore,
)
from mlflow.store.tracking.dbmodels.models import SqlLoggedModel, SqlRun
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from mlflow_prov import openlineage_emitter
from mlflow_prov.artifact_records import RecordsArtifacts
from mlflow_prov.bulk_metrics import INSERTED_ROWS, BulkMetrics
from mlflow_prov.code_capture import prepare as prepare_code_capture
from mlflow_prov.compat import managed_session_maker, routing_session_maker
from mlflow_prov.events import (
    REGISTRY_HOOKS,
    TRACKING_HOOKS,
    Described,
    Hook,
    RemembersCutValues,
    WriteContext,
    overwritten_values,
)
from mlflow_prov.events_genai import (
    FLUSH_NOTES,
    GENAI_REGISTRY_HOOKS,
    GENAI_TRACKING_HOOKS,
    note_bulk_write,
    note_flush,
)
from mlflow_prov.events_generic import (
    absorbed_by_outer,
    generic_hook,
    mark_generic,
    unhooked_writes,
)
from mlflow_prov.identity import serving_request, writer_identity
from mlflow_prov.journal import (
    NewEvent,
    append_events,
    ensure_tables,
    heads_committed,
    heads_rolled_back,
    now_us,
)
from mlflow_prov.lineage_edges import ensure_tables as ensure_lineage_tables
from mlflow_prov.lineage_edges import record as record_lineage
from mlflow_prov.preflight import check_location
from mlflow_prov.seals import SealedError, journal_refusal
from mlflow_prov.series_summaries import catch_up
from mlflow_prov.series_summaries import install as install_series_summaries
from mlflow_prov.sql_dialects import is_mysql
from mlflow_prov.sqlite_stats import FreshStatistics
from mlflow_prov.uri import ProvLocation, parse_prov_uri
from mlflow_prov.vocabulary import CHAIN_OPENING_KINDS, EventKind, parse_chain

_logger = logging.getLogger(__name__)

_SCOPE = "mlflow_prov.scope"
_WROTE = "mlflow_prov.wrote"
_NEW = "mlflow_prov.new_objects"
_CHANGED = "mlflow_prov.changed_objects"
_DELETED = "mlflow_prov.deleted_objects"
_EMITTED = "mlflow_prov.emitted"
_EXPERIMENT_CACHE_SIZE = 4096


@dataclass
class WriteScope:
    """One hooked write in progress: what to describe, and whether its event is written."""

    store: Any
    hook: Hook
    arguments: dict[str, Any]
    emitted: bool = False
    emitting: bool = field(default=False, repr=False)


_local = threading.local()


def _scope_stack() -> list[WriteScope]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _current_scope() -> WriteScope | None:
    stack = _scope_stack()
    return stack[-1] if stack else None


# --- session listeners ---------------------------------------------------------------------

def _after_flush(session: Session, flush_context: Any) -> None:
    """Note what the flush wrote, while the objects still hold their history: the rows it
    inserted, deleted and changed, with the values a change overwrote (what MLflow loaded
    before writing, so an event knows a tag's or a status's earlier value without a query
    of its own). For each column, the first flush that changes it keeps its old value. A flush of
    objects that were touched but not changed (an update to the status a run already has)
    writes nothing, and so journals nothing."""
    info = session.info
    info.setdefault(_NEW, []).extend(session.new)
    info.setdefault(_DELETED, []).extend(session.deleted)
    changed: dict[Any, dict[str, Any]] = info.setdefault(_CHANGED, {})
    modified = [obj for obj in session.dirty if session.is_modified(obj)]
    for obj in modified:
        old = changed.setdefault(obj, {})
        for column, value in overwritten_values(obj).items():
            old.setdefault(column, value)
    if session.new or session.deleted or modified:  # a flush of unchanged rows writes nothing
        info[_WROTE] = True
    if info.get(_SCOPE) is not None:
        note_flush(session)


def _on_execute(orm_execute_state: Any) -> None:
    if orm_execute_state.is_insert or orm_execute_state.is_update or orm_execute_state.is_delete:
        orm_execute_state.session.info[_WROTE] = True
        if orm_execute_state.session.info.get(_SCOPE) is not None:
            note_bulk_write(orm_execute_state)


def _before_commit(session: Session) -> None:
    scope: WriteScope | None = session.info.get(_SCOPE)
    if scope is None or scope.emitted or scope.emitting:
        return
    session.flush()
    if not session.info.get(_WROTE) and not session.info.get(INSERTED_ROWS):
        return
    scope.emitting = True
    try:
        context = WriteContext(scope.store, session, session.info.get(_NEW, []),
                               session.info.get(_CHANGED, {}), session.info.get(_DELETED, []),
                               session.info.get(INSERTED_ROWS))
        described = scope.hook.describe(context, **scope.arguments)
        events = described if isinstance(described, list) else [described]
        writer, time_us = writer_identity(), now_us()
        for chain, same_chain in _by_chain([event for event in events if event]):
            append_events(session, chain, [NewEvent(event.kind, event.experiment_id,
                                                    event.run_id, event.payload)
                                           for event in same_chain],
                          writer=writer, time_us=time_us,
                          first=same_chain[0].kind in CHAIN_OPENING_KINDS)
            for event in same_chain:
                scope.store.journaled(session, event)
        scope.emitted = True
        session.info[_EMITTED] = scope
    finally:
        scope.emitting = False


def _by_chain(events: list[Described]) -> list[tuple[str, list[Described]]]:
    """Consecutive events of one chain together (a run's manifest and its end): appended in
    one write of the journal."""
    groups: list[tuple[str, list[Described]]] = []
    for event in events:
        if groups and groups[-1][0] == event.chain:
            groups[-1][1].append(event)
        else:
            groups.append((event.chain, [event]))
    return groups


def _after_commit(session: Session) -> None:
    heads_committed(session)
    _reset_transaction_state(session)
    openlineage_emitter.committed(session)


def _after_rollback(session: Session) -> None:
    emitted: WriteScope | None = session.info.get(_EMITTED)
    if emitted is not None:
        emitted.emitted = False
    heads_rolled_back(session)
    _reset_transaction_state(session)
    openlineage_emitter.rolled_back(session)


def _reset_transaction_state(session: Session) -> None:
    for key in (_WROTE, _NEW, _CHANGED, _DELETED, _EMITTED, INSERTED_ROWS, *FLUSH_NOTES):
        session.info.pop(key, None)


def _journaling_session_maker(engine: sa.engine.Engine) -> sa.orm.sessionmaker:
    """Sessions whose commits append their event. On MySQL they read committed data: under
    InnoDB's default REPEATABLE READ, inserting a missing head row after a missed
    compare-and-swap takes gap locks that make concurrent first writers to new chains
    deadlock; READ COMMITTED (PostgreSQL's default) takes none."""
    if is_mysql(engine.dialect.name):
        engine = engine.execution_options(isolation_level="READ COMMITTED")
    maker = sa.orm.sessionmaker(bind=engine)
    sa_event.listen(maker, "after_flush", _after_flush)
    sa_event.listen(maker, "do_orm_execute", _on_execute)
    sa_event.listen(maker, "before_commit", _before_commit)
    sa_event.listen(maker, "after_commit", _after_commit)
    sa_event.listen(maker, "after_rollback", _after_rollback)
    return maker


def _bind_to_scope(managed: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap MLflow's managed-session factory so each new session joins the current scope."""

    @contextmanager
    def managed_session(read_only: bool = True) -> Iterator[Session]:
        with managed(read_only=read_only) as session:
            session.info[_SCOPE] = _current_scope()
            yield session

    return managed_session


def _hooked(name: str, hook: Hook, mixin: type, base: type) -> Callable[..., Any]:
    """A method that runs MLflow's ``name`` inside a write scope described by ``hook``.
    It carries MLflow's signature and docstring (``help()``, ``inspect``), as ``__wrapped__``.
    The call's arguments are bound once against that signature (:meth:`Hook.bind`)."""
    signature = inspect.signature(getattr(base, name))

    def method(self, *args: Any, **kwargs: Any) -> Any:
        if absorbed_by_outer(_current_scope(), self):  # see events_generic.OuterHook
            return getattr(super(mixin, self), name)(*args, **kwargs)
        arguments = hook.bind(signature, self, args, kwargs)
        if arguments is None:  # a call MLflow refuses: let it answer, with nothing to journal
            return getattr(super(mixin, self), name)(*args, **kwargs)
        stack = _scope_stack()
        stack.append(WriteScope(self, hook, arguments))
        try:
            return getattr(super(mixin, self), name)(*args, **kwargs)
        except SealedError as refused:
            if len(stack) == 1:  # the outermost hooked call: every session of it is closed
                journal_refusal(self.engine, refused, name)
            raise
        finally:
            stack.pop()

    functools.update_wrapper(method, getattr(base, name))
    method.__qualname__ = f"{mixin.__name__}.{name}"
    return method


def _install_hooks(mixin: type, hooks: dict[str, Hook], base: type) -> None:
    for name, hook in hooks.items():
        setattr(mixin, name, _hooked(name, hook, mixin, base))


def _install_generic_hooks(cls: type) -> None:
    """Journal every MLflow write method of ``cls`` that has no specific hook, with the
    generic describer (:mod:`mlflow_prov.events_generic`)."""
    kind = getattr(cls, "_journal_kind", "tracking")
    for name in unhooked_writes(cls):
        setattr(cls, name, mark_generic(_hooked(name, generic_hook(name, kind), cls, cls)))


# --- the mixins ------------------------------------------------------------------------------

class _JournalingMixin:
    """Shared set-up: journal tables, sqlite WAL, and journaling sessions."""

    engine: sa.engine.Engine
    db_type: str
    _journal_kind = "tracking"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install_generic_hooks(cls)

    def _setup_journal(self) -> None:
        if self.db_type == "sqlite":
            self._configure_sqlite()
        ensure_tables(self.engine)
        ensure_lineage_tables(self.engine)
        writes = _journaling_session_maker(self.engine)
        read_engine = getattr(self, "read_engine", None)
        if read_engine is None:
            managed = managed_session_maker(writes, self.db_type)
        else:
            reads = sa.orm.sessionmaker(bind=read_engine)
            managed = routing_session_maker(writes, reads, self.db_type)
        self.ManagedSessionMaker = _bind_to_scope(managed)
        self._experiment_ids: dict[str, str] = {}

    def _configure_sqlite(self) -> None:
        """Switch the database to WAL, once (the mode is stored in the file).

        WAL lets readers (the UI, exporters) run beside writers and several processes log
        at once without "database is locked". Durability stays MLflow's: ``synchronous`` is
        left at sqlite's default (FULL), so a committed write survives a power cut too.
        """
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")

    def journaled(self, session: Session, event: Described) -> None:
        """Called in the write's transaction after ``event`` was appended: what else must
        commit with it (the lineage rows it makes, :mod:`mlflow_prov.lineage_edges`)."""
        record_lineage(session.connection(), event.kind, event.run_id, event.experiment_id,
                       event.payload, lambda run_id: self.experiment_of_run(session, run_id))

    def experiment_of_run(self, session: Session, run_id: str | None) -> str | None:
        """A run's experiment id: from the run row MLflow loaded in this session (every run
        write loads it first), else cached, else read once (runs never move between
        experiments)."""
        if not run_id:
            return None
        loaded = session.identity_map.get(identity_key(SqlRun, run_id))
        if loaded is not None:
            return str(loaded.experiment_id)
        cached = self._experiment_ids.get(run_id)
        if cached is None:
            found = session.execute(sa.select(SqlRun.experiment_id)
                                    .where(SqlRun.run_uuid == run_id)).scalar()
            if found is None:
                return None
            cached = str(found)
            if len(self._experiment_ids) >= _EXPERIMENT_CACHE_SIZE:
                self._experiment_ids.clear()
            self._experiment_ids[run_id] = cached
        return cached

    def experiment_of_logged_model(self, session: Session, model_id: str) -> str | None:
        loaded = session.identity_map.get(identity_key(SqlLoggedModel, model_id))
        if loaded is not None:
            return str(loaded.experiment_id)
        found = session.execute(sa.select(SqlLoggedModel.experiment_id)
                                .where(SqlLoggedModel.model_id == model_id)).scalar()
        return None if found is None else str(found)


class _PreparesCodeCapture:
    """Read the checkout and the distributions a run's ``code`` section records before
    MLflow's ``create_run`` opens its transaction (:func:`mlflow_prov.code_capture.prepare`):
    never ``git`` while MLflow holds the database's locks. Behind ``mlflow server`` the
    section is not recorded, so nothing is read there."""

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        if not serving_request():
            prepare_code_capture()
        return super().create_run(experiment_id, user_id, start_time, tags, run_name)


class _ConcurrentDatasetInputs:
    """Make ``log_inputs`` safe when several processes log one dataset at once.

    MLflow looks for the experiment's existing dataset row, then inserts one if none was
    found. Two processes logging the same dataset into one experiment at the same moment
    (the ranks of a DDP job) both find none, and the second insert fails on the unique
    constraint: that rank's whole ``log_inputs`` is lost, on plain MLflow too. Retrying
    finds the row the other process committed and links the run to it.
    """

    _DATASET_RACE_RETRIES = 3

    def log_inputs(self, run_id, datasets=None, models=None):
        for attempt in range(self._DATASET_RACE_RETRIES):
            try:
                return super().log_inputs(run_id, datasets, models)
            except MlflowException as error:
                last = attempt == self._DATASET_RACE_RETRIES - 1
                if last or not _caused_by(error, sa.exc.IntegrityError):
                    raise
                _logger.debug("log_inputs lost a dataset insert race; retrying: %s", error)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    cause = error.__cause__ or error.__context__
    while cause is not None:
        if isinstance(cause, kind):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class ProvTrackingMixin(_JournalingMixin, _PreparesCodeCapture, BulkMetrics,
                        _ConcurrentDatasetInputs,
                        FreshStatistics, RemembersCutValues, RecordsArtifacts):
    """Journals every tracking write listed in :data:`mlflow_prov.events.TRACKING_HOOKS`.

    ``artifact_uri`` is what MLflow passes (``None`` client side; ``mlflow server``'s
    ``--default-artifact-root``); an ``?artifact_root=`` in the URI wins over both.
    """

    def __init__(self, store_uri: str, artifact_uri: str | None = None, **kwargs: Any) -> None:
        location, root = _resolve(store_uri, artifact_uri)
        self.prov_uri = store_uri
        super().__init__(location.db_uri, root, **kwargs)  # type: ignore[call-arg]  # MLflow's
        self._setup_journal()
        self._init_statistics()
        install_series_summaries(self.engine)
        self._keeps_series_summaries = self.engine.dialect.name == "sqlite"
        self._openlineage = openlineage_emitter.emitter_for(self)

    def journaled(self, session: Session, event: Described) -> None:
        """A metrics event brings the run's series summaries up to date, in one statement
        (:func:`mlflow_prov.series_summaries.catch_up`): no trigger runs per metric row."""
        super().journaled(session, event)
        if (self._keeps_series_summaries and event.kind == EventKind.RUN_METRICS_LOGGED
                and event.run_id is not None):
            catch_up(session.connection(), event.run_id)
        if event.kind == EventKind.RUN_CREATED and event.run_id is not None:
            self.remember_artifact_uri(event.run_id, str(event.experiment_id),
                                       (event.payload.get("run") or {}).get("artifact_uri"))
        elif event.kind in (EventKind.RUN_PURGED, EventKind.LOGGED_MODEL_PURGED):
            self.forget_artifact_owner(parse_chain(event.chain)[1])
        if self._openlineage is not None:
            self._openlineage.note(session, event)


class ProvRegistryMixin(_JournalingMixin):
    """Journals every registry write listed in :data:`mlflow_prov.events.REGISTRY_HOOKS`."""

    _journal_kind = "registry"

    def __init__(self, store_uri: str, **kwargs: Any) -> None:
        location, _ = _resolve(store_uri, None)
        self.prov_uri = store_uri
        super().__init__(location.db_uri, **kwargs)  # type: ignore[call-arg]  # MLflow's
        self._setup_journal()


_install_hooks(ProvTrackingMixin, TRACKING_HOOKS, SqlAlchemyStore)
_install_hooks(ProvRegistryMixin, REGISTRY_HOOKS, SqlAlchemyRegistryStore)
_install_hooks(ProvTrackingMixin, GENAI_TRACKING_HOOKS, SqlAlchemyStore)
_install_hooks(ProvRegistryMixin, GENAI_REGISTRY_HOOKS, SqlAlchemyRegistryStore)


def _resolve(store_uri: str, artifact_uri: str | None) -> tuple[ProvLocation, str]:
    location = parse_prov_uri(store_uri)
    root = location.default_artifact_root
    if artifact_uri and not location.artifact_root_in_uri:
        root = artifact_uri
    check_location(location)  # one line, not a raw OSError or ~100 s of MLflow's retries
    return location, root


class ProvTrackingStore(ProvTrackingMixin, SqlAlchemyStore):
    """MLflow's SQL tracking store that also journals provenance."""


class ProvRegistryStore(ProvRegistryMixin, SqlAlchemyRegistryStore):
    """MLflow's SQL model-registry store that also journals provenance."""


@functools.cache
def _workspace_classes() -> tuple[type, type]:
    from mlflow.store.model_registry.sqlalchemy_workspace_store import (
        WorkspaceAwareSqlAlchemyStore as WorkspaceRegistryStore,
    )
    from mlflow.store.tracking.sqlalchemy_workspace_store import (
        WorkspaceAwareSqlAlchemyStore as WorkspaceTrackingStore,
    )

    tracking = type("WorkspaceProvTrackingStore", (ProvTrackingMixin, WorkspaceTrackingStore), {})
    registry = type("WorkspaceProvRegistryStore", (ProvRegistryMixin, WorkspaceRegistryStore), {})
    return tracking, registry


def tracking_store_class() -> type:
    """The tracking store class for this process: workspace-aware when MLflow's switch is on."""
    return _workspace_classes()[0] if MLFLOW_ENABLE_WORKSPACES.get() else ProvTrackingStore


def registry_store_class() -> type:
    return _workspace_classes()[1] if MLFLOW_ENABLE_WORKSPACES.get() else ProvRegistryStore
