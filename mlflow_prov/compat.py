"""Every private MLflow and codecarbon internal capture relies on, in one place.

Why: MLflow and codecarbon do not promise to keep these names; when one moves, the failure
should be one clear line naming the library, its version and the internal, not an
``AttributeError`` deep inside a store write or a monitoring thread. So capture code never
touches a private name directly: it calls an accessor here, and each accessor has a
*contract*, a cheap check that the internal is still what the accessor assumes.
``tests/unit/test_compat.py`` runs every contract, so upgrading MLflow or codecarbon fails
that test first, with a message such as
``mlflow 3.18.0: mlflow.store.db.utils._get_managed_session_maker(SessionMaker, db_type) changed``.

How to add an entry:

1. Write the accessor: a small typed function that does the private access (import the
   private module inside it when importing it at module level could cycle with MLflow's
   own start-up; see docs/internals.md, "Plugin mechanics").
2. Register its contract right below it with ``@contract("<library>", "<what we rely on>")``
   on a function that raises (``AssertionError``, ``AttributeError``, ``ImportError``...)
   when the internal changed. Keep it fast: no hardware detection, no network, no store.
3. Call the accessor from the capture code instead of the private name.

Exporters have their own ``exporters/compat.py`` for the export room.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

# --- contracts -------------------------------------------------------------------------------


class CompatError(RuntimeError):
    """An MLflow or codecarbon internal that mlflow-prov relies on is gone or changed."""


@dataclass(frozen=True)
class Contract:
    """One private internal we rely on, and a check that it is still there."""

    library: str
    relies_on: str
    check: Callable[[], None]

    def verify(self) -> None:
        """Run the check; raise :class:`CompatError` naming library, version and internal."""
        try:
            self.check()
        except Exception as error:
            raise CompatError(
                f"{self.library} {library_version(self.library)}: {self.relies_on} changed "
                f"({type(error).__name__}: {error}); update mlflow_prov/compat.py for this "
                f"version or install one it supports") from error


CONTRACTS: list[Contract] = []


def contract(library: str, relies_on: str, *, registry: list[Contract] | None = None
             ) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register ``check`` as the contract of one internal (see the module docstring), in
    :data:`CONTRACTS` or in ``registry`` (the export room keeps its own list)."""

    def register(check: Callable[[], None]) -> Callable[[], None]:
        (CONTRACTS if registry is None else registry).append(Contract(library, relies_on, check))
        return check

    return register


