"""The base class of mlflow-prov's monitors.

Built on MLflow's ``BaseMetricsMonitor`` so that MLflow's own ``SystemMetricsMonitor`` can
drive ours in its thread, at its interval, into its batch of ``system/...`` metrics. It adds
what MLflow's monitors repeat or lack: the averaging in one place, a read-only public
``metrics`` view, and a guard so that a failing sensor stops its own monitor instead of
killing MLflow's whole monitoring thread (MLflow's loop does not catch collection errors).
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ClassVar

from mlflow.system_metrics.metrics.base_metrics_monitor import BaseMetricsMonitor

_logger = logging.getLogger(__name__)

TagSink = Callable[[dict[str, str]], None]


class MonitorUnavailable(RuntimeError):
    """Raised by a monitor's constructor when this machine cannot feed it (no GPU, no sensor).

    The message says what is missing and how to fix it; the attaching code logs it at INFO
    and goes on without that monitor.
    """


class ProvMetricsMonitor(BaseMetricsMonitor):
    """A monitor whose samples are averaged per logging interval, except cumulative ones.

    Subclasses implement :meth:`sample` and call :meth:`record`. Keys ending in one of
    ``cumulative_suffixes`` (energy since run start, emissions so far) report their latest
    value, because the mean of a running total is meaningless.
    """

    name: ClassVar[str]
    cumulative_suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self._failed = False
        self._tag_lock = threading.Lock()
        self._tag_sink: TagSink | None = None
        self._pending_tags: dict[str, str] = {}

    @abc.abstractmethod
    def sample(self) -> None:
        """Read the hardware once and :meth:`record` each value."""

    @property
    def metrics(self) -> Mapping[str, list[float]]:
        """The samples taken since the last logging step, by key (read-only view)."""
        return MappingProxyType(self._metrics)

    def record(self, key: str, value: float) -> None:
        """Keep one sample; ``key`` is relative to MLflow's ``system/`` prefix."""
        self._metrics[key].append(float(value))

    def collect_metrics(self) -> None:
        """Sample once; after an unexpected error, log it once and stop sampling."""
        if self._failed:
            return
        try:
            self.sample()
        except Exception:
            self._failed = True
            _logger.warning("mlflow-prov: the %s monitor failed and stops", self.name,
                            exc_info=True)

    def aggregate_metrics(self) -> dict[str, float]:
        """Mean of each key's samples, or the last sample for cumulative keys."""
        return {
            key: values[-1] if key.endswith(self.cumulative_suffixes) else sum(values) / len(values)
            for key, values in self._metrics.items()
            if values
        }

    @property
    def tag_sink(self) -> TagSink | None:
        """Where :meth:`publish_tags` sends run tags; ``None`` until attached to a run."""
        return self._tag_sink

    @tag_sink.setter
    def tag_sink(self, sink: TagSink | None) -> None:
        """Set the sink and hand it the tags published before it existed.

        A monitor may publish from a thread its constructor started (carbon does), which can
        finish before the attaching code has a sink to give it. The lock, held while the sink
        runs, keeps those tags from being lost or delivered after newer ones.
        """
        with self._tag_lock:
            self._tag_sink = sink
            if sink is not None and self._pending_tags:
                sink(self._pending_tags)
                self._pending_tags = {}

    def publish_tags(self, tags: dict[str, str]) -> None:
        """Hand run tags (how a figure was obtained) to whoever attached this monitor, now or,
        if nobody has yet, as soon as the sink is set."""
        with self._tag_lock:
            if self._tag_sink is None:
                self._pending_tags.update(tags)
            else:
                self._tag_sink(tags)

    def close(self) -> dict[str, float]:
        """Release the hardware at run end; return final values worth logging once more."""
        return {}
