"""yProv4ML's logging API on MLflow: ``from mlflow_prov import prov4ml`` for ``import prov4ml``.

Each call maps onto MLflow's own notion where it has one, through the same helpers as
:mod:`mlflow_prov.torch`, so the run looks like any other mlflow-prov run:

* a run is an MLflow run (nested when one is already active); the tracking URI defaults to
  ``prov:`` in ``<provenance_save_dir>/mlflow`` when none is set, so provenance is journaled;
* contexts become key prefixes (``Context.TRAINING`` -> ``train/loss``; a free string such as
  ``"TrainingButDifferent"`` -> ``trainingbutdifferent/loss``, declared for the exporter);
* datasets are ``mlflow.log_input`` with their context; model versions are artifacts
  ``models/<name>/vNNNN.pt``; ``log_model`` is ``mlflow.pytorch.log_model`` (a LoggedModel);
* system and carbon metrics are MLflow's ``system/...`` keys.

Where the seeds' semantics differ from MLflow's, the seeds win (docs/yprov4ml.md, "Coming
from yProv4ML"): ``log_system_metrics`` / ``log_carbon_metrics`` take one sample per call, at the
caller's step, and MLflow's background monitor is off for the run; metrics are buffered and
written every ``save_after_n_logs`` calls, at ``end_run`` and at interpreter exit (after an
uncaught exception too: only a killed process loses its last, unwritten values); ranks other
than 0 log nothing unless ``collect_all_processes`` (then each rank is its own run, tagged
with its rank);
``register_final_metric`` folds every value logged under its name, from ``initial_value``.

``end_run`` exports into the save folder (PROV-JSON, DOT, SVG, the RO-Crate, metric files in
``metrics_file_type``). The exporter lives in the export room, which capture never imports:
it registers its function under the entry-point group
:data:`~mlflow_prov.vocabulary.EXPORTER_ENTRY_POINT_GROUP`, resolved here at ``end_run``.
"""

from __future__ import annotations

import atexit
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from mlflow_prov import torch as torch_helpers
from mlflow_prov.compat import tracking_uri_is_set
from mlflow_prov.vocabulary import (
    CONTEXTS_TAG,
    EXPORTER_ENTRY_POINT_GROUP,
    EXPORTER_ENTRY_POINT_NAME,
    PROV4ML_NAMESPACE_TAG,
    PROV4ML_RANK_TAG,
    SYSTEM_PREFIX,
    TRAINING,
    declared_contexts,
    is_free_form_context,
    normalise_context,
)

_logger = logging.getLogger(__name__)
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK")
DEFAULT_SAVE_DIR = "prov"


class Context(StrEnum):
    """The seeds' contexts; any other string is accepted too and becomes its own context."""

    TRAINING = "training"
    VALIDATION = "validation"
    TESTING = "testing"
    EVALUATION = "evaluation"


Contexts = Context  # the seeds' Lightning example spells it this way


class MetricsType(StrEnum):
    """``metrics_file_type`` values; the seeds' default, Zarr, is the default here too."""

    ZARR = "zarr"
    NETCDF = "netcdf"
    CSV = "csv"
    TXT = "txt"


_METRIC_FORMATS = {"zarr": "zarr", "netcdf": "netcdf", "nc": "netcdf", "csv": "csv",
                   "txt": "csv"}


class FoldOperation(Enum):
    """How :func:`register_final_metric` folds each logged value into the final one."""

    MIN = "min"
    MAX = "max"
    ADD = "add"
    SUBTRACT = "subtract"


_FOLDS: dict[FoldOperation, Callable[[float, float], float]] = {
    FoldOperation.MIN: min, FoldOperation.MAX: max,
    FoldOperation.ADD: operator.add, FoldOperation.SUBTRACT: operator.sub,
}


@dataclass
class _Session:
    """What one ``start_run`` .. ``end_run`` holds."""

    run_id: str
    save_dir: Path
    tracking_uri: str
    metrics_format: str
    save_after_n_logs: int
    compress: bool
    started: float
    buffer: list[Metric] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    datasets: dict[str, Any] = field(default_factory=dict)
    finals: dict[str, list[Any]] = field(default_factory=dict)  # name -> [fold, value]
    last_times: dict[tuple[str, int], int] = field(default_factory=dict)  # (key, step) -> ms
    system_monitors: list[Any] | None = None
    carbon_monitor: Any = None


