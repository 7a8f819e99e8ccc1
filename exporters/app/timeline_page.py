"""One page of a run's ``/prov/`` timeline, with metric stretches folded.

Why: the page lists 100 rows, and a run that logged 100,000 metric values one call at a time
would fill a thousand pages with "1 point(s): loss". A stretch of consecutive metric events
from one writer is one row (:class:`exporters.timeline.MetricFold`, the same fold as the
exported HTML timeline) whose figures come from the run's fold counters, kept at write time
(:mod:`mlflow_prov.metric_folds`), or else the database sums (:mod:`mlflow_prov.journal_scan`),
so the page costs its rows, not the run's events. The page token after a fold points past
its last event.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from exporters.app.history import EventFilters
from exporters.timeline import KeyFold, MetricFold, fold_events, is_metric_event
from mlflow_prov.journal import JournalEvent, read_events_page
from mlflow_prov.journal_scan import (
    RawEvent,
    StretchStats,
    merge_stretches,
    scan_rows,
    stretch_end,
    stretch_stats,
    whole_stretch,
)
from mlflow_prov.vocabulary import EventKind


@dataclass(frozen=True)
class TimelinePage:
    """The page's items in order (events and folds) and the seq the next page starts after
    (None on the last page)."""

    items: list[JournalEvent | MetricFold]
    next_after_seq: int | None


def timeline_page(tracking_uri: str, run_id: str, filters: EventFilters) -> TimelinePage:
    """Up to ``filters.limit`` items of the run's timeline after ``filters.after_seq``."""
    items: list[JournalEvent | MetricFold] = []
    after = filters.after_seq
    exhausted = False
    while len(items) < filters.limit and not exhausted:
        page = read_events_page(tracking_uri, run_id=run_id, kinds=list(filters.kinds) or None,
                                since_us=filters.since_us, until_us=filters.until_us,
                                after_seq=after, limit=filters.limit - len(items))
        exhausted = page.next_after_seq is None
        for event in page.events:
            if is_metric_event(event.kind):
                fold = fold_stretch(tracking_uri, event, filters)
                items.append(fold)
                after, exhausted = fold.last_seq, False
                break  # read on after the stretch
            items.append(event)
            after = event.seq
    more = not exhausted and after is not None and _any_after(tracking_uri, run_id, filters,
                                                              after)
    return TimelinePage(items, after if more else None)


def _any_after(tracking_uri: str, run_id: str, filters: EventFilters, after: int) -> bool:
    rows = scan_rows(tracking_uri, run_id=run_id, kinds=list(filters.kinds) or None,
                     since_us=filters.since_us, until_us=filters.until_us, after_seq=after,
                     page=1)
    return next(rows, None) is not None


def fold_stretch(tracking_uri: str, first: JournalEvent, filters: EventFilters) -> MetricFold:
    """The stretch of metric events that ``first`` starts: from the run's fold counters when
    it is the run's only one and no filter cuts it, else summed by the database where it
    can (and remembered, see :func:`_summed`), else folded here row by row."""
    assert first.run_id is not None  # a metric event belongs to a run
    unfiltered = not filters.kinds and filters.since_us is None and filters.until_us is None
    stats = whole_stretch(tracking_uri, first.run_id, first.seq) if unfiltered else None
    if stats is not None:
        return _from_stats(first, stats)
    stats = _summed(tracking_uri, first, filters)
    if stats is not None:
        return _from_stats(first, stats)
    end, writer = stretch_end(tracking_uri, first.run_id, first.seq,
                              kinds=list(filters.kinds) or None, since_us=filters.since_us,
                              until_us=filters.until_us)
    rows = _stretch_rows(tracking_uri, first, end, writer, filters)
    folded = next(fold_events(rows, kind=lambda _: EventKind.RUN_METRICS_LOGGED,
                              seq=attrgetter("seq"), time_us=attrgetter("time_us"),
                              payload=_payload, writer=attrgetter("writer")))
    assert isinstance(folded, MetricFold)
    folded.writer = first.writer
    return folded


@dataclass(frozen=True)
class _Summed:
    stats: StretchStats
    writer: str
    end: int | None  # the seq that ended the stretch; None while it may still grow


_SUMMED: OrderedDict[tuple[Any, ...], _Summed] = OrderedDict()
_SUMMED_LOCK = threading.Lock()
MAX_SUMMED = 512


def _summed(tracking_uri: str, first: JournalEvent, filters: EventFilters
            ) -> StretchStats | None:
    """The stretch's figures from the database (None where it cannot sum them).

    The journal only grows, so a stretch once summed stays summed: an ended one is
    answered from memory, one still growing (the run's latest events) is summed on from
    where it was left. A server then sums a run of 100,000 ``log_metric`` events once,
    not on every visit of its page."""
    assert first.run_id is not None  # a metric event belongs to a run
    key = (tracking_uri, first.run_id, first.seq, filters.kinds, filters.since_us,
           filters.until_us)
    with _SUMMED_LOCK:
        known = _SUMMED.get(key)
    if known is not None and known.end is not None:
        return known.stats
    since, until = filters.since_us, filters.until_us
    start = known.stats.last_seq if known else first.seq
    end, writer = stretch_end(tracking_uri, first.run_id, start,
                              kinds=list(filters.kinds) or None, since_us=since, until_us=until)
    more = stretch_stats(tracking_uri, first.run_id, start + 1 if known else first.seq, end,
                         writer, since_us=since, until_us=until)
    if known is None and more is None:
        return None
    stats = more if known is None else merge_stretches(known.stats, more) if more \
        else known.stats
    assert stats is not None
    with _SUMMED_LOCK:
        _SUMMED[key] = _Summed(stats, writer, end)
        _SUMMED.move_to_end(key)
        while len(_SUMMED) > MAX_SUMMED:
            _SUMMED.popitem(last=False)
    return stats


def _stretch_rows(tracking_uri: str, first: JournalEvent, end: int | None, writer: str,
                  filters: EventFilters) -> Iterator[RawEvent]:
    rows = scan_rows(tracking_uri, run_id=first.run_id, kinds=[EventKind.RUN_METRICS_LOGGED],
                     since_us=filters.since_us, until_us=filters.until_us,
                     after_seq=first.seq - 1)
    for row in rows:
        if end is not None and row.seq >= end:
            return
        if row.writer == writer:
            yield row


def _payload(row: Any) -> dict:
    payload: dict = json.loads(row.payload)
    return payload


def _from_stats(first: JournalEvent, stats: StretchStats) -> MetricFold:
    fold = MetricFold(first_seq=first.seq, first_us=stats.first_us, writer=first.writer,
                      last_seq=stats.last_seq, last_us=stats.last_us, events=stats.events,
                      values=stats.values, step_min=stats.step_min, step_max=stats.step_max)
    for key in stats.keys:
        fold.keys[key.key] = KeyFold(
            key.key, events=key.events,
            values=key.single_values if key.single_events == key.events else None,
            step_min=key.step_min, step_max=key.step_max, first_us=key.first_us,
            last_us=key.last_us)
    return fold
