"""What a seal target names: ``runs:/ID``, ``models:/NAME/VERSION`` or ``experiments:/ID``.

Looked up through MLflow's public client on the same store, so a target that does not exist
is refused in one line before anything is written, and a model version's stage and aliases
are read for its seal record (see :mod:`mlflow_prov.seals`).
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from mlflow_prov.seals import (
    EXPERIMENT_TARGET,
    MODEL_TARGET,
    RUN_TARGET,
    Sealable,
    SealTargetError,
)
from mlflow_prov.uri import is_prov_uri, parse_prov_uri
from mlflow_prov.vocabulary import experiment_chain, registered_model_chain, run_chain

FORMS = "runs:/RUN_ID, models:/NAME/VERSION or experiments:/EXPERIMENT_ID"
_PAGE = 1000


def resolve(tracking_uri: str, target: str) -> tuple[list[Sealable], str]:
    """The objects ``target`` names in the store, and the store's database URI."""
    if not is_prov_uri(tracking_uri):
        raise SealTargetError(f"{tracking_uri!r} is not a prov store: seals live in the "
                              "provenance journal (prov:///dir, prov+sqlite://, "
                              "prov+postgresql://, prov+mysql://)")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if target.startswith(RUN_TARGET):
            objects = [_run(client, _path(target, RUN_TARGET, 1)[0])]
        elif target.startswith(MODEL_TARGET):
            name, version = _path(target, MODEL_TARGET, 2)
            objects = [_model_version(client, name, version)]
        elif target.startswith(EXPERIMENT_TARGET):
            objects = _experiment(client, _path(target, EXPERIMENT_TARGET, 1)[0])
        else:
            raise SealTargetError(f"cannot seal {target!r}: name {FORMS}")
    except MlflowException as error:
        raise SealTargetError(f"{target} is not in the store ({error.message})") from error
    return objects, parse_prov_uri(tracking_uri).db_uri


def _path(target: str, prefix: str, parts: int) -> list[str]:
    """The ids after ``prefix`` (a run's artifact path after its id is ignored)."""
    found = [part for part in target.removeprefix(prefix).split("/") if part]
    if len(found) < parts or (prefix == MODEL_TARGET and len(found) != parts):
        raise SealTargetError(f"cannot seal {target!r}: name {FORMS}")
    return found[:parts]


def _run(client: MlflowClient, run_id: str) -> Sealable:
    run = client.get_run(run_id)
    return Sealable(chain=run_chain(run_id), target=f"{RUN_TARGET}{run_id}",
                    experiment_id=str(run.info.experiment_id), run_id=run_id)


def _model_version(client: MlflowClient, name: str, version: str) -> Sealable:
    if not version.isdigit():
        raise SealTargetError(f"cannot seal models:/{name}/{version}: a seal names a version "
                              "number (aliases and stages move), as models:/NAME/3")
    found = client.get_model_version(name, version)
    return Sealable(chain=registered_model_chain(name), target=f"{MODEL_TARGET}{name}/{version}",
                    version=int(version),
                    extra=(("stage", found.current_stage), ("aliases", sorted(found.aliases))))


def _experiment(client: MlflowClient, experiment_id: str) -> list[Sealable]:
    """The experiment and every run it holds now (deleted ones too: a restore is a write)."""
    experiment = client.get_experiment(experiment_id)
    objects = [Sealable(chain=experiment_chain(experiment.experiment_id),
                        target=f"{EXPERIMENT_TARGET}{experiment.experiment_id}",
                        experiment_id=str(experiment.experiment_id))]
    token = None
    while True:
        page = client.search_runs(
            [experiment.experiment_id], run_view_type=ViewType.ALL, max_results=_PAGE,
            page_token=token)
        objects += [Sealable(chain=run_chain(run.info.run_id),
                             target=f"{RUN_TARGET}{run.info.run_id}",
                             experiment_id=str(experiment.experiment_id),
                             run_id=run.info.run_id) for run in page]
        token = page.token
        if not token:
            return objects
