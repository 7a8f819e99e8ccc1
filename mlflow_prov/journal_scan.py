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

import json
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from mlflow_prov.journal import (
    JOURNAL_TABLE,
    JournalUnavailableError,
    _engine_for,
    _stored_spellings,
    events_table,
)
from mlflow_prov.metric_folds import read_folds

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



def scan_rows(tracking_uri: str, *, experiment_id: str | None = None,
              run_id: str | None = None, kinds: list[str] | None = None,
              since_us: int | None = None, until_us: int | None = None,
              after_seq: int | None = None, payload_contains: str | None = None,
              page: int = SCAN_PAGE) -> Iterator[RawEvent]:
    """Every row after ``after_seq`` that passes the filters, in ``seq`` order, ``page`` rows
    per query. Raises :class:`JournalUnavailableError` where there is no journal table."""
    return map(RawEvent._make, scan_columns(
        tracking_uri, RawEvent._fields, experiment_id=experiment_id, run_id=run_id,
        kinds=kinds, since_us=since_us, until_us=until_us, after_seq=after_seq,
        payload_contains=payload_contains, page=page))


def scan_columns(tracking_uri: str, names: Sequence[str], *, experiment_id: str | None = None,
                 run_id: str | None = None, kinds: list[str] | None = None,
                 since_us: int | None = None, until_us: int | None = None,
                 after_seq: int | None = None, payload_contains: str | None = None,
                 page: int = SCAN_PAGE) -> Iterator[tuple[Any, ...]]:
    """:func:`scan_rows` reading only the columns ``names`` (``seq`` first), as plain tuples.

    Why: a reader that prints a few columns of 100,000 rows (``log`` without ``--json``)
    spends as long having the driver build the strings of the columns it skips (two
    64-character hashes a row) as on the ones it shows."""
    if not names or names[0] != "seq":
        raise ValueError(f"scan_columns reads seq first (it pages by it), not {names!r}")
    engine = _engine_for(tracking_uri)
    if not sa.inspect(engine).has_table(JOURNAL_TABLE):
        raise JournalUnavailableError(f"{tracking_uri!r} has no provenance journal table yet")
    columns = events_table.c
    query = sa.select(*(columns[name] for name in names)).order_by(columns.seq).limit(page)
    if experiment_id is not None:
        query = query.where(columns.experiment_id == str(experiment_id))
    if run_id is not None:
        query = query.where(columns.run_id == run_id)
    query = _kinds_and_times(query, kinds, since_us, until_us)
    if payload_contains:
        query = query.where(columns.payload.contains(payload_contains, autoescape=True))
    query = query.where(columns.seq > sa.bindparam("after_seq", value=-1))
    # Compiled once and run on the driver's own cursor: SQLAlchemy's per-row result
    # processing would cost more than the rest of ``log``'s work on a row.
    compiled = query.compile(dialect=engine.dialect)
    after = -1 if after_seq is None else after_seq
    while True:
        state = compiled.construct_expanded_state({"after_seq": after})
        arguments: Any = (state.positional_parameters if compiled.positional
                          else state.parameters)
        with engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(state.statement, arguments)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1][0]


# --- stretches of metric events ---------------------------------------------------------------
# Where a timeline folds a run's consecutive metric events, the database sums the stretch: a
# run of 100,000 ``log_metric`` calls is one aggregate query, not 100,000 JSON documents
# decoded in Python. Databases without these JSON functions get None and the caller folds
# the rows itself. A stretch is history (the journal only grows), so a caller may keep what
# it summed and later sum only the events after it (:func:`merge_stretches`).


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
# One row per distinct key list of the stretch (a training loop logs a handful): its events,
# values, step range, first and last time and last seq. Each payload is parsed once per
# function call, so as few calls as give the figures.
_GROUPS = {
    "sqlite": """SELECT json_extract(payload, '$.keys'), count(*),
  sum(json_extract(payload, '$.count')), min(json_extract(payload, '$.step_min')),
  max(json_extract(payload, '$.step_max')), min(time_us), max(time_us), max(seq)
FROM prov_journal WHERE {where} GROUP BY 1""",
    "postgresql": """SELECT CAST(p->'keys' AS text), count(*), sum((p->>'count')::bigint),
  min((p->>'step_min')::bigint), max((p->>'step_max')::bigint), min(time_us), max(time_us),
  max(seq)
FROM (SELECT CAST(payload AS jsonb) AS p, time_us, seq FROM prov_journal WHERE {where}) AS j
GROUP BY 1""",
}


def _kinds_and_times(query: sa.Select, kinds: list[str] | None, since_us: int | None,
                     until_us: int | None) -> sa.Select:
    """``query`` limited to events of ``kinds`` (today's spellings and the legacy ones) and
    to the time range, each bound inclusive."""
    columns = events_table.c
    if kinds:
        query = query.where(columns.kind.in_(_stored_spellings(kinds)))
    if since_us is not None:
        query = query.where(columns.time_us >= since_us)
    if until_us is not None:
        query = query.where(columns.time_us <= until_us)
    return query


