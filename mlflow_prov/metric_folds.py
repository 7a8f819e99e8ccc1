"""Per-run, per-key counts of a run's metric events, kept in the journal's transaction.

Why: the ``/prov/`` run page folds a run's consecutive metric events into one row per key
(count, steps, time span; :mod:`exporters.timeline`). Summing them at read time decodes every
payload of the stretch: about half a second for 100,000 ``log_metric`` events on sqlite and
seconds on PostgreSQL, on the first visit of the page. A write that journals metric events
adds them here instead, in one more statement of its own transaction (whatever its number of
keys), so the page reads the figures of a run that logged metrics in one stretch in two short
indexed statements (:func:`read_folds` and :func:`mlflow_prov.journal_scan.whole_stretch`).

One row per (run, key), and the run's totals under the key ``""`` (MLflow refuses an empty
metric name). ``writer`` is the stored writer of every event counted, or ``""`` once two
writers logged metrics to the run: a fold is one writer's. The figures are those of
:class:`mlflow_prov.journal_scan.KeyStats`. Kept on sqlite and PostgreSQL (their ``ON
CONFLICT``); other databases, and journals written before the table existed, have no rows or
incomplete ones, and readers check the rows against the journal before they use them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mlflow_prov.vocabulary import EventKind

FOLDS_TABLE = "prov_metric_folds"
TOTAL = ""  # the key of a run's totals row
KEPT_ON = ("sqlite", "postgresql")
COLUMNS = ("run_id", "key", "writer", "events", "single_events", "single_values", "step_min",
           "step_max", "first_us", "last_us")

folds_metadata = sa.MetaData()
folds_table = sa.Table(
    FOLDS_TABLE, folds_metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("writer", sa.Text, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("single_events", sa.BigInteger, nullable=False),
    sa.Column("single_values", sa.BigInteger, nullable=False),
    sa.Column("step_min", sa.BigInteger, nullable=True),
    sa.Column("step_max", sa.BigInteger, nullable=True),
    sa.Column("first_us", sa.BigInteger, nullable=False),
    sa.Column("last_us", sa.BigInteger, nullable=False),
)


def ensure_table(engine: sa.engine.Engine) -> None:
    """Create the table where the journal keeps it (sqlite, PostgreSQL)."""
    if engine.dialect.name in KEPT_ON:
        folds_metadata.create_all(engine, checkfirst=True)


@dataclass
class _Counts:
    writer: str
    events: int = 0
    single_events: int = 0
    single_values: int = 0
    step_min: int | None = None
    step_max: int | None = None
    first_us: int = 0
    last_us: int = 0

    def add(self, single: bool, count: int, low: int | None, high: int | None,
            time_us: int) -> None:
        if not self.events:
            self.first_us = time_us
        self.events += 1
        self.single_events += single
        self.single_values += count if single else 0
        self.step_min = _pick(min, self.step_min, low)
        self.step_max = _pick(max, self.step_max, high)
        self.last_us = time_us


def _pick(how: Any, a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else how(a, b)


def _step(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def fold_rows(rows: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]
              ) -> list[dict[str, Any]]:
    """The counter rows a write adds, summed per run and key, from its journal rows as
    inserted (``kind``, ``run_id``, stored ``writer``, ``time_us``) each with its payload;
    none when no row is a run's metric event."""
    counts: dict[tuple[str, str], _Counts] = {}
    for row, payload in rows:
        if row["kind"] != EventKind.RUN_METRICS_LOGGED or not row["run_id"]:
            continue
        keys = [str(key) for key in payload.get("keys") or ()]
        count = payload.get("count")
        count = count if isinstance(count, int) else len(keys)
        low, high = _step(payload.get("step_min")), _step(payload.get("step_max"))
        for key, single in ((TOTAL, True), *((key, len(keys) == 1) for key in keys)):
            found = counts.setdefault((row["run_id"], key), _Counts(row["writer"]))
            found.add(single, count, low, high, row["time_us"])
    return [{"run_id": run_id, "key": key, **vars(found)}
            for (run_id, key), found in counts.items()]


def upsert_sql(dialect: sa.Dialect, count: int) -> str | None:
    """The one statement adding ``count`` counter rows (their values named ``<column>_<i>``,
    in the marks the driver takes), or None where this database keeps no counters."""
    if dialect.name not in KEPT_ON:
        return None
    low, high = (("least", "greatest") if dialect.name == "postgresql" else ("min", "max"))
    old, new = FOLDS_TABLE, "excluded"

    def bound(how: str, name: str) -> str:
        return (f"{how}(COALESCE({old}.{name}, {new}.{name}), "
                f"COALESCE({new}.{name}, {old}.{name}))")

    mark = ((lambda name: f":{name}") if dialect.paramstyle in ("named", "qmark")
            else (lambda name: f"%({name})s"))
    values = ", ".join("(" + ", ".join(mark(f"{name}_{index}") for name in COLUMNS) + ")"
                       for index in range(count))
    return (f"INSERT INTO {FOLDS_TABLE} ({', '.join(COLUMNS)}) VALUES {values} "
            "ON CONFLICT (run_id, key) DO UPDATE SET "
            f"writer = CASE WHEN {old}.writer = {new}.writer THEN {old}.writer ELSE '' END, "
            f"events = {old}.events + {new}.events, "
            f"single_events = {old}.single_events + {new}.single_events, "
            f"single_values = {old}.single_values + {new}.single_values, "
            f"step_min = {bound(low, 'step_min')}, step_max = {bound(high, 'step_max')}, "
            f"first_us = {low}({old}.first_us, {new}.first_us), "
            f"last_us = {high}({old}.last_us, {new}.last_us)")


def add_counts(dialect: sa.Dialect, cursor: Any, rows: list[dict[str, Any]]) -> None:
    """Add the counter rows of :func:`fold_rows` on the write's own DB-API cursor (its
    transaction), in one statement; nothing where none or where no counters are kept."""
    sql = upsert_sql(dialect, len(rows)) if rows else None
    if sql is None:
        return
    cursor.execute(sql, {f"{name}_{index}": row[name] for index, row in enumerate(rows)
                         for name in COLUMNS})


@dataclass(frozen=True)
class RunFolds:
    """A run's counted metric events: the totals row and one row per key, by name."""

    total: tuple[Any, ...]
    keys: list[tuple[Any, ...]]


_with_table: weakref.WeakSet[sa.engine.Engine] = weakref.WeakSet()


def _has_table(connection: sa.Connection) -> bool:
    """Whether the store keeps counters, asked once per engine (a table once made stays), so
    a page view reads the counters and nothing about the schema."""
    if connection.engine in _with_table:
        return True
    if not sa.inspect(connection).has_table(FOLDS_TABLE):
        return False
    _with_table.add(connection.engine)
    return True


def read_folds(connection: sa.Connection, run_id: str) -> RunFolds | None:
    """The run's counter rows (each as :data:`COLUMNS` after ``run_id``), None where it has
    none or no counters are kept."""
    if connection.dialect.name not in KEPT_ON or not _has_table(connection):
        return None
    columns = folds_table.c
    rows = connection.execute(
        sa.select(*(columns[name] for name in COLUMNS[1:]))
        .where(columns.run_id == run_id).order_by(columns.key)).all()
    totals = [tuple(row) for row in rows if row[0] == TOTAL]
    if not totals:
        return None
    return RunFolds(totals[0], [tuple(row) for row in rows if row[0] != TOTAL])
