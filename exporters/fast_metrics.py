"""Metric series and summaries for SQL stores at database speed, as exporter records.

Why: reading points through ``MlflowClient.get_metric_history`` costs an ORM object per
point; :mod:`mlflow_prov.fast_read` reads the same rows, in the same order, straight into
numpy arrays, and computes per-series summaries in SQL. This module turns its results into
:class:`~exporters.records.MetricSeries` and :class:`~exporters.records.MetricSummary`, with
the same contexts, sources and value decoding as :func:`exporters.collect.metric_series`.

On a SQL store no metric point carries a dataset (MLflow's ``metrics`` table has no such
column, so ``get_metric_history`` returns none), so a series' context follows from its key
and the run alone: one series per key, exactly as the client path groups them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import numpy as np

from exporters.contexts import metric_context, metric_source, run_context_prefixes
from exporters.errors import ReaderError
from exporters.records import MetricSeries, MetricSummary, RunRecord
from exporters.sanitize import time_from_ms
from mlflow_prov.fast_read import MetricReader, SeriesSummary, open_reader, refresh_statistics

DBL_MAX = sys.float_info.max  # MLflow's SQL stores keep +/-inf as +/-DBL_MAX


def reader_for(tracking_uri: str) -> MetricReader | None:
    """The fast reader for this URI, or ``None``: read through the client API instead."""
    return open_reader(tracking_uri)


def prepare(tracking_uri: str) -> None:
    """Fresh planner statistics on a prov sqlite store before the export reads it."""
    refresh_statistics(tracking_uri)


def _decode(values: np.ndarray) -> np.ndarray:
    """Undo the inf -> DBL_MAX substitution, vectorised (``collect._decode_value`` per point)."""
    values = values.copy()
    values[values == DBL_MAX] = np.inf
    values[values == -DBL_MAX] = -np.inf
    return values


def _decode_one(value: float) -> float:
    return float(_decode(np.array([value]))[0])


def _context(run: RunRecord, prefixes: Mapping[str, str]) -> Callable[[str], str | None]:
    """A series' context from its key: the client path's rule for points without a dataset."""
    run_prefixes = run_context_prefixes(prefixes, run.tags, run.datasets)
    return lambda key: metric_context(key, None, run.datasets, run_prefixes)


def run_series(reader: MetricReader, run: RunRecord,
               prefixes: Mapping[str, str]) -> Iterator[MetricSeries]:
    """Every series of the run, one at a time, from one query (database key order)."""
    context_of = _context(run, prefixes)
    try:
        for raw in reader.run_series(run.run_id):
            yield MetricSeries(
                run_id=run.run_id, key=raw.key, context=context_of(raw.key),
                source=metric_source(raw.key), steps=raw.steps,
                timestamps_ms=raw.timestamps_ms, values=_decode(raw.values))
    except Exception as exc:  # any driver's error: one line naming the run
        raise ReaderError(f"cannot read the metrics of run {run.run_id}: {exc}") from exc


def run_summaries(reader: MetricReader, run: RunRecord,
                  prefixes: Mapping[str, str]) -> list[MetricSummary]:
    """Every series' summary from SQL aggregates, without reading its points."""
    context_of = _context(run, prefixes)
    try:
        found = reader.summaries(run.run_id)
    except Exception as exc:  # any driver's error: one line naming the run
        raise ReaderError(f"cannot read the metrics of run {run.run_id}: {exc}") from exc
    return order_like_run(run, [_summary(s, context_of(s.key)) for s in found])


def _summary(found: SeriesSummary, context: str | None) -> MetricSummary:
    return MetricSummary(
        key=found.key, context=context, source=metric_source(found.key), count=found.count,
        first_step=found.first_step, last_step=found.last_step,
        first_time=_time(found.first_timestamp_ms), last_time=_time(found.last_timestamp_ms),
        min=_decode_one(found.min), max=_decode_one(found.max), last=_decode_one(found.last))


def _time(ms: int) -> datetime:
    return time_from_ms(ms)


def order_like_run(run: RunRecord, summaries: list[MetricSummary]) -> list[MetricSummary]:
    """Summaries in the run record's key order, so documents do not depend on the path."""
    rank = {key: index for index, key in enumerate(run.metric_keys)}
    return sorted(summaries, key=lambda s: (rank.get(s.key, len(rank)), s.key))
