"""The journal's per-write statements, written once per dialect and run on the DB-API cursor.

Why the DB-API cursor: through SQLAlchemy's ``Connection.execute`` each statement costs tens
of microseconds of Python (cache lookup, parameter processing, result wrapping) besides the
database's own work, as much as sqlite takes to run it; the same SQL text on the same
connection's cursor (so in the same transaction) costs a few.

Why these statements: a journaled write must add at most two statements to MLflow's own
(docs/internals.md, "The journal's write path"). The writer already knows the chain's head
from the last event it committed (:mod:`mlflow_prov.journal` keeps it per process), so it
advances the head with a compare-and-swap, ``UPDATE ... WHERE chain = ? AND length = ? AND
last_hash = ?``, and inserts the event only when that matched: two statements, one round trip
on PostgreSQL, where a data-modifying ``WITH`` does both. A chain's first event inserts the
head row the same way (``ON CONFLICT DO NOTHING``, MySQL's ``INSERT IGNORE``). When the swap
misses (another process wrote to the chain, or this one never did) the head is read
``FOR UPDATE`` and the swap repeated under that lock: three statements, once.

The update takes the head row's lock before the event row is written, so concurrent writers to
one chain are serialised exactly as by a ``SELECT ... FOR UPDATE``: the second one's swap
waits, then finds the head moved and takes the locked path.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

EVENT_COLUMNS = ("time_us", "chain", "experiment_id", "run_id", "kind", "payload", "writer",
                 "prev_hash", "hash")


class JournalStatements:
    """The journal's hot statements for one dialect (see the module docstring)."""

    def __init__(self, dialect: sa.Dialect, events: str, heads: str) -> None:
        quote = dialect.identifier_preparer.quote
        self._dialect = dialect.name
        mark = (lambda name: f":{name}") if dialect.paramstyle in ("named", "qmark") else (
            lambda name: f"%({name})s")
        columns = ", ".join(quote(name) for name in EVENT_COLUMNS)
        values = ", ".join(mark(name) for name in EVENT_COLUMNS)
        chain, length, last = quote("chain"), quote("length"), quote("last_hash")
        heads, events = quote(heads), quote(events)
        self._lock = (f"SELECT {last}, {length} FROM {heads} WHERE {chain} = {mark('chain')}"
                      + ("" if dialect.name == "sqlite" else " FOR UPDATE"))
        self._insert_event = f"INSERT INTO {events} ({columns}) VALUES ({values})"
        self._advance = (f"UPDATE {heads} SET {last} = {mark('hash')}, "
                         f"{length} = {mark('new_length')} WHERE {chain} = {mark('chain')} "
                         f"AND {length} = {mark('old_length')} AND {last} = {mark('prev_hash')}")
        self._empty_head = (f"UPDATE {heads} SET {last} = {mark('hash')}, {length} = 1 "
                            f"WHERE {chain} = {mark('chain')} AND {length} = 0")
        new_head = f"INSERT INTO {heads} ({chain}, {last}, {length}) VALUES " \
                   f"({mark('chain')}, {mark('hash')}, 1)"
        if dialect.name in ("mysql", "mariadb"):
            self._start = new_head.replace("INSERT INTO", "INSERT IGNORE INTO", 1)
        else:
            self._start = f"{new_head} ON CONFLICT ({chain}) DO NOTHING"
        self._together: dict[str, str] = {}
        if dialect.name == "postgresql":
            # one round trip: the event row is inserted only if the head moved
            selected = ", ".join(mark(name) for name in EVENT_COLUMNS)
            for name, head_sql in (("advance", self._advance), ("start", self._start),
                                   ("empty", self._empty_head)):
                self._together[name] = (
                    f"WITH moved AS ({head_sql} RETURNING 1) INSERT INTO {events} ({columns}) "
                    f"SELECT {selected} FROM moved")

    def _run(self, cursor: Any, sql: str, values: dict[str, Any]) -> int:
        cursor.execute(sql, values)
        return int(cursor.rowcount)

    def _then_insert(self, cursor: Any, name: str, head_sql: str,
                     values: dict[str, Any]) -> bool:
        together = self._together.get(name)
        if together is not None:
            return self._run(cursor, together, values) == 1
        if self._run(cursor, head_sql, values) != 1:
            return False
        self._run(cursor, self._insert_event, values)
        return True

    def advance(self, cursor: Any, event: dict[str, Any], old_length: int) -> bool:
        """Move the head from (``old_length``, ``event['prev_hash']``) to the event and insert
        it; False, with nothing written, when the head is not there any more."""
        values = {**event, "old_length": old_length, "new_length": old_length + 1}
        if old_length == 0:
            return self._then_insert(cursor, "empty", self._empty_head, values)
        return self._then_insert(cursor, "advance", self._advance, values)

    def start(self, cursor: Any, event: dict[str, Any]) -> bool:
        """Create the chain's head at its first event and insert it; False, with nothing
        written, when the chain already has a head."""
        return self._then_insert(cursor, "start", self._start, event)

    def lock_head(self, cursor: Any, chain: str) -> tuple[str | None, int] | None:
        """The chain head's ``(last_hash, length)``, locked for this transaction; None if
        missing."""
        cursor.execute(self._lock, {"chain": chain})
        row = cursor.fetchone()
        return None if row is None else (row[0], int(row[1]))


_compiled: dict[str, JournalStatements] = {}
_compiled_lock = threading.Lock()


def statements_for(dialect: sa.Dialect, events: str, heads: str) -> JournalStatements:
    """The statements for ``dialect`` (built on first use, then shared)."""
    key = f"{dialect.name}+{dialect.driver}+{dialect.paramstyle}"
    found = _compiled.get(key)
    if found is None:
        with _compiled_lock:
            found = _compiled.setdefault(key, JournalStatements(dialect, events, heads))
    return found
