"""Opt-in live OpenLineage events: ``MLFLOW_PROV_OPENLINEAGE_URL`` set, a run's START and its
COMPLETE, FAIL or ABORT go to that OpenLineage endpoint as they happen.

Why this shape: a training write must never wait on, nor fail because of, a lineage server.
So the store only *notes* a run's creation or end while its transaction is open
(:meth:`LiveEmitter.note`, from the store's ``journaled`` callback), hands the notes over
once the transaction COMMITTED (:func:`committed`, from the session's ``after_commit``;
:func:`rolled_back` forgets them), and a daemon thread reads the run and sends its event
through the ``openlineage-python`` client. The queue is bounded: when it is full, or the
endpoint cannot be reached, events are dropped with one warning each, never retried
against the writer's time; after a failed send, events are dropped unread for
:data:`QUIET_AFTER_FAILURE_S` seconds, so an endpoint that is down costs the training
process no reads and no connection attempts. The client waits at most
:data:`SEND_TIMEOUT_S` per event, and at interpreter exit the queue gets at most
:data:`EXIT_DRAIN_S` to empty (so a short script's COMPLETE still leaves).

Events are those of :mod:`mlflow_prov.openlineage_events`, as ``mlflow-prov openlineage``
sends them, except that the live emitter knows only the latest value of each metric and
leaves registered versions and artifacts out (docs/export.md says what each carries).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from mlflow_prov.openlineage_events import (
    DEFAULT_NAMESPACE,
    TERMINAL_EVENTS,
    LineageDataset,
    MetricFacts,
    RunFacts,
    dataset_name,
    logged_model_name,
    run_event,
    schema_fields,
)
from mlflow_prov.vocabulary import PARENT_RUN_TAG, EventKind, redact_text, without_userinfo

_logger = logging.getLogger(__name__)

URL_VARIABLE = "MLFLOW_PROV_OPENLINEAGE_URL"
ENDPOINT_VARIABLE = "MLFLOW_PROV_OPENLINEAGE_ENDPOINT"  # default: the client's api/v1/lineage
NAMESPACE_VARIABLE = "MLFLOW_PROV_OPENLINEAGE_NAMESPACE"
QUEUE_SIZE = 1000
SEND_TIMEOUT_S = 2.0
EXIT_DRAIN_S = 5.0
# after a failed send, drop events without reading their runs for this long: an endpoint that
# is down costs the training process nothing (no reads, no connection attempts) meanwhile
QUIET_AFTER_FAILURE_S = 30.0
_PENDING = "mlflow_prov.openlineage_pending"
# no retries: a retry's backoff would hold the queue behind one unreachable endpoint
_NO_RETRY = {"total": 0, "read": 0, "connect": 0, "backoff_factor": 0,
             "status_forcelist": [], "allowed_methods": ["POST"]}


@dataclass(frozen=True)
class _Transition:
    """A run's START or end, noted in a transaction, sent once it committed."""

    run_id: str
    event_type: str
    time_ms: int | None


