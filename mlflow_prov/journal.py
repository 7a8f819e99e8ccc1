"""The provenance journal: an append-only, hash-chained event table beside MLflow's tables.

Why a journal: MLflow keeps the *current* state (the last value of a tag, the final status
of a run) and forgets how it got there. Every write through a ``prov`` store appends one
event here, in the same database transaction as the MLflow write it describes, so the two
never disagree. Events of one chain (a run, an experiment, a registered model, a logged
model) are linked by SHA-256 hashes: editing or deleting a row breaks the chain, which
:func:`verify_chain` reports.

Read API (the exporters' only way in): :func:`read_events`, :func:`read_events_page`,
:func:`read_event_hashes`, :func:`verify_chain` and :func:`require_existing_store`.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mlflow_prov.journal_sql import statements_for
from mlflow_prov.metric_folds import add_counts, fold_rows
from mlflow_prov.metric_folds import ensure_table as ensure_folds_table
from mlflow_prov.sql_dialects import insert_unless_present, is_mysql
from mlflow_prov.vocabulary import LEGACY_KINDS, EventKind, parse_kind

JOURNAL_TABLE = "prov_journal"
HEADS_TABLE = "prov_journal_heads"
HASH_ALGORITHM = "sha256"
SEALED_COLUMN = "sealed"

metadata = sa.MetaData()

events_table = sa.Table(
    JOURNAL_TABLE,
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("chain", sa.String(300), nullable=False),
    sa.Column("experiment_id", sa.String(32), nullable=True),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("writer", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_prov_journal_run", "run_id", "seq"),
    sa.Index("ix_prov_journal_experiment", "experiment_id", "seq"),
    sa.Index("ix_prov_journal_chain", "chain", "seq"),
)

heads_table = sa.Table(
    HEADS_TABLE,
    metadata,
    sa.Column("chain", sa.String(300), primary_key=True),
    sa.Column("last_hash", sa.String(64), nullable=True),
    sa.Column("length", sa.Integer, nullable=False, default=0),
    # The chain's seal (canonical JSON; see mlflow_prov/seals.py), NULL while unsealed: the
    # head's compare-and-swap moves only an unsealed head, so unsealed writes cost nothing more.
    sa.Column(SEALED_COLUMN, sa.Text, nullable=True),
)


@dataclass(frozen=True)
class JournalEvent:
    """One journal row, decoded. ``payload`` and ``writer`` are plain JSON-compatible dicts."""

    seq: int
    time_us: int
    chain: str
    experiment_id: str | None
    run_id: str | None
    kind: EventKind | str
    payload: dict[str, Any]
    writer: dict[str, Any]
    prev_hash: str | None
    hash: str

    @property
    def time(self) -> datetime:
        """The event's UTC time as an aware datetime."""
        return datetime.fromtimestamp(self.time_us / 1_000_000, tz=UTC)


@dataclass(frozen=True)
class ChainReport:
    """The result of :func:`verify_chain` for one chain."""

    chain: str
    length: int
    intact: bool
    problems: list[str] = field(default_factory=list)


class JournalUnavailableError(RuntimeError):
    """The tracking URI's database has no provenance journal (not a prov store)."""


def ensure_tables(engine: sa.engine.Engine) -> None:
    """Create the journal tables if missing, and the head's ``sealed`` column on journals
    written before it existed: no manual migration step for users. (Journals written before
    the heads stopped keeping state digests still carry two nullable columns, ``state`` and
    ``state_at``, that nothing reads or writes any more.)"""
    metadata.create_all(engine, checkfirst=True)
    ensure_folds_table(engine)
    _add_head_column(engine, heads_table.c[SEALED_COLUMN])


def _add_head_column(engine: sa.engine.Engine, column: sa.Column[Any]) -> None:
    def present() -> bool:
        return column.name in {found["name"]
                               for found in sa.inspect(engine).get_columns(HEADS_TABLE)}

    if present():
        return
    kind = column.type.compile(dialect=engine.dialect)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"ALTER TABLE {HEADS_TABLE} ADD COLUMN {column.name} "
                                       f"{kind}"))
    except sa.exc.DatabaseError as error:
        if present():  # another process added it first
            return
        raise RuntimeError(
            f"cannot add column {column.name} to the journal's {HEADS_TABLE} table "
            f"({str(error.orig).splitlines()[0]}); open the store once as a database role "
            "that may ALTER TABLE, as MLflow's own migrations need") from error


