"""Sealed runs, experiments and model versions: writes to them are refused by the store.

Why: a promoted model or a published run must not change afterwards, yet MLflow lets any
writer edit it. A seal is journaled (``*.sealed`` with who, when and why, on the object's own
chain) and kept in the chain's head row (``prov_journal_heads.sealed``), which every journaled
write already reads under lock before it appends its event (:func:`mlflow_prov.journal.
append_event`). So a write to an unsealed object costs nothing more (the column comes with
the row it reads anyway), and a write to a sealed one fails before it commits: the
describer's event meets the seal, :class:`SealedError` (MLflow's ``INVALID_STATE``) rolls the
write back, and the store journals the refused attempt afterwards in a transaction of its own
(:func:`journal_refusal`).

What a head's ``sealed`` holds (canonical JSON): for a run or an experiment chain, one
:class:`Seal` record; for a registered model's chain, ``{"versions": {"3": record, ...}}``,
each record with the version's stage and aliases when it was sealed. Neither can change while
the version is sealed, so the record tells which alias moves and which stage archivals would
touch it without reading MLflow's tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, INVALID_STATE
from sqlalchemy.orm import Session

from mlflow_prov.vocabulary import (
    ChainKind,
    EventKind,
    SealPayload,
    WriteRefusedPayload,
    parse_chain,
)

_logger = logging.getLogger(__name__)

RUN_TARGET = "runs:/"
MODEL_TARGET = "models:/"
EXPERIMENT_TARGET = "experiments:/"
VERSIONS = "versions"
HTTP_CONFLICT = 409
SQLITE_BUSY_SECONDS = 20
# Stages MLflow archives the other versions of when a transition asks it to
# (``archive_existing_versions``).
ARCHIVING_STAGES = frozenset({"staging", "production"})

# Kinds a seal never refuses: sealing, unsealing and the record of a refusal itself.
SEAL_KINDS = frozenset({
    EventKind.RUN_SEALED, EventKind.RUN_UNSEALED, EventKind.RUN_WRITE_REFUSED,
    EventKind.EXPERIMENT_SEALED, EventKind.EXPERIMENT_UNSEALED,
    EventKind.EXPERIMENT_WRITE_REFUSED, EventKind.MODEL_VERSION_SEALED,
    EventKind.MODEL_VERSION_UNSEALED, EventKind.MODEL_VERSION_WRITE_REFUSED})
_SEALED_KIND = {ChainKind.RUN: EventKind.RUN_SEALED,
                ChainKind.EXPERIMENT: EventKind.EXPERIMENT_SEALED,
                ChainKind.REGISTERED_MODEL: EventKind.MODEL_VERSION_SEALED}
_UNSEALED_KIND = {ChainKind.RUN: EventKind.RUN_UNSEALED,
                  ChainKind.EXPERIMENT: EventKind.EXPERIMENT_UNSEALED,
                  ChainKind.REGISTERED_MODEL: EventKind.MODEL_VERSION_UNSEALED}
_REFUSED_KIND = {ChainKind.RUN: EventKind.RUN_WRITE_REFUSED,
                 ChainKind.EXPERIMENT: EventKind.EXPERIMENT_WRITE_REFUSED,
                 ChainKind.REGISTERED_MODEL: EventKind.MODEL_VERSION_WRITE_REFUSED}
# Registry writes that change every version of a model, sealed ones included.
_WHOLE_MODEL_KINDS = frozenset({EventKind.REGISTERED_MODEL_DELETED,
                                EventKind.REGISTERED_MODEL_RENAMED})


class SealedError(MlflowException):
    """A write to a sealed object, refused before it committed. MLflow's REST handlers send
    it on as ``INVALID_STATE`` with its message (through ``mlflow server`` as well)."""

    def __init__(self, sentence: str, *, chain: str, kind: str, experiment_id: str | None,
                 run_id: str | None, seal: dict[str, Any], version: int | None) -> None:
        super().__init__(sentence, error_code=INVALID_STATE)
        self.chain = chain
        self.kind = kind
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.seal = seal
        self.version = version
        self.journaled = False

    def get_http_status_code(self) -> int:
        """409 Conflict, not the 500 MLflow gives ``INVALID_STATE``: MLflow's REST client
        retries a 500 for minutes before it gives up with its own message, while a 409
        reaches it at once as the ``INVALID_STATE`` error with this sentence."""
        return HTTP_CONFLICT


# --- the decision (pure) ---------------------------------------------------------------------

def refusal(sealed: str, chain: str, kind: str, payload: dict[str, Any]
            ) -> tuple[str, dict[str, Any], int | None] | None:
    """Whether a head's ``sealed`` value refuses an event: ``None`` when the write may go on,
    else the sentence to answer with, the seal record that refuses it and the sealed version
    (model chains). Reads nothing but its arguments."""
    if kind in SEAL_KINDS:
        return None
    try:
        held = json.loads(sealed)
        chain_kind, object_id = parse_chain(chain)
    except ValueError:
        return None
    if not isinstance(held, dict):
        return None
    if chain_kind == ChainKind.REGISTERED_MODEL:
        return _version_refusal(held.get(VERSIONS) or {}, object_id, kind, payload)
    return _sentence(held), held, None


def _version_refusal(versions: dict[str, dict[str, Any]], name: str, kind: str,
                     payload: dict[str, Any]) -> tuple[str, dict[str, Any], int | None] | None:
    """Which sealed version, if any, a registry event would change."""
    touched = _touched_version(versions, kind, payload)
    if touched is None:
        return None
    record = versions[touched]
    return _sentence(record), record, int(touched)


def _touched_version(versions: dict[str, dict[str, Any]], kind: str,
                     payload: dict[str, Any]) -> str | None:
    if not versions:
        return None
    if kind in _WHOLE_MODEL_KINDS:
        return min(versions, key=int)
    version = payload.get("version")
    if version is not None and str(version) in versions and not kind.endswith(".created"):
        return str(version)
    alias = payload.get("alias")
    if alias is not None:  # moving or deleting an alias that names a sealed version
        return next((number for number, record in versions.items()
                     if alias in record.get("aliases", ())), None)
    if kind == EventKind.MODEL_VERSION_STAGE_TRANSITIONED and payload.get(
            "archive_existing_versions"):
        stage = str(payload.get("stage", "")).lower()
        return next((number for number, record in versions.items() if stage in ARCHIVING_STAGES
                     and str(record.get("stage", "")).lower() == stage), None)
    return None


def who_text(who: dict[str, Any]) -> str:
    """A writer identity as one short phrase: ``alice@host`` or ``alice (from 10.0.0.7)``."""
    user = who.get("user") or "someone"
    if who.get("host"):
        return f"{user}@{who['host']}"
    if who.get("client_address"):
        return f"{user} (from {who['client_address']})"
    return str(user)


def _sentence(record: dict[str, Any]) -> str:
    target = record.get("target", "this object")
    return (f"{target} is sealed ({who_text(record.get('who') or {})} sealed it at "
            f"{record.get('when')}: {record.get('why')!r}), so it cannot be changed; "
            f"unseal it first with: mlflow-prov unseal {record.get('by') or target} "
            "--reason TEXT.")


def refuse_sealed_write(sealed: str, *, chain: str, kind: str, payload: dict[str, Any],
                        experiment_id: str | None, run_id: str | None) -> None:
    """Raise :class:`SealedError` when the head's ``sealed`` value refuses the event
    (called by :func:`mlflow_prov.journal.append_event` with the head it locked)."""
    found = refusal(sealed, chain, kind, payload)
    if found is not None:
        sentence, record, version = found
        raise SealedError(sentence, chain=chain, kind=kind, experiment_id=experiment_id,
                          run_id=run_id, seal=record, version=version)


# --- journaling a refusal ----------------------------------------------------------------------

def journal_refusal(engine: sa.engine.Engine, error: SealedError, method: str) -> None:
    """Append ``*.write_refused`` to the sealed object's chain, in a transaction of its own
    (the refused write's transaction rolled back, and the record with it). Once per refused
    call, however deep the hooked methods nest; a failure to record it is logged, never
    turned into another answer than the refusal."""
    from mlflow_prov.identity import writer_identity
    from mlflow_prov.journal import append_event, now_us

    if error.journaled:
        return
    error.journaled = True
    # the seal without its who: that is the seal event's writer, which readers pseudonymise
    seal = {key: value for key, value in error.seal.items() if key != "who"}
    payload = WriteRefusedPayload(method=method, attempted=error.kind, seal=seal)
    if error.version is not None:
        payload["version"] = error.version
    chain_kind, _ = parse_chain(error.chain)
    try:
        with _locked_heads(engine, [error.chain]) as session:
            append_event(session, chain=error.chain, kind=_REFUSED_KIND[chain_kind],
                         experiment_id=error.experiment_id, run_id=error.run_id,
                         payload=dict(payload), writer=writer_identity(), time_us=now_us())
    except (sa.exc.SQLAlchemyError, MlflowException) as failure:
        _logger.warning("could not journal the refused write to %s: %s", error.chain, failure)


@contextmanager
def _locked_heads(engine: sa.engine.Engine, chains: list[str]) -> Iterator[Session]:
    """A transaction that holds the write lock of ``chains``' head rows from its first
    statement (sqlite: the database's write lock, taken before anything is read, so no other
    writer commits between this transaction's reads and its writes)."""
    from mlflow_prov.journal import heads_table

    with Session(engine) as session, session.begin():
        session.execute(heads_table.update().where(heads_table.c.chain.in_(chains))
                        .values(length=heads_table.c.length))
        yield session


# --- sealing and unsealing ---------------------------------------------------------------------

@dataclass(frozen=True)
class Sealable:
    """One object to seal or unseal: its chain, its scope ids, what the user calls it, and
    what the seal record keeps besides who, when and why (a version's stage and aliases)."""

    chain: str
    target: str
    experiment_id: str | None = None
    run_id: str | None = None
    version: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SealChange:
    """What :func:`seal` or :func:`unseal` did to one object (``changed`` False: it already
    was, or was not, sealed, and keeps its earlier seal)."""

    target: str
    changed: bool
    record: dict[str, Any] | None


class SealTargetError(ValueError):
    """A seal target that does not name a run, model version or experiment of the store."""


def seal(tracking_uri: str, target: str, reason: str, *,
         user: str | None = None) -> list[SealChange]:
    """Seal ``runs:/ID``, ``models:/NAME/VERSION`` or ``experiments:/ID`` (the experiment
    and every run it holds now) in one transaction, journaled with the writer identity
    (:func:`mlflow_prov.identity.writer_identity`; ``user``: the name a server authenticated,
    which replaces the one the identity claims) and ``reason``."""
    return _apply(tracking_uri, target, reason, user, sealing=True)


def unseal(tracking_uri: str, target: str, reason: str, *,
           user: str | None = None) -> list[SealChange]:
    """Lift the seals :func:`seal` set on the same target, journaled with who and why. An
    experiment's unseal lifts the seals its runs got with it, not their own."""
    return _apply(tracking_uri, target, reason, user, sealing=False)


def _apply(tracking_uri: str, target: str, reason: str, user: str | None,
           *, sealing: bool) -> list[SealChange]:
    from mlflow_prov.identity import writer_identity
    from mlflow_prov.journal import ensure_tables
    from mlflow_prov.seal_targets import resolve

    if not reason or not reason.strip():
        raise MlflowException("a seal needs a reason: pass --reason TEXT (why it is sealed "
                              "or unsealed; the journal keeps it)",
                              error_code=INVALID_PARAMETER_VALUE)
    objects, db_uri = resolve(tracking_uri, target)
    who = writer_identity()
    if user:
        who["user"] = user
    record = {"who": who, "when": _now_text(), "why": reason.strip()}
    # sqlite: wait for a busy writer as MLflow's own sessions do, not sqlite's default 5 s
    engine = sa.create_engine(db_uri, connect_args={"timeout": SQLITE_BUSY_SECONDS}
                              if db_uri.startswith("sqlite") else {})
    try:
        ensure_tables(engine)  # a journal older than seals gets its column here too
        return _change_all(engine, objects, record, target, sealing)
    finally:
        engine.dispose()


def _now_text() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _change_all(engine: sa.engine.Engine, objects: list[Sealable], record: dict[str, Any],
                target: str, sealing: bool) -> list[SealChange]:
    """Seal or unseal every object under one lock of their heads, all or nothing."""
    from mlflow_prov.journal import heads_table

    changes: list[SealChange] = []
    with _locked_heads(engine, sorted({o.chain for o in objects})) as session:
        for item in objects:
            held = session.execute(sa.select(heads_table.c.sealed)
                                   .where(heads_table.c.chain == item.chain)).scalar()
            change, new_value = _changed(item, held, record, target, sealing)
            changes.append(change)
            if change.changed:
                _journal_change(session, item, record, target, sealing)
                session.execute(heads_table.update().where(heads_table.c.chain == item.chain)
                                .values(sealed=new_value))
    return changes


def _changed(item: Sealable, held: str | None, record: dict[str, Any], target: str,
             sealing: bool) -> tuple[SealChange, str | None]:
    """The change to one object and the head's new ``sealed`` value (canonical JSON or
    NULL: a head without seals costs writers nothing)."""
    from mlflow_prov.journal import canonical_json

    current = _decoded(held)
    own = {**record, "target": item.target, **dict(item.extra)}
    if item.target != target:
        own["by"] = target  # sealed with its experiment
    if item.version is None:
        existing = current or None
        if sealing == bool(existing) or (not sealing and existing and not _lifted_by(
                existing, item, target)):
            return SealChange(item.target, False, existing), held
        new = own if sealing else None
        return SealChange(item.target, True, new), canonical_json(new) if new else None
    versions = dict(current.get(VERSIONS) or {})
    key = str(item.version)
    if sealing == (key in versions):
        return SealChange(item.target, False, versions.get(key)), held
    if sealing:
        versions[key] = own
    else:
        versions.pop(key)
    return (SealChange(item.target, True, own if sealing else None),
            canonical_json({VERSIONS: versions}) if versions else None)


def _lifted_by(existing: dict[str, Any], item: Sealable, target: str) -> bool:
    """An unseal of ``target`` lifts a seal set on the object itself, or one its experiment
    set when ``target`` is that experiment (a run's own seal outlives its experiment's)."""
    return target == item.target or existing.get("by") == target


def _decoded(held: str | None) -> dict[str, Any]:
    if not held:
        return {}
    try:
        value = json.loads(held)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _journal_change(session: Session, item: Sealable, record: dict[str, Any], target: str,
                    sealing: bool) -> None:
    from mlflow_prov.journal import append_event, now_us

    chain_kind, _ = parse_chain(item.chain)
    kind = (_SEALED_KIND if sealing else _UNSEALED_KIND)[chain_kind]
    payload = SealPayload(target=item.target, reason=record["why"])
    if item.target != target:
        payload["by"] = target
    if item.version is not None:
        payload["version"] = item.version
    append_event(session, chain=item.chain, kind=kind, experiment_id=item.experiment_id,
                 run_id=item.run_id, payload=dict(payload), writer=record["who"],
                 time_us=now_us())


def seal_of(held: str | None, version: int | str | None = None) -> dict[str, Any] | None:
    """The seal record a head's ``sealed`` value holds for its object (for a model chain:
    for ``version``), or ``None``: what pages show."""
    current = _decoded(held)
    if version is None:
        return current or None
    return (current.get(VERSIONS) or {}).get(str(version))


def read_seal(tracking_uri: str, chain: str, version: int | str | None = None
              ) -> dict[str, Any] | None:
    """The seal on a chain's object (a model chain: on ``version``), or ``None``: what the
    ``/prov/`` pages show. Read through the journal's read API, with no lock."""
    from mlflow_prov.journal import chain_sealed

    return seal_of(chain_sealed(tracking_uri, chain), version)
