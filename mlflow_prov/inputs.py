"""Inputs that come from other runs: a dataset that is another run's artifact, a logged model.

Why: lineage across runs needs the *using* run to name what it used in a form the exporter
can follow. MLflow has no dataset source for ``runs:/<run_id>/<path>`` (its artifact-based
sources exclude the ``runs`` scheme), so ``mlflow.data.from_pandas(df, source="runs:/…")``
fails with "could not find a dataset source". :class:`RunArtifactDatasetSource` fills that
gap; MLflow registers it through the ``mlflow.dataset_source`` entry point of this package,
so installing mlflow-prov is enough. And ``mlflow.pyfunc.load_model("models:/…")`` inside a
run records nothing: :func:`log_model_input` records the model as the run's input.

    with mlflow.start_run():
        ds = mlflow_prov.log_run_artifact_as_dataset("runs:/<producer>/data/train.csv")
        model = mlflow.pyfunc.load_model("models:/m-…")
        mlflow_prov.log_model_input("models:/m-…")

Import order: MLflow loads the ``mlflow.dataset_source`` entry point (this module's
``RunArtifactDatasetSource``) while ``import mlflow`` runs. So this module imports no MLflow
at its top: a program that imports it (or ``from mlflow_prov import
log_run_artifact_as_dataset``) before ``mlflow`` would otherwise have it half-initialised
when MLflow's registry asks it for the class, and the ``runs:/`` source would silently go
unregistered. The class lives in :mod:`mlflow_prov._dataset_source` and is handed out by
:func:`__getattr__` once MLflow has finished (or is finishing) its own import.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

RUNS_SCHEME = "runs:/"
MODELS_SCHEME = "models:/"
SOURCE_TYPE = "mlflow_run_artifact"
DIGEST_LENGTH = 32  # MLflow's datasets table keeps 36 characters of a digest


def __getattr__(name: str) -> Any:
    """``RunArtifactDatasetSource``, the entry point's target, made on first use: MLflow is
    imported first (when it is already importing, this returns at once), so the class's
    base exists and MLflow's registry, which may ask for it re-entrantly, gets this class."""
    if name != "RunArtifactDatasetSource":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import mlflow  # noqa: F401  (before the class's module, never after: see the docstring)

    from mlflow_prov._dataset_source import RunArtifactDatasetSource

    return RunArtifactDatasetSource


def split_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run_id>/<path>`` -> (run_id, path); ValueError naming the expected form."""
    run_id, _, path = str(uri).removeprefix(RUNS_SCHEME).partition("/")
    if not str(uri).startswith(RUNS_SCHEME) or not run_id or not path.strip("/"):
        raise ValueError(f"{uri!r} is not a run artifact URI; write runs:/<run_id>/<path>")
    return run_id, path.strip("/")


def file_digest(path: str | Path) -> str:
    """The sha256 of a file (or of a folder's files, by sorted relative path), cut to what
    MLflow's datasets table keeps."""
    digest = hashlib.sha256()
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for file in files:
        if root.is_dir():
            digest.update(file.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with file.open("rb") as handle:
            for block in iter(functools.partial(handle.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:DIGEST_LENGTH]


def log_run_artifact_as_dataset(uri: str, name: str | None = None,
                                context: str | None = "training",
                                run_id: str | None = None) -> Any:
    """Log another run's artifact ``runs:/<run_id>/<path>`` as a dataset input of the active
    run (or ``run_id``), and return the MLflow dataset.

    The artifact is downloaded once to compute its digest (sha256 of the content), so the
    same file logged by two runs has the same digest. Its source is the ``runs:/`` URI, which
    the exporter and ``mlflow-prov lineage`` follow back to the producing run.
    """
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset

    from mlflow_prov._dataset_source import RunArtifactDatasetSource

    source = RunArtifactDatasetSource(uri)
    local = source.load()
    # MLflow's stubs leave Dataset.profile abstract; MetaDataset instantiates fine.
    dataset = MetaDataset(source=source,  # type: ignore[abstract]
                          name=name or Path(source.path).name, digest=file_digest(local))
    if run_id is None:
        mlflow.log_input(dataset, context=context)
    else:
        mlflow.MlflowClient().log_inputs(run_id, datasets=[_dataset_input(dataset, context)])
    return dataset


def _dataset_input(dataset: Any, context: str | None) -> Any:
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from mlflow_prov.compat import dataset_entity

    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)] if context else []
    return DatasetInput(dataset=dataset_entity(dataset), tags=tags)


def log_model_input(model_uri: str, run_id: str | None = None) -> str:
    """Record that the active run (or ``run_id``) used a logged model; returns its model id.

    ``model_uri`` is ``models:/<model_id>``, ``models:/<name>/<version>`` or
    ``models:/<name>@<alias>`` (a registered version is traced to the logged model it was
    made from). MLflow's ``load_model`` records nothing, so call this next to it.
    """
    import mlflow
    from mlflow.entities import LoggedModelInput

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError("no active run: call log_model_input inside mlflow.start_run() "
                             "or pass run_id=")
        run_id = active.info.run_id
    client = mlflow.MlflowClient()
    model_id = resolve_model_id(client, model_uri)
    client.log_inputs(run_id, models=[LoggedModelInput(model_id=model_id)])
    return model_id


def resolve_model_id(client: Any, model_uri: str) -> str:
    """The logged-model id behind a ``models:/`` URI; ValueError naming the URI otherwise."""
    if not model_uri.startswith(MODELS_SCHEME):
        raise ValueError(f"{model_uri!r} is not a model URI; write models:/<model_id>, "
                         "models:/<name>/<version> or models:/<name>@<alias>")
    rest = model_uri.removeprefix(MODELS_SCHEME).strip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        version = client.get_model_version_by_alias(name, alias)
    elif "/" in rest:
        name, _, number = rest.partition("/")
        version = client.get_model_version(name, number)
    else:
        return client.get_logged_model(rest).model_id
    # MLflow 3.17 leaves model_id empty on versions registered from models:/<model_id>; the
    # source still names the model.
    source = (version.source or "").removeprefix(MODELS_SCHEME)
    if version.model_id:
        return version.model_id
    if version.source.startswith(MODELS_SCHEME) and source and "/" not in source.strip("/"):
        return source.strip("/")
    raise ValueError(f"{model_uri!r} was registered from a run artifact, not a logged "
                     "model; log the run's dataset or artifact instead")
