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
misses (another process wrote to the chain, or this one never did, or the chain is sealed:
the swap only moves an unsealed head) the head is read ``FOR UPDATE`` and the swap repeated
under that lock: three statements, once.

The update takes the head row's lock before the event row is written, so concurrent writers to
one chain are serialised exactly as by a ``SELECT ... FOR UPDATE``: the second one's swap
waits, then finds the head moved and takes the locked path.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from mlflow_prov.sql_dialects import is_mysql

EVENT_COLUMNS = ("time_us", "chain", "experiment_id", "run_id", "kind", "payload", "writer",
                 "prev_hash", "hash")


class JournalStatements:
    """The journal's hot statements for one dialect (see the module docstring). A write may
    append several events to one chain (a run's artifact manifest, then its end): the head
    moves once, to the last of them, and they are inserted with one multi-row statement."""

    def __init__(self, dialect: sa.Dialect, events: str, heads: str) -> None:
        quote = dialect.identifier_preparer.quote
        self._mark = (lambda name: f":{name}") if dialect.paramstyle in ("named", "qmark") \
            else (lambda name: f"%({name})s")
        mark = self._mark
        self._columns = ", ".join(quote(name) for name in EVENT_COLUMNS)
        chain, length, last = quote("chain"), quote("length"), quote("last_hash")
        sealed = quote("sealed")
        heads, self._events = quote(heads), quote(events)
        self._lock = (f"SELECT {last}, {length}, {sealed} FROM {heads} "
                      f"WHERE {chain} = {mark('chain')}"
                      + ("" if dialect.name == "sqlite" else " FOR UPDATE"))
        moved = (f"UPDATE {heads} SET {last} = {mark('head_hash')}, {length} = "
                 f"{mark('new_length')} WHERE {chain} = {mark('chain')} AND {length} = "
                 f"{mark('old_length')}")
        # an unsealed head only, unless the writer holds the head's lock and has checked
        self._advance = {(True, False): f"{moved} AND {last} = {mark('prev_hash')}",
                         (True, True): f"{moved} AND {last} = {mark('prev_hash')} "
                                       f"AND {sealed} IS NULL",
                         (False, False): moved, (False, True): f"{moved} AND {sealed} IS NULL"}
        new_head = (f"INSERT INTO {heads} ({chain}, {last}, {length}) VALUES "
                    f"({mark('chain')}, {mark('head_hash')}, {mark('new_length')})")
        if is_mysql(dialect.name):
            self._start = new_head.replace("INSERT INTO", "INSERT IGNORE INTO", 1)
        else:
            self._start = f"{new_head} ON CONFLICT ({chain}) DO NOTHING"
        self._together = dialect.name == "postgresql"  # the head and the first row at once
        self._inserts: dict[tuple[int, int], str] = {}

    def _values(self, first: int, count: int) -> str:
        """Rows ``first`` .. ``first + count - 1`` of a write, as ``(...), (...)``."""
        key = (first, count)
        found = self._inserts.get(key)
        if found is None:
            found = self._inserts[key] = ", ".join(
                "(" + ", ".join(self._mark(f"{name}_{index}") for name in EVENT_COLUMNS) + ")"
                for index in range(first, first + count))
        return found

    def _write(self, cursor: Any, head_sql: str, rows: list[dict[str, Any]],
               head: dict[str, Any]) -> bool:
        values = dict(head)
        for index, row in enumerate(rows):
            values.update({f"{name}_{index}": row[name] for name in EVENT_COLUMNS})
        if self._together:
            row0 = self._values(0, 1)[1:-1]
            cursor.execute(f"WITH moved AS ({head_sql} RETURNING 1) INSERT INTO {self._events} "
                           f"({self._columns}) SELECT {row0} FROM moved", values)
            if cursor.rowcount != 1:
                return False
            rest = rows[1:]
            first = 1
        else:
            cursor.execute(head_sql, values)
            if cursor.rowcount != 1:
                return False
            rest, first = rows, 0
        if rest:
            cursor.execute(f"INSERT INTO {self._events} ({self._columns}) VALUES "
                           f"{self._values(first, len(rest))}", values)
        return True

    def advance(self, cursor: Any, rows: list[dict[str, Any]], old_length: int,
                prev_hash: str | None, *, unsealed_only: bool = True) -> bool:
        """Move the head from (``old_length``, ``prev_hash``) to the last of ``rows`` and
        insert them; False, with nothing written, when the head is not there any more (or is
        sealed, with ``unsealed_only``)."""
        head = {"chain": rows[0]["chain"], "head_hash": rows[-1]["hash"],
                "old_length": old_length, "new_length": old_length + len(rows),
                "prev_hash": prev_hash}
        sql = self._advance[(old_length > 0, unsealed_only)]
        return self._write(cursor, sql, rows, head)

    def start(self, cursor: Any, rows: list[dict[str, Any]]) -> bool:
        """Create the chain's head at its first events and insert them; False, with nothing
        written, when the chain already has a head."""
        head = {"chain": rows[0]["chain"], "head_hash": rows[-1]["hash"],
                "new_length": len(rows)}
        return self._write(cursor, self._start, rows, head)

    def lock_head(self, cursor: Any, chain: str) -> tuple[str | None, int, str | None] | None:
        """The chain head's ``(last_hash, length, sealed)``, locked for this transaction;
        None if missing."""
        cursor.execute(self._lock, {"chain": chain})
        row = cursor.fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])


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
