"""What the journal's SQL has to know about the database it runs on, said once.

Why a module: the journal head, the lineage nodes and the write path each insert a row
"unless it is there" and each treat MySQL apart. Written three times, the three drifted
(one of them forgot that SQLAlchemy names MariaDB's dialect ``mariadb``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


def is_mysql(dialect_name: str) -> bool:
    """MySQL or MariaDB: SQLAlchemy names the dialect after the URL's scheme."""
    return dialect_name in MYSQL_DIALECTS


ROWS_PER_STATEMENT = 500  # far below every database's limit on bound parameters


def insert_unless_present(connection: sa.Connection, table: sa.Table,
                          values: Mapping[str, Any]) -> None:
    """Insert ``values`` unless a row with the same key exists, in one statement where the
    database has one. A concurrent transaction inserting the same key is not an error: the
    first row stays."""
    insert_all_unless_present(connection, table, [values])


def insert_all_unless_present(connection: sa.Connection, table: sa.Table,
                              rows: Sequence[Mapping[str, Any]]) -> None:
    """:func:`insert_unless_present` for many rows, one statement per
    :data:`ROWS_PER_STATEMENT` of them where the database has one."""
    dialect = connection.dialect.name
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = [dict(row) for row in rows[start:start + ROWS_PER_STATEMENT]]
        if dialect == "postgresql":
            connection.execute(postgresql_insert(table).values(chunk).on_conflict_do_nothing())
        elif dialect == "sqlite":
            connection.execute(sqlite_insert(table).values(chunk).on_conflict_do_nothing())
        elif is_mysql(dialect):
            connection.execute(table.insert().prefix_with("IGNORE").values(chunk))
        else:
            for values in chunk:
                _insert_one_unless_present(connection, table, values)


def _insert_one_unless_present(connection: sa.Connection, table: sa.Table,
                               values: Mapping[str, Any]) -> None:
    key = list(table.primary_key.columns)
    present = connection.execute(sa.select(*key).where(
        *(column == values[column.name] for column in key))).first()
    if present is None:
        connection.execute(table.insert().values(**values))
