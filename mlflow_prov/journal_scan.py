"""Stream journal rows undecoded, for readers that go through many events at once.

Why: :func:`mlflow_prov.journal.read_events_page` decodes every row into a
:class:`~mlflow_prov.journal.JournalEvent` (two JSON documents, a kind lookup, a dataclass);
``mlflow-prov log`` over 100,000 events and a timeline page folding a run's 100,000 metric
events spend most of their time there, on writers that repeat and payloads they may only
skim. :func:`scan_rows` yields the stored columns as they are, in keyset pages (each page is
one short query, so no read transaction stays open while the caller prints), filtered in SQL
on the same indexed columns as ``read_events_page``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import sqlalchemy as sa

from mlflow_prov.journal import (
    JOURNAL_TABLE,
    JournalUnavailableError,
    _engine_for,
    _stored_spellings,
    events_table,
)

SCAN_PAGE = 5000


class RawEvent(NamedTuple):
    """One journal row as stored: ``payload`` and ``writer`` are JSON text, ``kind`` the
    stored spelling (:func:`mlflow_prov.vocabulary.parse_kind` reads legacy ones)."""

    seq: int
    time_us: int
    chain: str
    experiment_id: str | None
    run_id: str | None
    kind: str
    payload: str
    writer: str
    prev_hash: str | None
    hash: str


_COLUMNS = [events_table.c[name] for name in RawEvent._fields]


def scan_rows(tracking_uri: str, *, experiment_id: str | None = None,
              run_id: str | None = None, kinds: list[str] | None = None,
              since_us: int | None = None, until_us: int | None = None,
              after_seq: int | None = None, payload_contains: str | None = None,
              page: int = SCAN_PAGE) -> Iterator[RawEvent]:
    """Every row after ``after_seq`` that passes the filters, in ``seq`` order, ``page`` rows
    per query. Raises :class:`JournalUnavailableError` where there is no journal table."""
    engine = _engine_for(tracking_uri)
    if not sa.inspect(engine).has_table(JOURNAL_TABLE):
        raise JournalUnavailableError(f"{tracking_uri!r} has no provenance journal table yet")
    columns = events_table.c
    query = sa.select(*_COLUMNS).order_by(columns.seq).limit(page)
    if experiment_id is not None:
        query = query.where(columns.experiment_id == str(experiment_id))
    if run_id is not None:
        query = query.where(columns.run_id == run_id)
    if kinds:
        query = query.where(columns.kind.in_(_stored_spellings(kinds)))
    if since_us is not None:
        query = query.where(columns.time_us >= since_us)
    if until_us is not None:
        query = query.where(columns.time_us <= until_us)
    if payload_contains:
        query = query.where(columns.payload.contains(payload_contains, autoescape=True))
    query = query.where(columns.seq > sa.bindparam("after_seq"))
    after = -1 if after_seq is None else after_seq
    while True:
        with engine.connect() as connection:
            rows = connection.execute(query, {"after_seq": after}).all()
        for row in rows:
            yield RawEvent._make(row)
        if len(rows) < page:
            return
        after = rows[-1][0]


# --- stretches of metric events ---------------------------------------------------------------
# Where a timeline folds a run's consecutive metric events, the database sums the stretch: a
# run of 100,000 ``log_metric`` calls is two aggregate queries, not 100,000 JSON documents
# decoded in Python. Databases without these JSON functions get None and the caller folds
# the rows itself.


class KeyStats(NamedTuple):
    """One metric key over a stretch: events naming it, those that named it alone and their
    values, its step range and its first and last event time."""

    key: str
    events: int
    single_events: int
    single_values: int
    step_min: int | None
    step_max: int | None
    first_us: int
    last_us: int


class StretchStats(NamedTuple):
    """A stretch of one writer's consecutive metric events of a run: where it ends, its
    totals and its keys."""

    last_seq: int
    events: int
    values: int
    step_min: int | None
    step_max: int | None
    first_us: int
    last_us: int
    keys: list[KeyStats]


_METRIC_KINDS = _stored_spellings(["run.metrics_logged"])
_STRETCH_WHERE = """run_id = :run_id AND seq >= :first_seq AND kind IN :metric_kinds
  AND writer = :writer AND (CAST(:since_us AS BIGINT) IS NULL OR time_us >= :since_us)
  AND (CAST(:until_us AS BIGINT) IS NULL OR time_us <= :until_us)"""
_TOTALS = {
    "sqlite": """SELECT max(seq), count(*), sum(json_extract(payload, '$.count')),
  min(json_extract(payload, '$.step_min')), max(json_extract(payload, '$.step_max')),
  min(time_us), max(time_us) FROM prov_journal WHERE {where}""",
    "postgresql": """SELECT max(seq), count(*), sum((CAST(payload AS jsonb)->>'count')::bigint),
  min((CAST(payload AS jsonb)->>'step_min')::bigint),
  max((CAST(payload AS jsonb)->>'step_max')::bigint),
  min(time_us), max(time_us) FROM prov_journal WHERE {where}""",
}
_KEYS = {
    "sqlite": """SELECT k.value, count(*),
  sum(CASE WHEN json_array_length(j.payload, '$.keys') = 1 THEN 1 ELSE 0 END),
  sum(CASE WHEN json_array_length(j.payload, '$.keys') = 1
      THEN json_extract(j.payload, '$.count') ELSE 0 END),
  min(json_extract(j.payload, '$.step_min')), max(json_extract(j.payload, '$.step_max')),
  min(j.time_us), max(j.time_us)
