"""Fold a run's consecutive metric events into one timeline row, one line per key inside it.

Why: a training loop writes one ``run.metrics_logged`` event per ``log_metric`` call, so a
real run's timeline is 100,000 rows of "1 point(s): loss" between the few events a reader
looks for (a tag changed, the status moved). The exported HTML timeline and the ``/prov/``
run page both fold here: consecutive metric events from one writer become one
:class:`MetricFold` with, per key, how many values, which steps and when; any other event
ends the stretch. Wording is :mod:`exporters.wording`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mlflow_prov.vocabulary import EventKind

E = TypeVar("E")


@dataclass
class KeyFold:
    """One metric key within a fold. ``values`` is None when a batch logged this key with
    others (the journal counts a batch's values, not each key's)."""

    key: str
    events: int = 0
    values: int | None = 0
    step_min: int | None = None
    step_max: int | None = None
    first_us: int = 0
    last_us: int = 0


@dataclass
class MetricFold:
    """A stretch of consecutive metric events of one writer: first and last event, totals,
    and one :class:`KeyFold` per key."""

    first_seq: int
    first_us: int
    writer: Any
    last_seq: int = 0
    last_us: int = 0
    events: int = 0
    values: int = 0
    step_min: int | None = None
    step_max: int | None = None
    keys: dict[str, KeyFold] = field(default_factory=dict)

    def add(self, seq: int, time_us: int, payload: Mapping[str, Any]) -> None:
        """Count one metric event into the fold and into each of its keys."""
        keys = payload.get("keys") or ()
        count = payload.get("count")
        count = count if isinstance(count, int) else len(keys)
        low, high = _step(payload.get("step_min")), _step(payload.get("step_max"))
        self.last_seq, self.last_us = seq, time_us
        self.events += 1
        self.values += count
        self.step_min, self.step_max = _lower(self.step_min, low), _upper(self.step_max, high)
        for key in keys:
            fold = self.keys.get(key)
            if fold is None:
                fold = self.keys[key] = KeyFold(str(key), first_us=time_us)
            fold.events += 1
            fold.values = None if fold.values is None or len(keys) != 1 else fold.values + count
            fold.step_min, fold.step_max = _lower(fold.step_min, low), _upper(fold.step_max, high)
            fold.last_us = time_us

    def key_rows(self) -> list[KeyFold]:
        """The keys in name order."""
        return [self.keys[key] for key in sorted(self.keys)]


def _step(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _lower(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _upper(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def is_metric_event(kind: Any) -> bool:
    return kind == EventKind.RUN_METRICS_LOGGED


def fold_events(events: Iterable[E], *, kind: Callable[[E], Any],
                seq: Callable[[E], int], time_us: Callable[[E], int],
                payload: Callable[[E], Mapping[str, Any]],
                writer: Callable[[E], Any]) -> Iterator[E | MetricFold]:
    """``events`` in order, with each stretch of consecutive metric events from one writer
    replaced by one :class:`MetricFold` (yielded once the stretch ends). The accessors read
    a journal row, a decoded event or an export's history entry alike."""
    fold: MetricFold | None = None
    for event in events:
        if is_metric_event(kind(event)):
            who = writer(event)
            if fold is not None and fold.writer != who:
                yield fold
                fold = None
            if fold is None:
                fold = MetricFold(first_seq=seq(event), first_us=time_us(event), writer=who)
            fold.add(seq(event), time_us(event), payload(event))
            continue
        if fold is not None:
            yield fold
            fold = None
        yield event
    if fold is not None:
        yield fold