def _json_safe(value: Any) -> Any:
    """Strict JSON for any payload MLflow accepts.

    JSON has no NaN/Infinity: they become the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``. Numbers of other types (numpy's ``int64`` step of a ``np.arange`` loop,
    ``float32`` values) become plain ints and floats: MLflow takes them, so the journal must
    too, or the user's write would fail with it.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return number
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted, compact, strict JSON; anything still unknown to JSON is written as its str()."""
    return json.dumps(_json_safe(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False, default=str)


def event_hash(prev_hash: str | None, chain: str, time_us: int, kind: str,
               experiment_id: str | None, run_id: str | None, payload: str, writer: str) -> str:
    """SHA-256 over the event's content and its predecessor's hash (the chain link)."""
    material = canonical_json([prev_hash, chain, time_us, kind, experiment_id, run_id,
                               payload, writer])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class _KnownHeads:
    """The head of every chain this process appended to, as its last commit left it.

    Why: with the head known, an event costs two statements, a compare-and-swap of the head
    and the insert (:mod:`mlflow_prov.journal_sql`), instead of three. A transaction's new
    heads are held in its session until it commits (:func:`heads_committed`) and dropped if
    it rolls back (:func:`heads_rolled_back`), so a head here was once true in the database;
    a stale one only makes the swap miss and the writer read the head under lock. Kept per
    database URL, not per engine: a head is a fact of the database, so the ``prov`` server
    app's upload engine (:mod:`mlflow_prov.artifact_uploads`) and the tracking store's share
    what either wrote. Bounded: a database's heads are cleared when they grow past
    ``MAX_CHAINS``, all of them when a process has written to ``MAX_DATABASES``.
    """

    MAX_CHAINS = 100_000
    MAX_DATABASES = 64

    def __init__(self) -> None:
        self._heads: dict[sa.engine.URL, dict[str, tuple[int, str]]] = {}
        self._lock = threading.Lock()

    def get(self, engine: sa.engine.Engine, chain: str) -> tuple[int, str] | None:
        with self._lock:
            return self._heads.get(engine.url, {}).get(chain)

    def update(self, engine: sa.engine.Engine, heads: dict[str, tuple[int, str]]) -> None:
        with self._lock:
            if engine.url not in self._heads and len(self._heads) >= self.MAX_DATABASES:
                self._heads.clear()
            known = self._heads.setdefault(engine.url, {})
            if len(known) + len(heads) > self.MAX_CHAINS:
                known.clear()
            known.update(heads)

    def forget(self, engine: sa.engine.Engine, chains: Iterable[str]) -> None:
        with self._lock:
            known = self._heads.get(engine.url, {})
            for chain in chains:
                known.pop(chain, None)


_known_heads = _KnownHeads()
_PENDING_HEADS = "mlflow_prov.pending_heads"


def heads_committed(session: Session) -> None:
    """The session's transaction committed: its chains' new heads are now true."""
    pending = session.info.pop(_PENDING_HEADS, None)
    if pending:
        for engine, heads in pending.items():
            _known_heads.update(engine, heads)


def heads_rolled_back(session: Session) -> None:
    """The session's transaction rolled back: its chains' heads are not known any more."""
    pending = session.info.pop(_PENDING_HEADS, None)
    if pending:
        for engine, heads in pending.items():
            _known_heads.forget(engine, heads)


@dataclass(frozen=True)
class NewEvent:
    """One event to append: what :func:`append_events` needs besides its chain."""

    kind: str
    experiment_id: str | None
    run_id: str | None
    payload: Mapping[str, Any]


def append_event(session: Session, *, chain: str, kind: str, experiment_id: str | None,
                 run_id: str | None, payload: Mapping[str, Any], writer: dict[str, Any],
                 time_us: int, first: bool = False) -> None:
    """Append one event inside the caller's transaction (see :func:`append_events`)."""
    append_events(session, chain, [NewEvent(kind, experiment_id, run_id, payload)],
                  writer=writer, time_us=time_us, first=first)


def append_events(session: Session, chain: str, events: list[NewEvent], *,
                  writer: dict[str, Any], time_us: int, first: bool = False) -> None:
    """Append events to one chain inside the caller's transaction, in order.

    Statements go to the session's DB-API connection (the same transaction), written once per
    dialect (:mod:`mlflow_prov.journal_sql`), rather than through the ORM layer or
    SQLAlchemy's execution path: most of the per-write cost disappears, and MLflow's ORM
    listeners never see journal rows.

    The head this process last committed for the chain (or, earlier in this transaction,
    wrote) is advanced with a compare-and-swap, to the last event; ``first`` says the chain is
    new (a run or experiment just created), so its head row is inserted instead. Either costs
    two statements whatever the number of events (one on PostgreSQL for a single event). When
    the swap misses, the head is read ``FOR UPDATE``: a sealed chain refuses the write there
    (:mod:`mlflow_prov.seals`), any other has the swap repeated under the lock, so concurrent
    writers to one chain are serialised and never fork it.

    A write with metric events of a run also adds them to the run's fold counters, one
    statement more (:mod:`mlflow_prov.metric_folds`).
    """
    connection, statements, pending = _journal_session(session)
    rows = _event_rows(chain, events, writer, time_us)
    cursor = connection.connection.cursor()  # the same DB-API connection: same transaction
    try:
        _advance(connection, statements, cursor, pending, chain, rows, events, first)
        add_counts(connection.dialect, cursor,
                   fold_rows(zip(rows, (event.payload for event in events), strict=True)))
    finally:
        cursor.close()


def append_if_head_known(session: Session, chain: str, events: list[NewEvent], *,
                         writer: dict[str, Any], time_us: int) -> bool:
    """Append with the compare-and-swap alone, when this process knows the chain's head: one
    statement on PostgreSQL, two elsewhere. ``False``, with nothing written, when it knows no
    head or the head moved; the caller then checks what it assumed while the head stood
    still (an upload's run still exists, :mod:`mlflow_prov.artifact_uploads`) and appends
    with :func:`append_events`."""
    connection, statements, pending = _journal_session(session)
    known = pending.get(chain) or _known_heads.get(connection.engine, chain)
    if known is None:
        return False
    rows = _event_rows(chain, events, writer, time_us)
    cursor = connection.connection.cursor()  # the same DB-API connection: same transaction
    try:
        return _swap(statements, cursor, pending, chain, rows, known)
    finally:
        cursor.close()


def _journal_session(session: Session) -> tuple[sa.Connection, Any, dict[str, tuple[int, str]]]:
    """The session's connection, its dialect's journal statements, and the heads its
    transaction has moved so far."""
    connection = session.connection()
    statements = statements_for(connection.dialect, JOURNAL_TABLE, HEADS_TABLE)
    pending: dict[str, tuple[int, str]] = (
        session.info.setdefault(_PENDING_HEADS, {}).setdefault(connection.engine, {}))
    return connection, statements, pending


def _event_rows(chain: str, events: list[NewEvent], writer: dict[str, Any],
                time_us: int) -> list[dict[str, Any]]:
    return [{"time_us": time_us, "chain": chain, "experiment_id": event.experiment_id,
             "run_id": event.run_id, "kind": event.kind,
             "payload": canonical_json(event.payload), "writer": canonical_json(writer)}
            for event in events]


def _advance(connection: sa.Connection, statements: Any, cursor: Any,
             pending: dict[str, tuple[int, str]], chain: str, rows: list[dict[str, Any]],
             events: list[NewEvent], first: bool) -> None:
    """Move the chain's head to the last of ``rows`` and insert them (see
    :func:`append_events`)."""
    known = pending.get(chain) or _known_heads.get(connection.engine, chain)
    if known is not None and _swap(statements, cursor, pending, chain, rows, known):
        return
    if known is None and first and statements.start(cursor, _linked(rows, None)):
        pending[chain] = (len(rows), str(rows[-1]["hash"]))
        return
    length, last_hash, sealed = _locked_head(connection, statements, cursor, chain)
    if sealed is not None:  # a sealed object refuses the write (mlflow_prov/seals.py)
        from mlflow_prov.seals import refuse_sealed_write

        for event in events:
            refuse_sealed_write(sealed, chain=chain, kind=event.kind,
                                payload=dict(event.payload),
                                experiment_id=event.experiment_id, run_id=event.run_id)
    if not _swap(statements, cursor, pending, chain, rows, (length, last_hash),
                 unsealed_only=False):
        raise RuntimeError(f"journal head of {chain!r} moved while locked")


def _swap(statements: Any, cursor: Any, pending: dict[str, tuple[int, str]], chain: str,
          rows: list[dict[str, Any]], head: tuple[int, str | None], *,
          unsealed_only: bool = True) -> bool:
    """The compare-and-swap of the chain's head from ``head`` (length, last hash) to the
    last of ``rows``, with their insert; the transaction's pending head moves with it.
    ``False``, with nothing written, when the head was not ``head`` any more."""
    length, last_hash = head
    if not statements.advance(cursor, _linked(rows, last_hash), length, last_hash,
                              unsealed_only=unsealed_only):
        return False
    pending[chain] = (length + len(rows), str(rows[-1]["hash"]))
    return True


def _linked(rows: list[dict[str, Any]], prev_hash: str | None) -> list[dict[str, Any]]:
    """The event rows chained onto ``prev_hash``, each with its own hash (set in place)."""
    for row in rows:
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = event_hash(prev_hash, row["chain"], row["time_us"],
                                             row["kind"], row["experiment_id"], row["run_id"],
                                             row["payload"], row["writer"])
    return rows


def _locked_head(connection: sa.Connection, statements: Any, cursor: Any,
                 chain: str) -> tuple[int, str | None, str | None]:
    """The chain head's ``(length, last_hash, sealed)`` under this transaction's lock,
    creating an empty head first if the chain has none."""
    head = statements.lock_head(cursor, chain)
    if head is None:
        _create_head(connection, chain)
        head = statements.lock_head(cursor, chain)
    if head is None:  # created just above, in this transaction: it cannot be missing
        raise RuntimeError(f"journal head row of {chain!r} missing right after its insert")
    last_hash, length, sealed = head
    return length, last_hash, sealed


def _create_head(connection: sa.Connection, chain: str) -> None:
    """Insert an empty head row; a concurrent transaction creating the same one is not an error."""
    insert_unless_present(connection, heads_table,
                          {"chain": chain, "last_hash": None, "length": 0})


def now_us() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1_000_000)