FROM prov_journal AS j, json_each(j.payload, '$.keys') AS k WHERE {where} GROUP BY k.value""",
    "postgresql": """SELECT k.key, count(*),
  sum(CASE WHEN jsonb_array_length(j.p->'keys') = 1 THEN 1 ELSE 0 END),
  sum(CASE WHEN jsonb_array_length(j.p->'keys') = 1 THEN (j.p->>'count')::bigint ELSE 0 END),
  min((j.p->>'step_min')::bigint), max((j.p->>'step_max')::bigint),
  min(j.time_us), max(j.time_us)
FROM (SELECT CAST(payload AS jsonb) AS p, time_us FROM prov_journal WHERE {where}) AS j,
  jsonb_array_elements_text(j.p->'keys') AS k(key) GROUP BY k.key""",
}


def stretch_end(tracking_uri: str, run_id: str, first_seq: int, *,
                kinds: list[str] | None = None, since_us: int | None = None,
                until_us: int | None = None) -> tuple[int | None, str]:
    """Where the stretch of metric events starting at ``first_seq`` breaks: the seq of the
    run's first later event (among those ``kinds`` and times) that is no metric event or
    comes from another writer (None: none does), and the stretch's writer as stored."""
    engine = _engine_for(tracking_uri)
    columns = events_table.c
    with engine.connect() as connection:
        writer = connection.execute(sa.select(columns.writer)
                                    .where(columns.seq == first_seq)).scalar_one()
        query = (sa.select(sa.func.min(columns.seq))
                 .where(columns.run_id == run_id, columns.seq > first_seq,
                        sa.or_(columns.kind.not_in(_METRIC_KINDS), columns.writer != writer)))
        if kinds:
            query = query.where(columns.kind.in_(_stored_spellings(kinds)))
        if since_us is not None:
            query = query.where(columns.time_us >= since_us)
        if until_us is not None:
            query = query.where(columns.time_us <= until_us)
        return connection.execute(query).scalar(), writer


def stretch_stats(tracking_uri: str, run_id: str, first_seq: int, end_seq: int | None,
                  writer: str, *, since_us: int | None = None,
                  until_us: int | None = None) -> StretchStats | None:
    """Totals and per-key figures of the run's metric events from ``writer`` (stored text)
    with ``first_seq <= seq < end_seq`` (to the last event when ``end_seq`` is None); None
    where the database has no JSON functions this knows."""
    engine = _engine_for(tracking_uri)
    dialect = engine.dialect.name
    if dialect not in _TOTALS:
        return None
    where = _STRETCH_WHERE + ("" if end_seq is None else " AND seq < :end_seq")
    params = {"run_id": run_id, "first_seq": first_seq, "metric_kinds": _METRIC_KINDS,
              "writer": writer, "since_us": since_us, "until_us": until_us, "end_seq": end_seq}
    totals_sql = sa.text(_TOTALS[dialect].format(where=where)).bindparams(
        sa.bindparam("metric_kinds", expanding=True))
    keys_sql = sa.text(_KEYS[dialect].format(where=where)).bindparams(
        sa.bindparam("metric_kinds", expanding=True))
    with engine.connect() as connection:
        totals = connection.execute(totals_sql, params).one()
        keys = [KeyStats(str(row[0]), int(row[1]), int(row[2] or 0), int(row[3] or 0),
                         _int(row[4]), _int(row[5]), int(row[6]), int(row[7]))
                for row in connection.execute(keys_sql, params)]
    last_seq, events, values, step_min, step_max, first_us, last_us = totals
    return StretchStats(int(last_seq), int(events), _int(values) or 0, _int(step_min),
                        _int(step_max), int(first_us), int(last_us), keys)


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
