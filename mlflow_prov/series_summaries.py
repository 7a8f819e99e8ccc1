"""Per-series metric summaries kept by the database itself, for exports in O(series).

Why: a PROV document states, per metric series, its count, step and time range and NaN-free
min/max; computing them at export time reads every point (about a second per million points
on a loaded 2-core machine), so document-only exports grew with the points. A trigger on
MLflow's ``metrics`` table keeps one row per (run, key) up to date inside the same statement
as MLflow's insert: the summary commits or rolls back with the point, whatever the writer
(MLflow through this store, plain MLflow on the same database, a raw insert).

A point deleted or changed (MLflow deletes metric rows only when it purges a run) marks its
series ``stale``; readers then aggregate that series from ``metrics`` as before. Installed on
prov sqlite stores when they open; an existing store is back-filled in the same transaction
that creates the triggers, so no point can slip between the two.

The same rows tell an export which series it must rehash to claim ``journalIntact``
(:func:`series_marks`): a series whose count equals the journal's and that no update or delete
touched since it was written needs no second reading; a stale one does. When the triggers were
missing (a table rebuild, someone dropping them, a store older than the summaries), the
back-fill is right about the points but cannot know what happened to them meanwhile, so it
marks every series it fills in :data:`UNWATCHED`: documents may use its summary, an integrity
check must read its rows. ``stale`` holds :data:`WATCHED`, :data:`CHANGED` or
:data:`UNWATCHED`.
Nothing protects this table itself: someone who edits a point *and* its summary row is found
only by rehashing every row (``mlflow-prov verify``, ``export --verify-metrics``), which also
compares each summary with the rows it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import stored_integer

SUMMARY_TABLE = "prov_metric_series"
WATCHED, CHANGED, UNWATCHED = 0, 1, 2  # the ``stale`` column's values

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {SUMMARY_TABLE} (
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
    PRIMARY KEY (run_uuid, key)
)"""

# sqlite's two-argument MIN/MAX return NULL when either side is NULL (an all-NaN series so
# far): keep the other side then.
_NUMBER = "CASE WHEN NEW.is_nan THEN NULL ELSE NEW.value END"
_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER IF NOT EXISTS {SUMMARY_TABLE}_insert AFTER INSERT ON metrics
BEGIN
    INSERT INTO {SUMMARY_TABLE} (run_uuid, key, count, first_step, last_step, first_timestamp,
                                 last_timestamp, min_value, max_value)
    VALUES (NEW.run_uuid, NEW.key, 1, NEW.step, NEW.step, NEW.timestamp, NEW.timestamp,
            {_NUMBER}, {_NUMBER})
    ON CONFLICT (run_uuid, key) DO UPDATE SET
        count = count + 1,
        first_step = MIN(first_step, excluded.first_step),
        last_step = MAX(last_step, excluded.last_step),
        first_timestamp = MIN(first_timestamp, excluded.first_timestamp),
        last_timestamp = MAX(last_timestamp, excluded.last_timestamp),
        min_value = COALESCE(MIN(min_value, excluded.min_value), min_value,
                             excluded.min_value),
        max_value = COALESCE(MAX(max_value, excluded.max_value), max_value,
                             excluded.max_value);
END""",
    f"""CREATE TRIGGER IF NOT EXISTS {SUMMARY_TABLE}_delete AFTER DELETE ON metrics
BEGIN
    UPDATE {SUMMARY_TABLE} SET stale = 1 WHERE run_uuid = OLD.run_uuid AND key = OLD.key;
END""",
    f"""CREATE TRIGGER IF NOT EXISTS {SUMMARY_TABLE}_update AFTER UPDATE ON metrics
BEGIN
    UPDATE {SUMMARY_TABLE} SET stale = 1 WHERE run_uuid = OLD.run_uuid AND key = OLD.key;
    UPDATE {SUMMARY_TABLE} SET stale = 1 WHERE run_uuid = NEW.run_uuid AND key = NEW.key;
END""",
)
_BACKFILL = f"""
INSERT INTO {SUMMARY_TABLE} (run_uuid, key, count, first_step, last_step, first_timestamp,
                             last_timestamp, min_value, max_value)
SELECT run_uuid, key, COUNT(*), MIN(step), MAX(step), MIN(timestamp), MAX(timestamp),
       MIN(CASE WHEN is_nan THEN NULL ELSE value END),
       MAX(CASE WHEN is_nan THEN NULL ELSE value END)
FROM metrics WHERE run_uuid IS NOT NULL GROUP BY run_uuid, key"""


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
                driver.execute(_CREATE_TABLE)
                # a table rebuild (a migration) drops triggers but may keep the summaries:
                # start again from the points rather than trust rows nobody kept up to date,
                # and mark what was back-filled: nobody watched those points change
                driver.execute(f"DELETE FROM {SUMMARY_TABLE}")
                if driver.execute(_BACKFILL).rowcount > 0:
                    driver.execute(f"UPDATE {SUMMARY_TABLE} SET stale = {UNWATCHED}")
                for trigger in _SQLITE_TRIGGERS:
                    driver.execute(trigger)
            driver.execute("COMMIT")
        except BaseException:
            driver.execute("ROLLBACK")
            raise
    finally:
        raw.close()
    return True


def installed(connection: Any) -> bool:
    """Whether a sqlite DB-API connection's database keeps series summaries (all triggers)."""
    found = connection.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND "
                               f"name LIKE '{SUMMARY_TABLE}_%'").fetchone()[0]
    return found == len(_SQLITE_TRIGGERS)


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


def series_marks(connection: sa.Connection, run_id: str) -> dict[str, SeriesMark] | None:
    """Per key, the trigger-kept mark of one run's series, or ``None`` when this store keeps
    no summaries (not sqlite, or the triggers are gone): then only reading every row tells."""
    if connection.dialect.name != "sqlite":
        return None
    driver = connection.connection.driver_connection
    if driver is None or not installed(driver):
        return None
    return {key: SeriesMark(int(count), stored_integer(step0), stored_integer(step1),
                            stored_integer(time0), stored_integer(time1), _number(low),
                            _number(high), stale == CHANGED, stale == WATCHED)
            for key, count, step0, step1, time0, time1, low, high, stale
            in connection.execute(_MARKS_SQL, {"run_id": run_id})}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