_lock = threading.RLock()
_session: _Session | None = None
_exit_flush_registered = False


def _flush_at_exit() -> None:
    """Write buffered metrics when the interpreter exits without ``end_run`` (a script that
    returns early or dies of an exception), so buffering never loses them (yProv4ML did).
    Registered after MLflow's own exit handler, so it runs first, while the run is open."""
    session = _session
    if session is not None and session.buffer:
        try:
            _flush(session)
        except Exception:
            _logger.warning("prov4ml: buffered metrics could not be written at exit",
                            exc_info=True)


def _rank(rank: int | None) -> int:
    if rank is not None:
        return int(rank)
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value.lstrip("-").isdigit():
            return int(value)
    return 0


def start_run(prov_user_namespace: str = "www.example.org", experiment_name: str | None = None,
              provenance_save_dir: str | os.PathLike[str] | None = None,
              collect_all_processes: bool = False, save_after_n_logs: int = 100,
              rank: int | None = None, metrics_file_type: str | MetricsType = MetricsType.ZARR,
              csv_separator: str = ",", disable_codecarbon: bool = False,
              use_compressor: Any = None,
              prov_save_path: str | os.PathLike[str] | None = None) -> str | None:
    """Start an MLflow run the way ``prov4ml.start_run`` started a provenance run.

    Returns the MLflow run id, or None on a rank that does not log (rank != 0 without
    ``collect_all_processes``). ``csv_separator`` is accepted for compatibility: exported CSV
    files are comma-separated, and the getters read any separator.
    """
    global _session
    metrics_format = _METRIC_FORMATS.get(str(metrics_file_type).lower().removeprefix(
        "metricstype."))
    if metrics_format is None:
        raise ValueError(f"metrics_file_type={metrics_file_type!r}: use one of "
                         f"{sorted(_METRIC_FORMATS)}")
    if csv_separator != ",":
        _logger.info("prov4ml: metric CSV files are written comma-separated "
                     "(csv_separator=%r is not used)", csv_separator)
    global_rank = _rank(rank)
    with _lock:
        if _session is not None:
            raise RuntimeError("prov4ml.start_run: a run is already started; call "
                               "prov4ml.end_run() first")
        if global_rank != 0 and not collect_all_processes:
            return None
        save_dir = Path(prov_save_path or provenance_save_dir or DEFAULT_SAVE_DIR).resolve()
        save_dir.mkdir(parents=True, exist_ok=True)
        if not tracking_uri_is_set():
            mlflow.set_tracking_uri(f"prov://{save_dir / 'mlflow'}")
        if experiment_name:
            mlflow.set_experiment(experiment_name)
        run = mlflow.start_run(nested=mlflow.active_run() is not None, log_system_metrics=False,
                               tags={PROV4ML_NAMESPACE_TAG: str(prov_user_namespace),
                                     PROV4ML_RANK_TAG: str(global_rank)})
        _session = _Session(run_id=run.info.run_id, save_dir=save_dir,
                            tracking_uri=mlflow.get_tracking_uri(),
                            metrics_format=metrics_format,
                            save_after_n_logs=max(1, int(save_after_n_logs)),
                            compress=bool(use_compressor), started=time.time())
        global _exit_flush_registered
        if not _exit_flush_registered:
            atexit.register(_flush_at_exit)
            _exit_flush_registered = True
        if not disable_codecarbon:
            _session.carbon_monitor = _start_carbon_monitor()
        log_execution_start_time()
        return run.info.run_id


def _current() -> _Session | None:
    """The session, or None on a rank that does not log (every call is then a no-op)."""
    return _session


# --- metrics and params ---------------------------------------------------------------------

def _key(key: str, context: Any) -> str:
    session = _current()
    name = normalise_context(str(context)) if context is not None else None
    if session is not None and name is not None and is_free_form_context(name) \
            and name not in session.contexts:
        session.contexts.append(name)
        earlier = declared_contexts(mlflow.get_run(session.run_id).data.tags.get(CONTEXTS_TAG))
        mlflow.set_tag(CONTEXTS_TAG, ",".join(dict.fromkeys([*earlier, *session.contexts])))
    return torch_helpers.context_key(key, name)


