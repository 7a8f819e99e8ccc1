"""Every MLflow internal the export room relies on, in one place, each under a contract.

The export reads MLflow through its public client API; the one exception is downloading a
single artifact file. ``mlflow.artifacts.download_artifacts`` draws a progress bar per call
(only an environment variable turns it off, which would change the whole process), so one
file is fetched through the artifact repository's own per-file download instead.

Same rules as :mod:`mlflow_prov.compat` (see its docstring for how to add an entry): an
accessor per internal, a ``@contract`` check per accessor, registered in :data:`CONTRACTS`
here, which ``tests/unit/test_compat.py`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_prov.compat import CompatError, Contract, contract

__all__ = ["CONTRACTS", "CompatError", "Contract", "artifact_repository", "download_file",
           "tracking_store_schemes"]

CONTRACTS: list[Contract] = []


def _contract(relies_on: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    return contract("mlflow", relies_on, registry=CONTRACTS)


def artifact_repository(root_uri: str, tracking_uri: str) -> Any:
    """The artifact repository of a run's artifact root; ``tracking_uri`` resolves
    ``mlflow-artifacts:`` roots against the export's source, not the process-wide URI."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(root_uri, tracking_uri=tracking_uri)


@_contract("mlflow.store.artifact.artifact_repository_registry.get_artifact_repository("
           "artifact_uri, tracking_uri=)")
def _check_artifact_repository() -> None:
    import inspect

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    parameters = list(inspect.signature(get_artifact_repository).parameters)
    assert parameters[:2] == ["artifact_uri", "tracking_uri"], f"parameters are {parameters}"


def download_file(repository: Any, path: str, local: Path) -> Path:
    """Download the one artifact file ``path`` (relative to the repository root) to ``local``,
    without progress bars for ordinary sizes (MLflow draws one only above 500 MB)."""
    local.parent.mkdir(parents=True, exist_ok=True)
    repository._download_file(remote_file_path=path, local_path=str(local))
    return local


@_contract("ArtifactRepository._download_file(remote_file_path, local_path)")
def _check_download_file() -> None:
    import inspect

    from mlflow.store.artifact.artifact_repo import ArtifactRepository
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    for repository in (ArtifactRepository, HttpArtifactRepository, LocalArtifactRepository):
        parameters = list(inspect.signature(repository._download_file).parameters)
        assert parameters[1:3] == ["remote_file_path", "local_path"], (
            f"{repository.__name__}: parameters are {parameters}")


def tracking_store_schemes() -> list[str]:
    """Every tracking-URI scheme MLflow's store registry answers, its own and plugins':
    the export names a mistyped scheme itself, before MLflow answers it with its
    model-registry message (issue 10)."""
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    return sorted(scheme for scheme in _tracking_store_registry._registry if scheme)


@_contract("mlflow.tracking._tracking_service.utils._tracking_store_registry._registry "
           "(scheme -> store builder)")
def _check_tracking_store_schemes() -> None:
    schemes = tracking_store_schemes()
    for expected in ("file", "sqlite", "postgresql", "mysql", "http", "https", "prov"):
        assert expected in schemes, f"{expected!r} missing from {schemes}"


# --- MLflow's server: the ``prov`` and ``prov-auth`` apps (exporters/app) ---------------------

def backend_store_env_var() -> str:
    """The variable in which ``mlflow server`` hands its workers the backend store URI."""
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    return BACKEND_STORE_URI_ENV_VAR


@_contract("mlflow.server.constants.BACKEND_STORE_URI_ENV_VAR (the workers' store URI)")
def _check_backend_store_env_var() -> None:
    assert backend_store_env_var() == "_MLFLOW_SERVER_FILE_STORE", backend_store_env_var()


def served_by_uvicorn() -> bool:
    """Whether ``mlflow server`` runs the app under uvicorn (its default since MLflow 3.3),
    which cannot serve a Flask app without MLflow's FastAPI wrapper."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    return _MLFLOW_SGI_NAME.get() == "uvicorn"


@_contract("mlflow.environment_variables._MLFLOW_SGI_NAME (uvicorn, gunicorn or waitress)")
def _check_served_by_uvicorn() -> None:
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    assert _MLFLOW_SGI_NAME.name == "_MLFLOW_SGI_NAME", _MLFLOW_SGI_NAME.name


def mlflow_flask_app() -> Any:
    """MLflow's own Flask app: what a factory called without arguments (uvicorn) extends."""
    from mlflow.server import app

    return app