def emitter_for(store: Any) -> LiveEmitter | None:
    """The live emitter of a tracking store when ``MLFLOW_PROV_OPENLINEAGE_URL`` is set."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        return None
    if importlib.util.find_spec("openlineage") is None:
        _logger.warning("%s is set, but openlineage-python is not installed: no OpenLineage "
                        "events are sent (pip install 'mlflow-prov[openlineage]')", URL_VARIABLE)
        return None
    return LiveEmitter(store, url, os.environ.get(ENDPOINT_VARIABLE) or None,
                       os.environ.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE)


def committed(session: Any) -> None:
    """After a commit: queue what its transaction noted. Never raises."""
    for emitter, transition in session.info.pop(_PENDING, ()):
        emitter.submit(transition)


def rolled_back(session: Any) -> None:
    """After a rollback: nothing it noted happened."""
    session.info.pop(_PENDING, None)


class LiveEmitter:
    """One store's queue and sending thread (started by the first event)."""

    def __init__(self, store: Any, url: str, endpoint: str | None, namespace: str) -> None:
        self._store = store
        self._url = url
        self._shown_url = redact_text(without_userinfo(url))  # for warnings: no token
        self._endpoint = endpoint
        self.namespace = namespace
        self._queue: queue.Queue[_Transition] = queue.Queue(maxsize=QUEUE_SIZE)
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._client: Any = None
        self._warned: set[str] = set()
        self._quiet_until = 0.0  # after a failed send, events are dropped unread till then

    def note(self, session: Any, event: Any) -> None:
        """In the write's transaction: remember a run's creation or end (cheap, no I/O)."""
        try:
            transition = _transition(event)
            if transition is not None:
                session.info.setdefault(_PENDING, []).append((self, transition))
        except Exception as error:  # noqa: BLE001  # never let lineage fail a write
            self._warn_once("note", "OpenLineage event not noted: %s", error)

    def submit(self, transition: _Transition) -> None:
        """Queue one event without waiting; a full queue drops it (one warning)."""
        try:
            self._ensure_thread()
            self._queue.put_nowait(transition)
        except queue.Full:
            self._warn_once("full", "OpenLineage events are dropped: %d are waiting for %s",
                            QUEUE_SIZE, self._shown_url)
        except Exception as error:  # noqa: BLE001  # never let lineage fail a write
            self._warn_once("submit", "OpenLineage event not queued: %s", error)

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued event was sent or dropped, at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        """Start the sending thread once per process: a forked child (a data-loader worker
        that logs) inherits the queue but not the thread, and starts its own."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():
                if self._pid != os.getpid():
                    self._queue = queue.Queue(maxsize=QUEUE_SIZE)
                thread = threading.Thread(target=self._work, daemon=True,
                                          name="mlflow-prov-openlineage")
                thread.start()
                atexit.register(self.drain, EXIT_DRAIN_S)
                self._thread, self._pid = thread, os.getpid()

    def _work(self) -> None:
        while True:
            transition = self._queue.get()
            try:
                if time.monotonic() >= self._quiet_until:
                    self._send(transition)
            except Exception as error:  # noqa: BLE001  # an endpoint down, a run deleted
                self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_S
                self._warn_once("send", "OpenLineage events to %s are dropped: %s",
                                self._shown_url, error)
            finally:
                self._queue.task_done()

    def _send(self, transition: _Transition) -> None:
        run = self._store.get_run(transition.run_id)
        experiment = self._store.get_experiment(run.info.experiment_id)
        facts = facts_of_run(run, experiment.name)
        time_ms = transition.time_ms
        if transition.event_type != "START":
            time_ms = run.info.end_time or time_ms
        self._http_client().emit(run_event(facts, transition.event_type, time_ms,
                                           self.namespace))

    def _http_client(self) -> Any:
        if self._client is None:
            from openlineage.client import OpenLineageClient
            from openlineage.client.transport.http import HttpConfig, HttpTransport

            config = HttpConfig(url=self._url, timeout=SEND_TIMEOUT_S, retry=dict(_NO_RETRY))
            if self._endpoint:
                config.endpoint = self._endpoint
            self._client = OpenLineageClient(transport=HttpTransport(config))
        return self._client

    def _warn_once(self, what: str, message: str, *args: Any) -> None:
        if what not in self._warned:
            self._warned.add(what)
            _logger.warning(message, *args)


def _transition(event: Any) -> _Transition | None:
    """A run's START (created) or end (its status became FINISHED, FAILED or KILLED)."""
    if event.run_id is None:
        return None
    payload = event.payload
    if event.kind == EventKind.RUN_CREATED:
        return _Transition(event.run_id, "START", payload.get("start_time"))
    if event.kind == EventKind.RUN_UPDATED:
        new, old = payload.get("new_status"), payload.get("old_status")
        if new in TERMINAL_EVENTS and new != old:
            return _Transition(event.run_id, TERMINAL_EVENTS[new], payload.get("end_time"))
    return None


def facts_of_run(run: Any, experiment_name: str) -> RunFacts:
    """What an MLflow ``Run`` entity tells the events (latest metric values only)."""
    info, data = run.info, run.data
    inputs = run.inputs
    datasets = tuple(
        LineageDataset(dataset_name(d.dataset.source, d.dataset.name), d.dataset.digest,
                       schema_fields(d.dataset.schema))
        for d in (inputs.dataset_inputs if inputs is not None else ()))
    models_in = tuple(LineageDataset(logged_model_name(m.model_id), m.model_id)
                      for m in ((inputs.model_inputs or []) if inputs is not None else ()))
    models_out = tuple(LineageDataset(logged_model_name(m.model_id), m.model_id)
                       for m in (run.outputs.model_outputs if run.outputs else ()))
    return RunFacts(
        run_id=info.run_id, experiment_name=experiment_name, status=info.status,
        start_ms=info.start_time, end_ms=info.end_time,
        parent_run_id=data.tags.get(PARENT_RUN_TAG), params=dict(data.params),
        metrics=tuple(MetricFacts(key, value) for key, value in sorted(data.metrics.items())),
        inputs=datasets + models_in, outputs=models_out)