def _number(value: Any, key: str) -> float:
    """A metric value as float: Python/numpy numbers, 0-d arrays and one-element tensors."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, bool | int | float):
        return float(value)
    raise TypeError(f"prov4ml.log_metric({key!r}): MLflow metrics are numbers, not "
                    f"{type(value).__name__}; log one metric per element, or the list as an "
                    "artifact with prov4ml.log_artifact")


def log_metric(key: str, value: Any, context: Any = None, step: int | None = None,
               source: Any = None, timestamp: int | None = None) -> None:
    """Log a metric in a context (buffered; written every ``save_after_n_logs`` calls).

    ``source`` is accepted for compatibility; MLflow tells system metrics by their
    ``system/`` key, so it is not stored."""
    session = _current()
    if session is None:
        return
    number = _number(value, key)
    full_key = _key(key, context)
    dataset = session.datasets.get(normalise_context(str(context)) or "" if context else "")
    with _lock:
        at_step = int(step or 0)
        when = _distinct_time(session, full_key, at_step, timestamp or int(time.time() * 1000))
        session.buffer.append(Metric(
            full_key, number, when, at_step,
            dataset_name=getattr(dataset, "name", None),
            dataset_digest=getattr(dataset, "digest", None)))
        if key in session.finals:
            fold, current = session.finals[key]
            session.finals[key][1] = fold(current, number) if callable(fold) else number
        if len(session.buffer) >= session.save_after_n_logs:
            _flush(session)


def _distinct_time(session: _Session, key: str, step: int, timestamp: int) -> int:
    """The point's time, moved 1 ms past the previous point of the same key and step when the
    two fall in one millisecond. The seeds log many values per step (every batch at step 0);
    MLflow keys a LoggedModel's metric rows by (key, timestamp, step), so two such points in
    one batch would fail the whole ``log_batch`` once a model is the active model."""
    previous = session.last_times.get((key, step))
    if previous is not None and timestamp <= previous:
        timestamp = previous + 1
    session.last_times[(key, step)] = timestamp
    return timestamp


def log_metrics(metrics: Mapping[str, Any], context: Any = None, step: int | None = None,
                source: Any = None) -> None:
    """Several metrics at one step."""
    for key, value in metrics.items():
        log_metric(key, value, context, step, source)


def _flush(session: _Session) -> None:
    with _lock:
        pending, session.buffer = session.buffer, []
    for start in range(0, len(pending), 1000):  # MLflow's batch limit
        mlflow.MlflowClient().log_batch(session.run_id, metrics=pending[start:start + 1000])


def log_param(key: str, value: Any, context: Any = None) -> None:
    """Log a parameter (``str(value)``, as the seeds did for transforms and optimizers).

    MLflow keeps a parameter's first value: logging another value for the same key warns
    and keeps the first."""
    if _current() is None:
        return
    full_key = _key(key, context)
    try:
        mlflow.log_param(full_key, str(value))
    except MlflowException as exc:
        _logger.warning("prov4ml: parameter %r keeps its first value (%s)", full_key,
                        str(exc).splitlines()[0])


def log_params(params: Mapping[str, Any], context: Any = None) -> None:
    """Several parameters."""
    for key, value in params.items():
        log_param(key, value, context)


def register_final_metric(metric_name: str, initial_value: float,
                          fold_operation: FoldOperation | Callable[[float, float], float]
                          ) -> None:
    """Fold every value later logged as ``metric_name`` into one, logged at ``end_run`` as
    ``final/<metric_name>``. ``fold_operation`` is a FoldOperation or ``f(current, new)``."""
    session = _current()
    if session is None:
        return
    fold = _FOLDS.get(fold_operation) if isinstance(fold_operation, FoldOperation) \
        else fold_operation
    if not callable(fold):
        raise ValueError(f"fold_operation={fold_operation!r}: use a FoldOperation or a "
                         "callable (current, new) -> value")
    with _lock:
        session.finals[metric_name] = [fold, float(initial_value)]


def log_current_execution_time(label: str, context: Any = None, step: int | None = None) -> None:
    """Seconds since ``start_run`` as metric ``label``."""
    session = _current()
    if session is not None:
        log_metric(label, time.time() - session.started, context, step)


def _log_time_param(name: str) -> None:
    if _current() is not None:
        log_param(name, repr(time.time()))


def log_execution_start_time() -> None:
    """Parameter ``execution_start_time`` (Unix seconds), as the seeds record it; the MLflow
    run's own start time is kept as well."""
    _log_time_param("execution_start_time")


