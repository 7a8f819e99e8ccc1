"""Per-series metric summaries, kept by the journal's own statements, for exports in O(series).

Why: a PROV document states, per metric series, its count, step and time range and NaN-free
min/max; computing them at export time reads every point (about a second per million points
on a loaded 2-core machine), so document-only exports grew with the points. One row per
(run, key) holds them.

Who keeps them: each transaction that journals metrics runs one more statement,
:func:`catch_up`, which folds into the run's summaries every ``metrics`` row of the run above
the run's *mark* (the largest rowid already folded in) and moves the mark. sqlite numbers new
rows above every existing one, so the rows above the mark are exactly those written since the
run's last journaled metric write: this one's, and any written behind the journal's back (a
plain MLflow on the same database, a raw insert), which therefore still count, as they did
when a trigger on ``metrics`` kept the summaries. That trigger ran per inserted row; a
1,000-metric batch now costs one statement. Rows written behind the journal's back *after* the
run's last journaled write are above the mark until the next one: :func:`series_marks` and the
fast read path (:data:`UNACCOUNTED_KEYS_SQL`) treat their series as changed.

A point deleted or changed (MLflow deletes metric rows only when it purges a run) marks its
series ``stale`` through triggers on ``metrics`` that fire only on deletes and updates; readers
then aggregate that series from ``metrics`` as before. Installed on prov sqlite stores when
they open; an existing store is back-filled in the transaction that creates the table, and a
store whose summaries an insert trigger kept (earlier versions) keeps them, with its marks set.

The same rows tell an export which series it must rehash to claim ``journalIntact``
(:func:`series_marks`): a series whose count equals the journal's and that no update or delete
touched since it was written needs no second reading; a stale one does. When the triggers were
missing (a table rebuild, someone dropping them, a store older than the summaries), the
back-fill is right about the points but cannot know what happened to them meanwhile, so it
marks every series it fills in :data:`UNWATCHED`: documents may use its summary, an integrity
check must read its rows. ``stale`` holds :data:`WATCHED`, :data:`CHANGED` or
:data:`UNWATCHED`.
Nothing protects this table itself: someone who edits a point *and* its summary row (or its
mark) is found only by rehashing every row (``mlflow-prov verify``, ``export
--verify-metrics``), which also compares each summary with the rows it describes. The marks
rely on sqlite's rowids growing; sqlite documents that ``VACUUM`` may renumber the rows of a
table without an integer primary key (3.40 keeps them): rows renumbered below a mark are not
folded in, their count then differs from the journal's and the export rehashes the series.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import stored_integer

SUMMARY_TABLE = "prov_metric_series"
WATCHED, CHANGED, UNWATCHED = 0, 1, 2  # the ``stale`` column's values
MARK_COLUMN = "last_rowid"

_CREATE_TABLE = f"""
CREATE TABLE {SUMMARY_TABLE} (
    run_uuid VARCHAR(32) NOT NULL,
    key VARCHAR(250) NOT NULL,
    count BIGINT NOT NULL,
    first_step BIGINT NOT NULL,
    last_step BIGINT NOT NULL,
    first_timestamp BIGINT NOT NULL,
    last_timestamp BIGINT NOT NULL,
    min_value FLOAT,
    max_value FLOAT,
    stale INTEGER NOT NULL DEFAULT 0,
    {MARK_COLUMN} BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, key)
)"""

# The run's mark: the largest rowid of its metric rows already in its summaries.
_RUN_MARK = (f"(SELECT COALESCE(MAX({MARK_COLUMN}), 0) FROM {SUMMARY_TABLE} "
             "WHERE run_uuid = {p})")
# MLflow's index on metrics(run_uuid): every sqlite index ends with the rowid, so it finds a
# run's rows above a mark without reading the others. Named, because once ANALYZE has run
# the planner prefers the (run_uuid, key, step) index and reads all of the run's rows.
RUN_ROWS_INDEX = "index_metrics_run_uuid"
_RUN_ROWS = f"metrics m INDEXED BY {RUN_ROWS_INDEX}"
# The keys of a run with rows not yet in its summaries ({p}: the run id, bound twice).
UNACCOUNTED_KEYS_SQL = (f"SELECT m.key FROM {_RUN_ROWS} WHERE m.run_uuid = {{p}} "
                        "AND m.rowid > " + _RUN_MARK)
_AGGREGATES = """COUNT(*), MIN(step), MAX(step), MIN(timestamp), MAX(timestamp),
       MIN(CASE WHEN is_nan THEN NULL ELSE value END),
       MAX(CASE WHEN is_nan THEN NULL ELSE value END), MAX(rowid)"""
_COLUMNS = ("run_uuid, key, count, first_step, last_step, first_timestamp, last_timestamp, "
            f"min_value, max_value, {MARK_COLUMN}")
# sqlite's two-argument MIN/MAX return NULL when either side is NULL (an all-NaN series so
# far): keep the other side then.
_CATCH_UP = f"""
INSERT INTO {SUMMARY_TABLE} ({_COLUMNS})
SELECT run_uuid, key, {_AGGREGATES}
FROM {_RUN_ROWS} WHERE m.run_uuid = ?1 AND m.rowid > {_RUN_MARK.format(p="?1")}
GROUP BY key
ON CONFLICT (run_uuid, key) DO UPDATE SET
    count = count + excluded.count,
    first_step = MIN(first_step, excluded.first_step),
    last_step = MAX(last_step, excluded.last_step),
    first_timestamp = MIN(first_timestamp, excluded.first_timestamp),
    last_timestamp = MAX(last_timestamp, excluded.last_timestamp),
    min_value = COALESCE(MIN(min_value, excluded.min_value), min_value, excluded.min_value),
    max_value = COALESCE(MAX(max_value, excluded.max_value), max_value, excluded.max_value),
    {MARK_COLUMN} = excluded.{MARK_COLUMN}"""
_TRIGGER_NAMES = frozenset({f"{SUMMARY_TABLE}_delete", f"{SUMMARY_TABLE}_update"})
_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER {SUMMARY_TABLE}_delete AFTER DELETE ON metrics
BEGIN
    UPDATE {SUMMARY_TABLE} SET stale = 1 WHERE run_uuid = OLD.run_uuid AND key = OLD.key;
END""",
    f"""CREATE TRIGGER {SUMMARY_TABLE}_update AFTER UPDATE ON metrics
BEGIN
    UPDATE {SUMMARY_TABLE} SET stale = 1 WHERE run_uuid = OLD.run_uuid AND key = OLD.key;
    UPDATE {SUMMARY_TABLE} SET stale = 1 WHERE run_uuid = NEW.run_uuid AND key = NEW.key;
END""",
)
_OLD_INSERT_TRIGGER = f"{SUMMARY_TABLE}_insert"  # how versions before the marks kept them
# MLflow's own index, as MLflow defines it (the marks need it: see RUN_ROWS_INDEX)
_RUN_ROWS_INDEX_DDL = f"CREATE INDEX IF NOT EXISTS {RUN_ROWS_INDEX} ON metrics (run_uuid)"
_BACKFILL = f"""
INSERT INTO {SUMMARY_TABLE} ({_COLUMNS})
SELECT run_uuid, key, {_AGGREGATES}
FROM metrics WHERE run_uuid IS NOT NULL GROUP BY run_uuid, key"""
_SET_MARKS = f"""
UPDATE {SUMMARY_TABLE} SET {MARK_COLUMN} = COALESCE((SELECT MAX(m.rowid) FROM metrics m
    WHERE m.run_uuid = {SUMMARY_TABLE}.run_uuid AND m.key = {SUMMARY_TABLE}.key), 0)"""