def stretch_end(tracking_uri: str, run_id: str, first_seq: int, *,
                kinds: list[str] | None = None, since_us: int | None = None,
                until_us: int | None = None) -> tuple[int | None, str]:
    """Where the stretch of metric events holding ``first_seq`` breaks: the seq of the
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
        query = _kinds_and_times(query, kinds, since_us, until_us)
        return connection.execute(query).scalar(), writer


def stretch_stats(tracking_uri: str, run_id: str, first_seq: int, end_seq: int | None,
                  writer: str, *, since_us: int | None = None,
                  until_us: int | None = None) -> StretchStats | None:
    """Totals and per-key figures of the run's metric events from ``writer`` (stored text)
    with ``first_seq <= seq < end_seq`` (to the last event when ``end_seq`` is None); None
    where the database has no JSON functions this knows, or no such event is left."""
    engine = _engine_for(tracking_uri)
    dialect = engine.dialect.name
    if dialect not in _GROUPS:
        return None
    where = _STRETCH_WHERE + ("" if end_seq is None else " AND seq < :end_seq")
    query = sa.text(_GROUPS[dialect].format(where=where)).bindparams(
        sa.bindparam("metric_kinds", expanding=True))
    params = {"run_id": run_id, "first_seq": first_seq, "metric_kinds": _METRIC_KINDS,
              "writer": writer, "since_us": since_us, "until_us": until_us, "end_seq": end_seq}
    with engine.connect() as connection:
        groups = connection.execute(query, params).all()
    if not groups:
        return None
    return _from_groups(groups)


def _from_groups(groups: Sequence[Any]) -> StretchStats:
    """The stretch from its key-list groups: totals over the groups, and per key the groups
    that name it (values per key only from groups naming it alone)."""
    keys: dict[str, KeyStats] = {}
    for keys_json, events, values, step_min, step_max, first_us, last_us, _ in groups:
        names = json.loads(keys_json) if keys_json else []
        for name in map(str, names):
            single = len(names) == 1
            figures = KeyStats(name, int(events), int(events) if single else 0,
                               int(values or 0) if single else 0, _int(step_min),
                               _int(step_max), int(first_us), int(last_us))
            keys[name] = merge_keys(keys[name], figures) if name in keys else figures
    return StretchStats(
        last_seq=max(int(g[7]) for g in groups), events=sum(int(g[1]) for g in groups),
        values=sum(int(g[2] or 0) for g in groups),
        step_min=_bound(min, (g[3] for g in groups)), step_max=_bound(max, (g[4] for g in groups)),
        first_us=min(int(g[5]) for g in groups), last_us=max(int(g[6]) for g in groups),
        keys=[keys[name] for name in sorted(keys)])


def merge_keys(a: KeyStats, b: KeyStats) -> KeyStats:
    """One key's figures over two parts of a stretch."""
    return KeyStats(a.key, a.events + b.events, a.single_events + b.single_events,
                    a.single_values + b.single_values, _bound(min, (a.step_min, b.step_min)),
                    _bound(max, (a.step_max, b.step_max)), min(a.first_us, b.first_us),
                    max(a.last_us, b.last_us))


def merge_stretches(a: StretchStats, b: StretchStats) -> StretchStats:
    """A stretch read in two parts (``b`` after ``a``) as one."""
    keys = {k.key: k for k in a.keys}
    for key in b.keys:
        keys[key.key] = merge_keys(keys[key.key], key) if key.key in keys else key
    return StretchStats(max(a.last_seq, b.last_seq), a.events + b.events, a.values + b.values,
                        _bound(min, (a.step_min, b.step_min)),
                        _bound(max, (a.step_max, b.step_max)), min(a.first_us, b.first_us),
                        max(a.last_us, b.last_us), [keys[name] for name in sorted(keys)])


def _bound(pick: Any, values: Any) -> int | None:
    present = [int(v) for v in values if v is not None]
    return pick(present) if present else None


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


_WHOLE_STRETCH = sa.text("""SELECT x.last_seq,
  (SELECT count(*) FROM prov_journal WHERE run_id = :run_id AND seq >= :first_seq
     AND seq <= x.last_seq),
  (SELECT min(seq) FROM prov_journal WHERE run_id = :run_id AND kind IN :metric_kinds)
FROM (SELECT max(seq) AS last_seq FROM prov_journal
      WHERE run_id = :run_id AND kind IN :metric_kinds) AS x""").bindparams(
    sa.bindparam("metric_kinds", expanding=True))


def whole_stretch(tracking_uri: str, run_id: str, first_seq: int) -> StretchStats | None:
    """The stretch ``first_seq`` starts, from the run's fold counters
    (:mod:`mlflow_prov.metric_folds`) without reading its events, when it holds every metric
    event of the run: ``first_seq`` is the run's first metric event and the run has exactly
    as many events from there to its last metric event as the counters counted, all from
    one writer. None otherwise (counters missing or incomplete, metric events in several
    stretches): the caller sums the stretch from its events.

    Two indexed statements, whatever the number of events: the counts come from the index
    on ``(run_id, seq)``."""
    with _engine_for(tracking_uri).connect() as connection:
        folds = read_folds(connection, run_id)
        if folds is None or not folds.total[1]:  # none, or from several writers
            return None
        last_seq, events, first_metric = connection.execute(
            _WHOLE_STRETCH, {"run_id": run_id, "first_seq": first_seq,
                             "metric_kinds": _METRIC_KINDS}).one()
    _, _, counted, _, values, step_min, step_max, first_us, last_us = folds.total
    if first_metric != first_seq or events != counted:
        return None
    return StretchStats(
        last_seq=int(last_seq), events=int(counted), values=int(values),
        step_min=_int(step_min), step_max=_int(step_max), first_us=int(first_us),
        last_us=int(last_us), keys=[_key_stats(row) for row in folds.keys])


def _key_stats(row: tuple[Any, ...]) -> KeyStats:
    """A key's counter row (:data:`mlflow_prov.metric_folds.COLUMNS` after ``run_id``)."""
    key, _, events, single_events, single_values, step_min, step_max, first_us, last_us = row
    return KeyStats(str(key), int(events), int(single_events), int(single_values),
                    _int(step_min), _int(step_max), int(first_us), int(last_us))