def log_execution_end_time() -> None:
    """Parameter ``execution_end_time`` (Unix seconds)."""
    _log_time_param("execution_end_time")


# --- artifacts, models, datasets ------------------------------------------------------------

def log_artifact(artifact_path: str | os.PathLike[str], context: Any = None,
                 step: int | None = None, timestamp: int | None = None) -> None:
    """A file or folder as run artifacts (under ``<context>/`` when a context is given)."""
    if _current() is None:
        return
    path = Path(artifact_path)
    folder = normalise_context(str(context)) if context is not None else None
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path="/".join(p for p in (folder, path.name)
                                                               if p))
    else:
        mlflow.log_artifact(str(path), artifact_path=folder)


def log_model(model: Any, model_name: str = "default", log_model_info: bool = True,
              log_as_artifact: bool = True) -> None:
    """The final model: ``mlflow.pytorch.log_model`` (a LoggedModel) and its size metrics."""
    if _current() is None:
        return
    if isinstance(model, str) and not isinstance(model_name, str):  # the newer (name, model)
        model, model_name = model_name, model
    if log_model_info:
        torch_helpers.log_model_info(model, model_name)
    if log_as_artifact:
        import mlflow.pytorch
        import torch

        # pickle: MLflow's default "pt2" format needs an input example the seeds never had;
        # explicit requirements skip MLflow's slow dependency inference.
        mlflow.pytorch.log_model(model, name=model_name, serialization_format="pickle",
                                 pip_requirements=[f"torch=={torch.__version__}"])


def save_model_version(model: Any, model_name: str, context: Any = None,
                       step: int | None = None, timestamp: int | None = None) -> None:
    """An intermediate version: artifact ``models/<model_name>/vNNNN_step<S>.pt``."""
    if _current() is None:
        return
    if isinstance(model, str) and not isinstance(model_name, str):  # the newer (name, model)
        model, model_name = model_name, model
    torch_helpers.save_model_version(model, model_name, step)


def log_dataset(dataset: Any, label: Any = None, context: Any = None) -> None:
    """``mlflow.log_input`` of a DataLoader or Dataset with its context (training by default);
    later metrics in that context are linked to it. ``(label, dataset)`` order works too."""
    session = _current()
    if session is None:
        return
    if isinstance(dataset, str):
        dataset, label = label, dataset
    name = normalise_context(str(context) if context is not None else None) or TRAINING
    logged = torch_helpers.log_dataset(dataset, str(label or "dataset"), name)
    session.datasets[name] = logged


def log_flops_per_batch(label: str, model: Any, batch: Any, context: Any = None,
                        step: int | None = None) -> None:
    """Forward FLOPs of this batch (a value per batch, not a running total)."""
    if _current() is not None:
        _flush_before_direct_logging()
        torch_helpers.log_flops_per_batch(label, model, batch, _context_name(context), step)


def log_flops_per_epoch(label: str, model: Any, dataset: Any, context: Any = None,
                        step: int | None = None) -> None:
    """Forward FLOPs of one pass over ``dataset`` (a DataLoader)."""
    if _current() is not None:
        _flush_before_direct_logging()
        torch_helpers.log_flops_per_epoch(label, model, dataset, _context_name(context), step)


def _context_name(context: Any) -> str | None:
    if context is None:
        return None
    name = normalise_context(str(context))
    _key("", name)  # declares a free-form context once
    return name


def _flush_before_direct_logging() -> None:
    session = _current()
    if session is not None and session.buffer:
        _flush(session)


# --- system and carbon metrics: one sample per call ---------------------------------------

def _system_monitors() -> list[Any]:
    """MLflow's CPU, disk and network monitors and mlflow-prov's GPU and process ones."""
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
    from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor

    from mlflow_prov.system_metrics.attach import build_monitors
    from mlflow_prov.system_metrics.config import MonitorSettings

    settings = MonitorSettings(carbon=False)
    return [CPUMonitor(), DiskMonitor(), NetworkMonitor(), *build_monitors(settings)]