def library_version(library: str) -> str:
    """The installed version of ``library``, or ``(not installed)``."""
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _parameters(function: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _expect_parameters(function: Callable[..., Any], expected: list[str]) -> None:
    found = _parameters(function)
    assert found[:len(expected)] == expected, f"parameters are {found}, expected {expected}"


# --- MLflow: the SQL store's session makers --------------------------------------------------

SessionFactory = Callable[..., AbstractContextManager[Any]]


def managed_session_maker(session_maker: Any, db_type: str) -> SessionFactory:
    """MLflow's managed-session factory (commit/rollback/error mapping) around our maker."""
    from mlflow.store.db.utils import _get_managed_session_maker

    return _get_managed_session_maker(session_maker, db_type)


@contract("mlflow", "mlflow.store.db.utils._get_managed_session_maker(SessionMaker, db_type)")
def _check_managed_session_maker() -> None:
    from mlflow.store.db.utils import _get_managed_session_maker

    _expect_parameters(_get_managed_session_maker, ["SessionMaker", "db_type"])


def routing_session_maker(writes: Any, reads: Any, db_type: str) -> SessionFactory:
    """MLflow's read/write routing session factory (stores with a ``read_db_uri``)."""
    from mlflow.store.db.utils import _get_routing_session_maker

    return _get_routing_session_maker(writes, reads, db_type)


@contract("mlflow", "mlflow.store.db.utils._get_routing_session_maker(write, read, db_type)")
def _check_routing_session_maker() -> None:
    from mlflow.store.db.utils import _get_routing_session_maker

    _expect_parameters(_get_routing_session_maker,
                       ["write_session_maker", "read_session_maker", "db_type"])


def share_engine(db_uri: str, engine: Any) -> None:
    """Make MLflow's tracking and registry stores use ``engine`` for ``db_uri`` instead of
    building their own (they cache one engine per URI in ``_engine_map``): an in-memory prov
    store needs an engine MLflow's URI-only construction cannot make."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store_class in (TrackingStore, RegistryStore):
        with store_class._engine_map_lock:
            store_class._engine_map.setdefault(db_uri, engine)


@contract("mlflow", "SqlAlchemyStore._engine_map/_engine_map_lock (tracking and registry) "
                    "consulted by _get_or_create_engine(db_uri)")
def _check_engine_map() -> None:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store_class in (TrackingStore, RegistryStore):
        assert isinstance(store_class._engine_map, dict)
        assert hasattr(store_class._engine_map_lock, "acquire")
        source = inspect.getsource(store_class._get_or_create_engine)
        assert "_engine_map" in source, f"{store_class.__module__} no longer reads _engine_map"


# --- MLflow: private store methods that own a write's transaction ----------------------------

# SqlAlchemyStore's private helpers hooked by mlflow_prov.events (``log_batch`` is up to four
# transactions in MLflow, one per helper), with the leading parameters the describers bind.
PRIVATE_WRITE_METHODS: dict[str, list[str]] = {
    "_log_metrics": ["run_id", "metrics"],
    "_log_model_metrics": ["run_id", "metrics", "experiment_id", "dataset_uuid"],
    "_log_params": ["run_id", "params"],
    "_set_tags": ["run_id", "tags"],
    # mlflow gc's permanent deletions, each leaving a tombstone (mlflow_prov/events_artifacts.py)
    "_hard_delete_run": ["run_id"],
    "_hard_delete_experiment": ["experiment_id"],
    "_hard_delete_logged_model": ["model_id"],
}


@contract("mlflow", "SqlAlchemyStore._log_metrics/_log_model_metrics/_log_params/_set_tags/"
                    "_hard_delete_run/_hard_delete_experiment/_hard_delete_logged_model")
def _check_private_write_methods() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for name, parameters in PRIVATE_WRITE_METHODS.items():
        _expect_parameters(getattr(SqlAlchemyStore, name), parameters)


# --- MLflow: the system-metrics monitor of each run -------------------------------------------

def system_metrics_registry() -> dict[str, Any]:
    """MLflow's ``run_id -> SystemMetricsMonitor`` dict (``start_run`` fills it, ``end_run``
    takes from it): the only place extra monitors can join MLflow's sampling loop."""
    from mlflow.tracking import fluent

    return fluent.run_id_to_system_metrics_monitor


def replace_system_metrics_registry(registry: dict[str, Any]) -> None:
    """Put ``registry`` (a dict subclass) in place of MLflow's dict (``start_run`` looks it up
    at each call)."""
    from mlflow.tracking import fluent

    fluent.run_id_to_system_metrics_monitor = registry


@contract("mlflow", "mlflow.tracking.fluent.run_id_to_system_metrics_monitor (a dict)")
def _check_system_metrics_registry() -> None:
    from mlflow.tracking import fluent

    assert isinstance(fluent.run_id_to_system_metrics_monitor, dict), "not a dict"
    source = inspect.getsource(fluent)
    assert "run_id_to_system_metrics_monitor[" in source, "start_run no longer fills it"


def monitor_logging_step(system_monitor: Any) -> int:
    """The step MLflow's monitor logged its last sample at (0 before the first)."""
    return int(getattr(system_monitor, "_logging_step", 0))