@_contract("mlflow.server.app (MLflow's Flask app)")
def _check_mlflow_flask_app() -> None:
    from flask import Flask

    assert isinstance(mlflow_flask_app(), Flask)


def asgi_app(flask_app: Any) -> Any:
    """The FastAPI app MLflow wraps its Flask app in for uvicorn."""
    from mlflow.server.fastapi_app import create_fastapi_app

    return create_fastapi_app(flask_app)


@_contract("mlflow.server.fastapi_app.create_fastapi_app(flask_app)")
def _check_asgi_app() -> None:
    import inspect

    from mlflow.server.fastapi_app import create_fastapi_app

    assert list(inspect.signature(create_fastapi_app).parameters)[:1] == ["flask_app"]


def _auth() -> Any:
    from mlflow.server import auth

    return auth


def basic_auth_app(flask_app: Any) -> Any:
    """MLflow's basic-auth app around ``flask_app`` (a FastAPI app under uvicorn)."""
    return _auth().create_app(flask_app)


def basic_auth_gate() -> Callable[[], Any]:
    """Basic-auth's before-request hook, as registered on the Flask app."""
    return _auth()._before_request


def authenticate() -> Any:
    """The request's ``Authorization``, or the 401 response basic-auth answers without one."""
    return _auth().authenticate_request()


def is_admin(username: str) -> bool:
    return bool(_auth().store.get_user(username).is_admin)


def can_read_experiment(experiment_id: str, username: str) -> bool:
    """Basic-auth's answer for the user on the experiment (its own permission or the
    configured default), as MLflow's own API applies it."""
    return bool(_auth()._get_experiment_permission(experiment_id, username).can_read)


@_contract("mlflow.server.auth: create_app(app), _before_request, authenticate_request, "
           "store.get_user(username).is_admin, _get_experiment_permission(experiment_id, "
           "username).can_read")
def _check_basic_auth() -> None:
    import inspect

    from mlflow.server.auth.permissions import NO_PERMISSIONS, READ

    auth = _auth()
    assert list(inspect.signature(auth.create_app).parameters)[:1] == ["app"]
    assert callable(auth._before_request) and callable(auth.authenticate_request)
    assert callable(type(auth.store).get_user)
    parameters = list(inspect.signature(auth._get_experiment_permission).parameters)
    assert parameters == ["experiment_id", "username"], parameters
    assert READ.can_read and not NO_PERMISSIONS.can_read


def can_manage_experiment(experiment_id: str, username: str) -> bool:
    """Basic-auth's answer: may the user MANAGE the experiment (own permission or default)."""
    return bool(_auth()._get_experiment_permission(experiment_id, username).can_manage)


def can_manage_registered_model(name: str) -> bool:
    """Basic-auth's answer for the request's user: may they MANAGE the registered model."""
    return bool(_auth()._get_registered_model_permission(name).can_manage)


@_contract("mlflow.server.auth: _get_experiment_permission(experiment_id, username)"
           ".can_manage, _get_registered_model_permission(name).can_manage")
def _check_manage_permissions() -> None:
    import inspect

    from mlflow.server.auth.permissions import EDIT, MANAGE

    auth = _auth()
    assert list(inspect.signature(auth._get_registered_model_permission).parameters) == [
        "name"]
    assert MANAGE.can_manage and not EDIT.can_manage


MLFLOW_UI_ENDPOINT = "serve"


def mlflow_ui_endpoint() -> str:
    """The Flask endpoint that answers MLflow's single-page UI (its ``index.html``) at ``/``:
    the one response :mod:`exporters.app.ui_link` adds its script to."""
    return MLFLOW_UI_ENDPOINT


@_contract("mlflow.server.app view 'serve' answers '/' with the UI's index.html, "
           "which has a </body>")