def _start_carbon_monitor() -> Any:
    from mlflow_prov.system_metrics.base import MonitorUnavailable
    from mlflow_prov.system_metrics.carbon import CarbonMonitor
    from mlflow_prov.system_metrics.config import MonitorSettings

    settings = MonitorSettings.from_env()
    try:
        return CarbonMonitor(settings.country, settings.carbon_tracking_mode)
    except MonitorUnavailable as exc:
        _logger.info("prov4ml: no carbon metrics (%s)", exc)
        return None


def _sample(monitors: list[Any], step: int | None, prefix: str = SYSTEM_PREFIX) -> None:
    values: dict[str, float] = {}
    for monitor in monitors:
        monitor.collect_metrics()
        values.update(monitor.aggregate_metrics())
        monitor.clear_metrics()
    if values:
        _flush_before_direct_logging()
        mlflow.log_metrics({prefix + key: value for key, value in values.items()},
                           step=int(step or 0))


def log_system_metrics(context: Any = None, step: int | None = None) -> None:
    """One sample of CPU, memory, disk, network (and GPU/process) metrics, at ``step``.

    They are machine-wide ``system/...`` keys, as MLflow logs them: the context is not part
    of the key (a system metric describes the machine, not the data)."""
    session = _current()
    if session is None:
        return
    if session.system_monitors is None:
        session.system_monitors = _system_monitors()
    _sample(session.system_monitors, step)


def log_carbon_metrics(context: Any = None, step: int | None = None) -> None:
    """One sample of codecarbon's totals since ``start_run`` (``system/carbon/...``).

    The first call waits for codecarbon's hardware detection (about 1.5 s once)."""
    session = _current()
    if session is None or session.carbon_monitor is None:
        return
    session.carbon_monitor.wait_started()
    _sample([session.carbon_monitor], step)


# --- end ------------------------------------------------------------------------------------

def _exporter() -> Callable[..., list[Path]]:
    """The export function the exporters registered (see the module docstring for why)."""
    found = [ep for ep in entry_points(group=EXPORTER_ENTRY_POINT_GROUP)
             if ep.name == EXPORTER_ENTRY_POINT_NAME]
    if not found:
        raise RuntimeError(
            f"prov4ml.end_run exports with mlflow-prov's exporters, but no "
            f"{EXPORTER_ENTRY_POINT_GROUP!r} entry point is installed: reinstall with "
            "`pip install mlflow-prov` (or end_run(create_graph=False, create_svg=False, "
            "crate_ro_crate=False, export=False) to keep the run in MLflow only)")
    return found[0].load()


def end_run(create_graph: bool = False, create_svg: bool = False,
            crate_ro_crate: bool = False, export: bool = True) -> list[Path]:
    """End the run and export it into the save folder; returns the files written.

    Always PROV-JSON and the metric files (``metrics_file_type``); DOT with ``create_graph``,
    SVG with ``create_svg``, the Process Run RO-Crate with ``crate_ro_crate``; with
    ``use_compressor`` each run folder also as a zip."""
    global _session
    with _lock:
        session = _session
        if session is None:
            return []
        log_execution_end_time()
        for name, (_fold, value) in session.finals.items():
            session.buffer.append(Metric(f"{torch_helpers.FINAL_PREFIX}{name}", float(value),
                                         int(time.time() * 1000), 0))
        _flush(session)
        if session.carbon_monitor is not None:
            session.carbon_monitor.close()
        _session = None
    mlflow.end_run()
    if not export:
        return []
    return _exporter()(session.run_id, session.tracking_uri, session.save_dir,
                       create_graph=create_graph, create_svg=create_svg,
                       create_rocrate=crate_ro_crate, metrics_format=session.metrics_format,
                       compress=session.compress)


def get_run_id() -> str | None:
    """The MLflow run id of the current prov4ml run (None when none is started here)."""
    session = _current()
    return session.run_id if session else None


def get_save_dir() -> Path | None:
    """Where ``end_run`` will export."""
    session = _current()
    return session.save_dir if session else None