def catch_up(connection: sa.Connection, run_id: str) -> None:
    """Fold the run's metric rows above its mark into its summaries, inside the caller's
    transaction (after the write's own inserts): one statement, whatever the rows' number."""
    cursor = connection.connection.cursor()  # the same DB-API connection: same transaction
    try:
        cursor.execute(_CATCH_UP, (run_id,))
    finally:
        cursor.close()


def install(engine: sa.engine.Engine) -> bool:
    """Create the summary table and its triggers on a sqlite store that lacks them, back-
    filling existing points in the same transaction; True if anything was installed.
    Other backends keep aggregating at read time."""
    if engine.dialect.name != "sqlite":
        return False
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if driver is None:  # a pooled raw connection always has one
            raise RuntimeError("no sqlite driver connection to install the summaries with")
        if installed(driver):
            return False
        driver.execute("BEGIN IMMEDIATE")  # writers wait: none slips between backfill and trigger
        try:
            if not installed(driver):
                if _trigger_names(driver) == {*_TRIGGER_NAMES, _OLD_INSERT_TRIGGER}:
                    _add_marks(driver)
                else:
                    _rebuild(driver)
            driver.execute("COMMIT")
        except BaseException:
            driver.execute("ROLLBACK")
            raise
    finally:
        raw.close()
    return True


def _add_marks(driver: Any) -> None:
    """Summaries an insert trigger kept up to the last row: keep them, set each series' mark."""
    driver.execute(_RUN_ROWS_INDEX_DDL)
    driver.execute(f"DROP TRIGGER {_OLD_INSERT_TRIGGER}")
    if not _has_mark_column(driver):  # an older writer may have put its trigger back since
        driver.execute(f"ALTER TABLE {SUMMARY_TABLE} ADD COLUMN {MARK_COLUMN} BIGINT NOT NULL "
                       "DEFAULT 0")
    driver.execute(_SET_MARKS)