# --- read API -------------------------------------------------------------------------------

# What readers take from a head row: not ``sealed``, which a journal no store of this version
# has opened yet does not have (verify reads such journals as they are).
_HEAD_COLUMNS = (heads_table.c.chain, heads_table.c.last_hash, heads_table.c.length)

# Read engines by database URI, least recently used first. Bounded: a long-lived process
# (a server, a notebook) that reads many stores keeps at most this many connection pools;
# the one evicted is disposed. dispose_engines() releases them all.
MAX_ENGINES = 8
_engines: OrderedDict[str, sa.engine.Engine] = OrderedDict()
_engines_lock = threading.Lock()


def dispose_engines() -> None:
    """Close every cached read engine's pooled connections (they reopen on the next read)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _engine_for(tracking_uri: str) -> sa.engine.Engine:
    from mlflow_prov.uri import is_prov_uri, parse_prov_uri

    if not is_prov_uri(tracking_uri):
        raise JournalUnavailableError(
            f"{tracking_uri!r} is not a prov store URI, so it has no provenance journal "
            "(prov:///dir, prov+sqlite://, prov+postgresql://, prov+mysql://)")
    db_uri = parse_prov_uri(tracking_uri).db_uri
    evicted: list[sa.engine.Engine] = []
    with _engines_lock:
        if db_uri in _engines:
            _engines.move_to_end(db_uri)
        else:
            _engines[db_uri] = sa.create_engine(db_uri, pool_pre_ping=True)
            while len(_engines) > MAX_ENGINES:
                evicted.append(_engines.popitem(last=False)[1])
        engine = _engines[db_uri]
    for old in evicted:
        old.dispose()
    return engine


def _decode(row: Any) -> JournalEvent:
    return JournalEvent(seq=row.seq, time_us=row.time_us, chain=row.chain,
                        experiment_id=row.experiment_id, run_id=row.run_id,
                        kind=parse_kind(row.kind),
                        payload=json.loads(row.payload), writer=json.loads(row.writer),
                        prev_hash=row.prev_hash, hash=row.hash)


def require_existing_store(tracking_uri: str, *, for_another_process: bool = False) -> None:
    """Raise :class:`JournalUnavailableError` when a prov URI names a sqlite store that does
    not exist. Readers call it first: opening an MLflow client on a prov URI creates the
    store, so a mistyped path would quietly become a new, empty store. Other URIs (plain
    MLflow stores, database servers, ``http://``) pass unchecked. The in-memory store exists
    only in the process that opened it: refused where none was opened, and always
    ``for_another_process`` (a server the caller starts)."""
    from mlflow_prov.uri import is_prov_uri, parse_prov_uri

    if not is_prov_uri(tracking_uri):
        return
    location = parse_prov_uri(tracking_uri)
    if location.in_memory:
        _require_memory_store_here(tracking_uri, for_another_process)
        return
    db_uri = location.db_uri
    if db_uri.startswith("sqlite:///"):
        database = Path(db_uri.removeprefix("sqlite:///"))
        if not database.is_file():
            raise JournalUnavailableError(
                f"no prov store at {database.parent} ({database.name} is missing); "
                "check the path in the tracking URI")


def _require_memory_store_here(tracking_uri: str, for_another_process: bool) -> None:
    from mlflow_prov.memory_store import is_open

    if for_another_process or not is_open():
        raise JournalUnavailableError(
            f"{tracking_uri} lives only in the memory of the process that logs to it; to read "
            "it from another process (this command, a server) log to a file store instead "
            "(prov:///path/to/dir or prov+sqlite:///path/to/file.db)")


def read_events(tracking_uri: str, experiment_id: str | None = None,
                run_id: str | None = None) -> Iterator[JournalEvent]:
    """Yield the journal's events in write order, optionally for one experiment or one run.

    ``experiment_id`` selects the experiment's own events *and* those of its runs. Raises
    :class:`JournalUnavailableError` for a URI that is not a prov store, or whose database
    has no journal yet.
    """
    engine = _engine_for(tracking_uri)
    if not sa.inspect(engine).has_table(JOURNAL_TABLE):
        raise JournalUnavailableError(f"{tracking_uri!r} has no provenance journal table yet")
    query = sa.select(events_table).order_by(events_table.c.seq)
    if experiment_id is not None:
        query = query.where(events_table.c.experiment_id == str(experiment_id))
    if run_id is not None:
        query = query.where(events_table.c.run_id == run_id)
    with engine.connect() as connection:
        for row in connection.execution_options(yield_per=1000).execute(query):
            yield _decode(row)


def verify_chain(tracking_uri: str, chain: str) -> ChainReport:
    """Recompute a chain's hashes and compare with its head: edits and deletions show up.

    Every journaled object's chain starts with an event and a head row in one transaction,
    so a missing head row, or a chain with neither events nor head, is itself a finding:
    deleting the last event together with its head, or a whole chain, must not read intact.
    """
    engine = _engine_for(tracking_uri)
    problems: list[str] = []
    prev: str | None = None
    length = 0
    with engine.connect() as connection:
        rows = connection.execute(sa.select(events_table).where(events_table.c.chain == chain)
                                  .order_by(events_table.c.seq))
        for row in rows:
            length += 1
            if row.prev_hash != prev:
                problems.append(f"event {row.seq}: links to {row.prev_hash}, expected {prev}")
            recomputed = event_hash(row.prev_hash, row.chain, row.time_us, row.kind,
                                    row.experiment_id, row.run_id, row.payload, row.writer)
            if recomputed != row.hash:
                problems.append(f"event {row.seq}: content does not match its hash")
            prev = row.hash
        head_query = sa.select(*_HEAD_COLUMNS).where(heads_table.c.chain == chain)
        head = connection.execute(head_query).first()
    if head is None and length:
        problems.append(f"head row missing: found {length} events ending {prev} "
                        "with no head to check them against")
    elif head is None:
        problems.append("chain missing: no events and no head row "
                        "(deleted, or never journaled)")
    elif head.last_hash != prev or head.length != length:
        problems.append(f"head says {head.length} events ending {head.last_hash}, "
                        f"found {length} ending {prev}")
    return ChainReport(chain=chain, length=length, intact=not problems, problems=problems)


@dataclass(frozen=True)
class EventPage:
    """One page of :func:`read_events_page`: events in ``seq`` order and the cursor of the
    next page (``None`` on the last one)."""

    events: list[JournalEvent]
    next_after_seq: int | None


def read_events_page(tracking_uri: str, *, experiment_id: str | None = None,
                     run_id: str | None = None, chain: str | None = None,
                     kinds: list[str] | None = None, since_us: int | None = None,
                     until_us: int | None = None, after_seq: int | None = None,
                     payload_contains: str | None = None, limit: int = 100) -> EventPage:
    """One page of events after ``after_seq``, filtered in SQL, in stable ``seq`` order.

    Why pages and SQL-side filters: a run can hold 100,000 events and a page that shows 100
    of them must not read the rest. Each filter rides an index (run, experiment, chain, each
    by seq), except ``payload_contains``, which finds events whose payload mentions a string
    (``log --key``'s filter; a scan of the rows the indexed filters leave: lineage reads its
    own indexed tables, mlflow_prov/lineage_edges.py). ``since_us``/``until_us`` bound the
    event time (inclusive, microseconds).
    """
    engine = _engine_for(tracking_uri)
    if not sa.inspect(engine).has_table(JOURNAL_TABLE):
        raise JournalUnavailableError(f"{tracking_uri!r} has no provenance journal table yet")
    columns = events_table.c
    query = sa.select(events_table).order_by(columns.seq).limit(limit + 1)
    conditions = [
        (experiment_id is not None, lambda: columns.experiment_id == str(experiment_id)),
        (run_id is not None, lambda: columns.run_id == run_id),
        (chain is not None, lambda: columns.chain == chain),
        (bool(kinds), lambda: columns.kind.in_(_stored_spellings(kinds or []))),
        (since_us is not None, lambda: columns.time_us >= since_us),
        (until_us is not None, lambda: columns.time_us <= until_us),
        (after_seq is not None, lambda: columns.seq > after_seq),
        (bool(payload_contains), lambda: columns.payload.contains(payload_contains,
                                                                   autoescape=True)),
    ]
    for wanted, condition in conditions:
        if wanted:
            query = query.where(condition())
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    events = [_decode(row) for row in rows[:limit]]
    return EventPage(events=events,
                     next_after_seq=events[-1].seq if len(rows) > limit and events else None)


def read_events_paged(tracking_uri: str, *, page_size: int = 1000,
                      **filters: Any) -> Iterator[JournalEvent]:
    """Every event :func:`read_events_page` selects with ``filters``, read a page at a time:
    each page one indexed query, never the whole selection in memory at once."""
    after: int | None = None
    while True:
        page = read_events_page(tracking_uri, after_seq=after, limit=page_size, **filters)
        yield from page.events
        if page.next_after_seq is None:
            return
        after = page.next_after_seq


def _stored_spellings(kinds: list[str]) -> list[str]:
    """Today's kinds plus the legacy spellings that read as them (see ``LEGACY_KINDS``)."""
    wanted = {str(parse_kind(kind)) for kind in kinds}
    return sorted(wanted | {old for old, new in LEGACY_KINDS.items() if str(new) in wanted})


def chain_heads(tracking_uri: str) -> dict[str, tuple[int, str | None]]:
    """Every chain the journal knows, from its events *and* its head rows, with the head's
    (length, last hash); ``(0, None)`` for a chain whose head row is gone. Verify walks this
    list, so a chain that lost its head, or its events, is still visited."""
    engine = _engine_for(tracking_uri)
    with engine.connect() as connection:
        heads = {row.chain: (row.length, row.last_hash)
                 for row in connection.execute(sa.select(*_HEAD_COLUMNS))}
        chains = connection.execute(sa.select(events_table.c.chain).distinct()).scalars()
        return {chain: heads.get(chain, (0, None)) for chain in {*heads, *chains}}


def chain_head(tracking_uri: str, chain: str) -> tuple[int, str | None] | None:
    """One chain's head row (length, last hash), or ``None`` when it has none: what an export
    embeds so that the export can be checked against its store later."""
    engine = _engine_for(tracking_uri)
    query = sa.select(heads_table.c.length, heads_table.c.last_hash).where(
        heads_table.c.chain == chain)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return (row.length, row.last_hash) if row is not None else None


def chain_sealed(tracking_uri: str, chain: str) -> str | None:
    """A chain head's ``sealed`` value (see :mod:`mlflow_prov.seals`), or ``None``; ``None``
    too on a journal no store of this version has opened yet (it has no such column)."""
    engine = _engine_for(tracking_uri)
    query = sa.select(heads_table.c.sealed).where(heads_table.c.chain == chain)
    with engine.connect() as connection:
        try:
            return connection.execute(query).scalar()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            if SEALED_COLUMN in {column["name"] for column in
                                 sa.inspect(connection).get_columns(HEADS_TABLE)}:
                raise
            return None


def chain_hash_at(tracking_uri: str, chain: str, position: int) -> str | None:
    """The hash of a chain's ``position``-th event (1-based, in write order), or ``None`` when
    the chain is shorter: how a checkpoint proves the chain still starts as it did."""
    engine = _engine_for(tracking_uri)
    query = (sa.select(events_table.c.hash).where(events_table.c.chain == chain)
             .order_by(events_table.c.seq).offset(position - 1).limit(1))
    with engine.connect() as connection:
        return connection.execute(query).scalar()


def read_event_hashes(tracking_uri: str) -> tuple[list[int], list[str]]:
    """Every event's ``seq`` and stored hash, in ``seq`` order, and nothing else: the leaves
    of the journal's Merkle tree, read without the payloads (a million events in seconds)."""
    engine = _engine_for(tracking_uri)
    if not sa.inspect(engine).has_table(JOURNAL_TABLE):
        raise JournalUnavailableError(f"{tracking_uri!r} has no provenance journal table yet")
    seqs: list[int] = []
    hashes: list[str] = []
    query = sa.select(events_table.c.seq, events_table.c.hash).order_by(events_table.c.seq)
    with engine.connect() as connection, _inserts_committed(connection):
        for seq, digest in connection.execution_options(yield_per=10_000).execute(query):
            seqs.append(seq)
            hashes.append(digest)
    return seqs, hashes


@contextmanager
def _inserts_committed(connection: sa.engine.Connection) -> Iterator[None]:
    """Hold the journal still while its hashes are read, once every insert in flight has
    committed. Why: on PostgreSQL and MySQL ``seq`` is handed out at insert, not at commit,
    so an event inserted before the read but committed after it would leave a gap that a
    later read fills, and a checkpoint of the first read would then look rewritten. A share
    (read) lock waits for those inserts and holds new ones back only for the read; sqlite
    serialises writers, so there is nothing to wait for."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        with connection.begin():
            connection.exec_driver_sql(f"LOCK TABLE {JOURNAL_TABLE} IN SHARE MODE")
            yield
    elif is_mysql(dialect):
        connection.exec_driver_sql(f"LOCK TABLES {JOURNAL_TABLE} READ")
        try:
            yield
        finally:
            connection.exec_driver_sql("UNLOCK TABLES")
            connection.commit()
    else:
        yield
