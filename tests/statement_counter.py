"""Count every SQL statement a store call runs, on sqlite and PostgreSQL.

Why not SQLAlchemy's ``before_cursor_execute``: the journal runs its statements on the DB-API
cursor (:mod:`mlflow_prov.journal_sql`), which SQLAlchemy's events never see, and sqlite runs
trigger programs inside a statement. So the counter sits below SQLAlchemy, on every DB-API
connection the engine hands out while it is active:

* sqlite: the connection's trace callback. It fires once when a statement starts and once
  more for each statement of each trigger program the statement runs, so work a trigger does
  per inserted row is counted per row; an ``executemany`` counts once per parameter row.
* PostgreSQL (psycopg 3): a cursor class that counts each ``execute`` and each parameter row
  of an ``executemany`` (one statement each on the server).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


class Statements(list):
    """The statements counted so far, in order (their SQL text)."""


def _counting_cursor(counted: Statements) -> type:
    import psycopg

    class CountingCursor(psycopg.Cursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            counted.append(str(query))
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            rows = list(params_seq)
            counted.extend(str(query) for _ in rows)
            return super().executemany(query, rows, **kwargs)

    return CountingCursor


@contextmanager
def count_statements(engine: sa.engine.Engine) -> Iterator[Statements]:
    """Yield a list that collects the SQL of every statement run on ``engine``'s connections
    checked out until the block ends (see the module docstring for what counts)."""
    counted = Statements()
    dialect = engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"no statement counter for {dialect}")
    cursor_class = _counting_cursor(counted) if dialect == "postgresql" else None
    watched: list[Any] = []

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        if dialect == "sqlite":
            driver.set_trace_callback(counted.append)
        else:
            driver.cursor_factory = cursor_class
        watched.append(driver)

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        _unwatch(driver, dialect)

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "checkin", on_checkin)
    try:
        yield counted
    finally:
        sa.event.remove(engine, "checkout", on_checkout)
        sa.event.remove(engine, "checkin", on_checkin)
        for driver in watched:
            _unwatch(driver, dialect)


def _unwatch(driver: Any, dialect: str) -> None:
    if dialect == "sqlite":
        driver.set_trace_callback(None)
    else:
        import psycopg

        driver.cursor_factory = psycopg.Cursor