def _rebuild(driver: Any) -> None:
    """Start again from the points rather than trust rows nobody kept up to date (a table
    rebuild by a migration drops triggers but may keep the summaries), and mark what was
    back-filled: nobody watched those points change."""
    for name in _trigger_names(driver):
        driver.execute(f"DROP TRIGGER {name}")
    driver.execute(_RUN_ROWS_INDEX_DDL)
    driver.execute(f"DROP TABLE IF EXISTS {SUMMARY_TABLE}")
    driver.execute(_CREATE_TABLE)
    if driver.execute(_BACKFILL).rowcount > 0:
        driver.execute(f"UPDATE {SUMMARY_TABLE} SET stale = {UNWATCHED}")
    for trigger in _SQLITE_TRIGGERS:
        driver.execute(trigger)


def _trigger_names(connection: Any) -> set[str]:
    return {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'metrics' "
        f"AND name LIKE '{SUMMARY_TABLE}%'")}


def installed(connection: Any) -> bool:
    """Whether a sqlite DB-API connection's database keeps series summaries as this version
    does (the table with its marks, the delete and update triggers, no insert trigger)."""
    if _trigger_names(connection) != _TRIGGER_NAMES:
        return False
    return has_marks(connection)


def has_marks(connection: Any) -> bool:
    """Whether the summary table exists with its marks, and the index that finds a run's rows
    above its mark (a DB-API connection or cursor)."""
    index = connection.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                               f"name = '{RUN_ROWS_INDEX}'").fetchone()[0]
    return _has_mark_column(connection) and index == 1


def _has_mark_column(connection: Any) -> bool:
    return connection.execute(f"SELECT COUNT(*) FROM pragma_table_info('{SUMMARY_TABLE}') "
                              f"WHERE name = '{MARK_COLUMN}'").fetchone()[0] == 1


@dataclass(frozen=True)
class SeriesMark:
    """What the summary row of one series says without reading its points: how many rows it
    holds, their step and time ranges and NaN-free min/max, and whether a row was updated or
    deleted since it was written (``changed``: the summary is outdated), or whether its points
    were back-filled unwatched (``watched`` false: the summary is right, its rows unproven)."""

    count: int
    first_step: int
    last_step: int
    first_timestamp: int
    last_timestamp: int
    min_value: float | None
    max_value: float | None
    changed: bool
    watched: bool


_MARKS_SQL = sa.text(f"SELECT key, count, first_step, last_step, first_timestamp, "
                     f"last_timestamp, min_value, max_value, stale FROM {SUMMARY_TABLE} "
                     "WHERE run_uuid = :run_id")
_UNACCOUNTED_SQL = sa.text(f"SELECT m.key, COUNT(*) FROM {_RUN_ROWS} "
                           "WHERE m.run_uuid = :run_id AND m.rowid > "
                           + _RUN_MARK.format(p=":run_id") + " GROUP BY m.key")


def series_marks(connection: sa.Connection, run_id: str) -> dict[str, SeriesMark] | None:
    """Per key, the kept mark of one run's series, or ``None`` when this store keeps no
    summaries (not sqlite, or the triggers are gone): then only reading every row tells.
    A series with rows not yet folded in (written behind the journal's back since the run's
    last journaled metric write) counts them and reads as changed."""
    if connection.dialect.name != "sqlite":
        return None
    driver = connection.connection.driver_connection
    if driver is None or not installed(driver):
        return None
    marks = {key: SeriesMark(int(count), stored_integer(step0), stored_integer(step1),
                             stored_integer(time0), stored_integer(time1), _number(low),
                             _number(high),
                             stale == CHANGED or byte_ordered(step0, step1, time0, time1),
                             stale == WATCHED)
             for key, count, step0, step1, time0, time1, low, high, stale
             in connection.execute(_MARKS_SQL, {"run_id": run_id})}
    for key, extra in connection.execute(_UNACCOUNTED_SQL, {"run_id": run_id}):
        known = marks.get(key)
        marks[key] = (SeriesMark(int(extra), 0, 0, 0, 0, None, None, True, True) if known is None
                      else replace(known, count=known.count + int(extra), changed=True))
    return marks


def byte_ordered(*bounds: Any) -> bool:
    """Whether a summary's MIN/MAX came from BLOBs (sqlite keeps a numpy integer step or
    timestamp as its bytes, and orders BLOBs by those bytes, not by number): such a range
    is not the series' range, so the series is read from its rows instead."""
    return any(isinstance(bound, bytes) for bound in bounds)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