def _check_mlflow_ui_endpoint() -> None:
    app = mlflow_flask_app()
    rule = next((r for r in app.url_map.iter_rules() if r.endpoint == MLFLOW_UI_ENDPOINT), None)
    assert rule is not None, f"no endpoint {MLFLOW_UI_ENDPOINT!r} in {app.url_map}"
    assert rule.rule.endswith("/"), f"endpoint {MLFLOW_UI_ENDPOINT!r} serves {rule.rule}"
    index = Path(app.static_folder or "") / "index.html"
    assert index.is_file(), f"MLflow's UI has no {index}"
    assert "</body>" in index.read_text(encoding="utf-8"), f"{index} has no </body>"


# --- basic-auth's answers for MLflow 3's GenAI objects (issue 19) -----------------------------

def _server_tracking_store() -> Any:
    from mlflow.server.handlers import _get_tracking_store

    return _get_tracking_store()


def can_read_trace(trace_id: str) -> bool | None:
    """Basic-auth's answer for the request's user on a trace (and so its assessments): READ
    on the trace's experiment, less any trace-level denial, as ``GetTraceInfoV3`` checks.
    ``None`` for a trace MLflow no longer has, which basic-auth has no rule for."""
    auth = _auth()
    if auth._fetch_or_none(_server_tracking_store().get_trace_info, trace_id) is None:
        return None
    return bool(auth._authorize_trace(trace_id, "read"))


def can_read_dataset(dataset_id: str, username: str) -> bool:
    """Basic-auth's answer on an evaluation dataset, as ``GetDataset`` checks: READ on every
    experiment it belongs to, and it belongs to one at least. False once MLflow has none."""
    from mlflow.exceptions import MlflowException

    try:
        experiment_ids = _server_tracking_store().get_dataset_experiment_ids(dataset_id)
    except MlflowException:
        return False
    return bool(experiment_ids) and all(can_read_experiment(str(e), username)
                                        for e in experiment_ids)


def can_read_prompt(name: str) -> bool:
    """Basic-auth's answer for the request's user on a prompt: its ``prompt`` grant (a
    ``registered_model`` grant on the same name does not count) or the default. False for a
    prompt MLflow no longer has."""
    from mlflow.exceptions import MlflowException

    try:
        return bool(_auth()._get_registered_model_or_prompt_permission(name).can_read)
    except MlflowException:
        return False


def can_read_gateway_secret(secret_id: str) -> bool:
    """Basic-auth's answer for the request's user on an AI-gateway secret (its
    ``gateway_secret`` grant or the default), as ``GetGatewaySecretInfo`` checks."""
    return bool(_auth()._get_gateway_secret_permission(secret_id).can_read)


@_contract("mlflow.server.auth: _authorize_trace(trace_id, action) guards GetTraceInfoV3, "
           "_fetch_or_none(fetch, resource_id), mlflow.server.handlers._get_tracking_store(), "
           "_get_registered_model_or_prompt_permission(name) the prompts, "
           "_get_gateway_secret_permission(secret_id) GetGatewaySecretInfo, experiment "
           "permissions the evaluation datasets, admins only the webhooks")
def _check_genai_permissions() -> None:
    import inspect

    auth = _auth()
    from mlflow.server.handlers import _get_tracking_store
    from mlflow.store.tracking.abstract_store import AbstractStore

    assert callable(_get_tracking_store) and callable(auth._fetch_or_none)
    for method in ("get_trace_info", "get_dataset_experiment_ids"):
        assert callable(getattr(AbstractStore, method)), f"AbstractStore.{method} is gone"
    for function, parameters in ((auth._authorize_trace, ["trace_id", "action"]),
                                 (auth._fetch_or_none, ["fetch", "resource_id"]),
                                 (auth._get_registered_model_or_prompt_permission, ["name"]),
                                 (auth._get_gateway_secret_permission, ["secret_id"])):
        found = list(inspect.signature(function).parameters)
        assert found == parameters, f"{function.__name__}: parameters are {found}"
    source = inspect.getsource(auth)
    for rule in ("GetTraceInfoV3: validate_can_read_trace_by_trace_id",
                 "GetDataset: validate_can_read_dataset",
                 "GetGatewaySecretInfo: validate_can_read_gateway_secret",
                 "GetWebhook: sender_is_admin", "ListWebhooks: sender_is_admin"):
        assert rule in source, f"basic-auth no longer maps {rule!r}"
    dataset_rule = inspect.getsource(auth.validate_can_read_dataset)
    assert "bool(experiment_ids) and all(p.can_read" in dataset_rule, dataset_rule
