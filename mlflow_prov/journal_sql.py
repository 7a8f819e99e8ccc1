"""The journal's per-write statements, compiled once per dialect and run on the DB-API cursor.

Why: every journaled write runs three statements (lock the chain's head, insert the event,
advance the head). Through SQLAlchemy's ``Connection.execute`` each costs tens of
microseconds of Python (cache lookup, parameter processing, result wrapping) besides the
database's own work, as much as sqlite takes to run it; the same SQL text, compiled by the
same dialect and executed on the same connection's cursor (so in the same transaction), costs
a few. On PostgreSQL the event insert and the head update go in one statement (a
data-modifying ``WITH``), one round trip fewer per write.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

_EVENT_COLUMNS = ("time_us", "chain", "experiment_id", "run_id", "kind", "payload", "writer",
                  "prev_hash", "hash")


class _Compiled:
    """One statement's SQL text for a dialect, and how to order its parameters."""

    def __init__(self, statement: Any, dialect: sa.Dialect,
                 column_keys: tuple[str, ...] | None = None) -> None:
        compiled = statement.compile(dialect=dialect,
                                     column_keys=list(column_keys) if column_keys else None)
        self.sql: str = compiled.string
        self.order: list[str] | None = (list(compiled.positiontup)
                                        if compiled.positiontup is not None else None)
        self.defaults: dict[str, Any] = dict(compiled.params)

    def named(self, values: dict[str, Any]) -> dict[str, Any]:
        """The parameters by name (what a statement with named placeholders takes)."""
        return {**self.defaults, **values}

    def parameters(self, values: dict[str, Any]) -> tuple | dict[str, Any]:
        merged = self.named(values)
        return tuple(merged[name] for name in self.order) if self.order is not None else merged


class JournalStatements:
    """The journal's hot statements for one dialect (see the module docstring)."""

    def __init__(self, dialect: sa.Dialect, select_head: Any, insert_event: Any,
                 advance_head: Any) -> None:
        self._select_head = _Compiled(select_head, dialect)
        self._insert_event = _Compiled(insert_event, dialect, _EVENT_COLUMNS)
        self._advance_head = _Compiled(advance_head, dialect)
        # the head's length, read without a lock
        length = next(column for column in select_head.selected_columns
                      if column.name == "length")
        self._head_length = _Compiled(sa.select(length).where(select_head.whereclause),
                                      dialect)
        self._combined: str | None = None
        if dialect.name == "postgresql" and self._insert_event.order is None:
            self._combined = f"WITH appended AS ({self._insert_event.sql}) {self._advance_head.sql}"

    def lock_head(self, cursor: Any, chain: str
                  ) -> tuple[str | None, str | None, int, int | None, str | None] | None:
        """The chain head's ``(last_hash, state, length, state_at, sealed)``, locked for this
        transaction; None if missing."""
        cursor.execute(self._select_head.sql,
                       self._select_head.parameters({"head_chain": chain}))
        return cursor.fetchone()

    def chain_length(self, cursor: Any, chain: str) -> int | None:
        """The chain head's length, unlocked; None if the head is missing."""
        cursor.execute(self._head_length.sql,
                       self._head_length.parameters({"head_chain": chain}))
        head = cursor.fetchone()
        return None if head is None else int(head[0])

    def append(self, cursor: Any, event: dict[str, Any], chain: str, digest: str,
               state: str | None, state_at: int | None) -> None:
        """Insert the event and advance its chain's head to it, with the state it keeps."""
        head = {"head_chain": chain, "new_hash": digest, "new_state": state,
                "new_state_at": state_at}
        if self._combined is not None:
            # built only when both statements take named parameters (see __init__)
            cursor.execute(self._combined, {**self._insert_event.named(event),
                                            **self._advance_head.named(head)})
            return
        cursor.execute(self._insert_event.sql, self._insert_event.parameters(event))
        cursor.execute(self._advance_head.sql, self._advance_head.parameters(head))


_compiled: dict[str, JournalStatements] = {}
_compiled_lock = threading.Lock()


def statements_for(dialect: sa.Dialect, select_head: Any, insert_event: Any,
                   advance_head: Any) -> JournalStatements:
    """The compiled statements for ``dialect`` (built on first use, then shared)."""
    key = f"{dialect.name}+{dialect.driver}"
    found = _compiled.get(key)
    if found is None:
        with _compiled_lock:
            found = _compiled.setdefault(key, JournalStatements(dialect, select_head,
                                                                insert_event, advance_head))
    return found