@contract("mlflow", "SystemMetricsMonitor.monitors (a list) and ._logging_step")
def _check_system_metrics_monitor() -> None:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    source = inspect.getsource(SystemMetricsMonitor)
    assert "self.monitors" in source, "no monitors list"
    assert "self._logging_step" in source, "no _logging_step"
    assert callable(SystemMetricsMonitor.finish), "no finish()"


# --- MLflow: a Dataset as the entity log_inputs takes ---------------------------------------------

def dataset_entity(dataset: Any) -> Any:
    """The ``mlflow.entities.Dataset`` of an ``mlflow.data`` dataset, as ``mlflow.log_input``
    builds it (for a ``DatasetInput`` handed to ``MlflowClient.log_inputs``)."""
    return dataset._to_mlflow_entity()


@contract("mlflow", "mlflow.data.dataset.Dataset._to_mlflow_entity()")
def _check_dataset_entity() -> None:
    from mlflow.data.dataset import Dataset

    returns = inspect.signature(Dataset._to_mlflow_entity).return_annotation
    assert "Dataset" in str(returns), f"returns {returns}, not an entities Dataset"


# --- MLflow: the fluent end_run ---------------------------------------------------------------

def current_end_run() -> Callable[..., Any]:
    """The ``end_run`` that ``with mlflow.start_run():`` and MLflow's atexit handler call."""
    from mlflow.tracking import fluent

    return fluent.end_run


def rebind_end_run(end_run: Callable[..., Any]) -> None:
    """Make ``end_run`` the one MLflow's fluent API calls (its module global, which
    ``ActiveRun.__exit__`` and the atexit handler look up) and the one user code calls
    (``mlflow.end_run``)."""
    import mlflow
    from mlflow.tracking import fluent

    fluent.end_run = end_run
    mlflow.end_run = end_run


@contract("mlflow", "ActiveRun.__exit__ calls the module global mlflow.tracking.fluent.end_run")
def _check_end_run() -> None:
    from mlflow.tracking import fluent

    assert "end_run(" in inspect.getsource(fluent.ActiveRun.__exit__), "__exit__ has no end_run"


# --- MLflow: whether a tracking URI was chosen --------------------------------------------------

def tracking_uri_is_set() -> bool:
    """Whether the user chose a tracking URI (``mlflow.set_tracking_uri`` or
    ``MLFLOW_TRACKING_URI``); the public ``get_tracking_uri`` returns a default instead. The
    prov4ml facade defaults to a ``prov:`` store only when none was chosen."""
    from mlflow.tracking._tracking_service import utils

    return bool(utils.is_tracking_uri_set())


@contract("mlflow", "mlflow.tracking._tracking_service.utils.is_tracking_uri_set()")
def _check_tracking_uri_is_set() -> None:
    from mlflow.tracking._tracking_service import utils

    required = [p.name for p in inspect.signature(utils.is_tracking_uri_set).parameters.values()
                if p.default is inspect.Parameter.empty]
    assert required == [], f"now requires {required}"
    assert isinstance(utils.is_tracking_uri_set(), bool), "no longer returns a bool"


# --- codecarbon: the tracker's private state --------------------------------------------------

def tracker_started(tracker: Any) -> bool:
    """Whether ``start()`` really started (codecarbon swallows its own start errors)."""
    return getattr(tracker, "_start_time", None) is not None


def tracker_hardware(tracker: Any) -> list[Any]:
    """The hardware parts (CPU, GPU, RAM objects) the tracker measures or estimates."""
    return list(getattr(tracker, "_hardware", []))


def hardware_mode(part: Any) -> str | None:
    """How a CPU part is read (``intel_rapl``, ``constant``...); None for other parts."""
    return getattr(part, "_mode", None)


def running_emissions(tracker: Any) -> Any:
    """The running totals as an ``EmissionsData``, without triggering any output."""
    return tracker._prepare_emissions_data()


@contract("codecarbon", "BaseEmissionsTracker._start_time/_hardware/_prepare_emissions_data()")
def _check_tracker() -> None:
    from codecarbon.emissions_tracker import BaseEmissionsTracker

    source = inspect.getsource(BaseEmissionsTracker)
    for attribute in ("self._start_time", "self._hardware"):
        assert attribute in source, f"no {attribute}"
    assert callable(BaseEmissionsTracker._prepare_emissions_data), "no _prepare_emissions_data"


@contract("codecarbon", "codecarbon.external.hardware.CPU._mode")
def _check_cpu_mode() -> None:
    from codecarbon.external.hardware import CPU

    assert "self._mode" in inspect.getsource(CPU), "CPU has no _mode"


# --- MLflow: how much of a param or tag value the SQL store keeps -----------------------------

def value_limits() -> tuple[int, int]:
    """(param, tag) value lengths MLflow keeps; it cuts longer values to them (``value[:n]``),
    so the journal records the same cut value (see :func:`mlflow_prov.digests.stored_text`)."""
    from mlflow.utils import validation

    return validation.MAX_PARAM_VAL_LENGTH, validation.MAX_TAG_VAL_LENGTH


@contract("mlflow", "mlflow.utils.validation.MAX_PARAM_VAL_LENGTH/MAX_TAG_VAL_LENGTH cut values")
def _check_value_limits() -> None:
    from mlflow.utils import validation

    params, tags = value_limits()
    assert isinstance(params, int) and isinstance(tags, int), "limits are not ints"
    assert "value[:limit]" in inspect.getsource(validation._validate_length_limit), \
        "_validate_length_limit no longer cuts values to the limit"



# --- MLflow: what the bulk metrics path (mlflow_prov.bulk_metrics) reproduces -----------------

def validate_metric(key: Any, value: Any, timestamp: Any, step: Any, path: str) -> None:
    """MLflow's own check of one metric (its errors and messages, word for word)."""
    from mlflow.utils.validation import _validate_metric

    _validate_metric(key, value, timestamp, step, path=path)


@contract("mlflow", "mlflow.utils.validation._validate_metric(key, value, timestamp, step, path)")
def _check_validate_metric() -> None:
    from mlflow.utils.validation import _validate_metric

    _expect_parameters(_validate_metric, ["key", "value", "timestamp", "step", "path"])


def active_run_row(store: Any, session: Any, run_id: str) -> Any:
    """The run's row, looked up as MLflow's writes do (a workspace-aware store filters it),
    refused as they refuse it: missing, or not active."""
    run = store._get_run(run_uuid=run_id, session=session)
    store._check_run_is_active(run)
    return run


def deadlock_retry(store: Any, attempt: Callable[..., Any], *args: Any) -> Any:
    """``attempt(*args)``, re-run from scratch when the database picked it as a deadlock
    victim, as MLflow retries its own metric writes."""
    return store._run_with_deadlock_retry(attempt, *args)


@contract("mlflow", "SqlAlchemyStore._get_run(session, run_uuid)/_check_run_is_active(run)/"
                    "_run_with_deadlock_retry(fn, *args)")
def _check_store_helpers() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    _expect_parameters(SqlAlchemyStore._get_run, ["session", "run_uuid"])
    _expect_parameters(SqlAlchemyStore._check_run_is_active, ["run"])
    _expect_parameters(SqlAlchemyStore._run_with_deadlock_retry, ["fn", "args", "kwargs"])


@contract("mlflow", "SqlAlchemyStore._log_metrics_once: validate all, drop equal metrics, "
                    "sanitize, insert, raise latest_metrics on a strictly larger "
                    "(step, timestamp, value)")
def _check_log_metrics_semantics() -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    once = inspect.getsource(SqlAlchemyStore._log_metrics_once)
    for part in ("_validate_metric(", 'f"metrics[{idx}]"', "if metric not in seen",
                 "self.sanitize_metric_value(", "self._check_run_is_active(run)",
                 "_update_latest_metrics_if_necessary(", "except sqlalchemy.exc.IntegrityError"):
        assert part in once, f"no longer contains {part!r}"
    latest = inspect.getsource(SqlAlchemyStore._update_latest_metrics_if_necessary)
    assert "(metric_a.step, metric_a.timestamp, metric_a.value) > (" in latest, \
        "latest_metrics no longer compares (step, timestamp, value)"
    assert "self._log_metrics_once" in inspect.getsource(SqlAlchemyStore._log_metrics), \
        "_log_metrics no longer runs _log_metrics_once"
    batch = inspect.getsource(SqlAlchemyStore.log_batch)
    validated, logged = (batch.find("_validate_batch_log_data(metrics"),
                         batch.find("self._log_metrics(run_id, metrics)"))
    assert 0 <= validated < logged, "log_batch no longer validates its metrics before logging"


# --- run artifacts (the code files of mlflow_prov.code_capture) -------------------------------

def run_artifact_repository(artifact_uri: str) -> Any:
    """The artifact repository of a run's artifact root, as MLflow's client would open it."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri)


@contract("mlflow", "mlflow.store.artifact.artifact_repository_registry."
                    "get_artifact_repository(artifact_uri) -> ArtifactRepository.log_artifact")
def _check_run_artifact_repository() -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    parameters = list(inspect.signature(get_artifact_repository).parameters)
    assert parameters[0] == "artifact_uri", f"parameters are {parameters}"
    _expect_parameters(type(get_artifact_repository("file:///")).log_artifact,
                       ["local_file", "artifact_path"])
# --- MLflow: the scorer store behind mlflow.genai scorer registration (issue 19) ---------------

PROV_SCHEMES = ("prov", "prov+sqlite", "prov+postgresql", "prov+mysql",
                "prov+postgresql+psycopg", "prov+postgresql+psycopg2", "prov+mysql+pymysql",
                "prov+mysql+mysqldb")


def scorer_store(tracking_uri: str | None = None) -> Any:
    """MLflow's scorer store over a tracking store, as it builds one for ``sqlite:``:
    ``Scorer.register`` then writes through our store (journaled)."""
    from mlflow.genai.scorers.registry import MlflowTrackingStore

    return MlflowTrackingStore(tracking_uri)


def register_prov_scorer_stores() -> None:
    """Let MLflow's scorer registry serve ``prov`` URIs. MLflow maps URI schemes to scorer
    stores itself and knows only database schemes; without this, registering a scorer on a
    prov store fails with ``UnsupportedScorerStoreURIException``. The ``mlflow.scorer_store``
    entry points (setup.cfg) do the same once the package is installed."""
    from mlflow.genai.scorers.registry import _scorer_store_registry

    for scheme in PROV_SCHEMES:
        _scorer_store_registry._registry.setdefault(scheme, scorer_store)


@contract("mlflow", "mlflow.genai.scorers.registry._scorer_store_registry._registry maps URI "
          "schemes to builders; MlflowTrackingStore(tracking_uri)")
def _check_scorer_store_registry() -> None:
    from mlflow.genai.scorers.registry import MlflowTrackingStore, _scorer_store_registry

    assert isinstance(_scorer_store_registry._registry, dict), "_registry is not a dict"
    assert _scorer_store_registry._registry.get("sqlite") is MlflowTrackingStore, \
        "sqlite is no longer served by MlflowTrackingStore"
    _expect_parameters(MlflowTrackingStore.__init__, ["tracking_uri"])


# --- MLflow's server: the features that ask for a database URI (issue 19) ---------------------

# Where ``mlflow server`` decides whether its backend store is a database: job execution
# (``_check_requirements`` at start-up and per job, ``_get_job_store`` for the jobs table) and
# the SQL trace rollups' start-up check. Each rejects any scheme but a database's, ``prov``
# ones included, so each is given the database URI behind a prov URI instead. The flag: the
# function itself reads the server's store URI from the environment when given none.
DATABASE_URI_CHECKS = (("mlflow.server.jobs.utils", "_check_requirements", True),
                       ("mlflow.server.handlers", "_get_job_store", True),
                       ("mlflow.tracing.trace_rollup_service",
                        "validate_sql_trace_rollup_startup", False))
_ON_DATABASE_URI = "__mlflow_prov_database_uri__"


def serve_database_features(database_uri: Callable[[str], str | None]) -> None:
    """Let MLflow's database-only server features run on prov stores: each check in
    :data:`DATABASE_URI_CHECKS` gets ``database_uri(uri)`` in place of a prov URI (``None``:
    not one, so MLflow answers as it would). Installed when each module is imported (MLflow's
    own post-import hooks), so every process, the job runners included, gets it."""
    from mlflow.utils.import_hooks import register_post_import_hook

    for module_name, function_name, reads_environment in DATABASE_URI_CHECKS:
        register_post_import_hook(
            _database_uri_hook(function_name, database_uri, reads_environment), module_name)


def _database_uri_hook(function_name: str, database_uri: Callable[[str], str | None],
                       reads_environment: bool) -> Callable[[Any], None]:
    def hook(module: Any) -> None:
        check = getattr(module, function_name)
        if not getattr(check, _ON_DATABASE_URI, False):
            setattr(module, function_name,
                    _on_database_uri(check, database_uri, reads_environment))

    return hook


def _on_database_uri(check: Callable[..., Any], database_uri: Callable[[str], str | None],
                     reads_environment: bool) -> Callable[..., Any]:
    import functools
    import os

    @functools.wraps(check)
    def on_database(backend_store_uri: str | None = None, *args: Any, **kwargs: Any) -> Any:
        from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

        given = backend_store_uri or (os.environ.get(BACKEND_STORE_URI_ENV_VAR)
                                      if reads_environment else None)
        behind = database_uri(given) if given else None
        return check(behind or backend_store_uri, *args, **kwargs)

    setattr(on_database, _ON_DATABASE_URI, True)
    return on_database


@contract("mlflow", "mlflow.server.jobs.utils._check_requirements(backend_store_uri), "
          "mlflow.server.handlers._get_job_store(backend_store_uri) and mlflow.tracing."
          "trace_rollup_service.validate_sql_trace_rollup_startup(backend_store_uri) decide "
          "by extract_db_type_from_uri/DATABASE_ENGINES, which reject prov URIs; "
          "mlflow.server._run_server and submit_job import _check_requirements at call time")
def _check_database_uri_checks() -> None:
    import importlib

    from mlflow.exceptions import MlflowException
    from mlflow.server import _run_server
    from mlflow.server.jobs import submit_job
    from mlflow.utils.uri import extract_db_type_from_uri

    for module_name, function_name, reads_environment in DATABASE_URI_CHECKS:
        check = getattr(importlib.import_module(module_name), function_name)
        plain = getattr(check, "__wrapped__", check)
        assert _parameters(plain)[:1] == ["backend_store_uri"], (
            f"{function_name}: parameters are {_parameters(plain)}")
        reads = "BACKEND_STORE_URI_ENV_VAR" in inspect.getsource(plain)
        assert reads == reads_environment, f"{function_name} reads the environment: {reads}"
    try:
        extract_db_type_from_uri("prov+sqlite:///mlflow.db")
    except MlflowException:
        pass
    else:
        raise AssertionError("extract_db_type_from_uri accepts prov URIs now: drop the wrap")
    assert extract_db_type_from_uri("sqlite:///mlflow.db") == "sqlite"
    for caller in (_run_server, submit_job):
        source = inspect.getsource(caller)
        assert "from mlflow.server.jobs.utils import" in source and (
            "_check_requirements" in source), f"{caller.__name__} no longer imports it per call"
