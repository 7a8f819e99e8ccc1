"""Run in a fresh interpreter: import some modules in the order given, then check that MLflow
registered every plugin mlflow-prov declares, and print what went wrong as JSON lines.

``python import_order_probe.py FIRST [MORE...]``: each argument is a module name (``mlflow``
included) imported in that order; then ``mlflow`` (if no argument did). A circular import
shows only as a ``UserWarning`` from MLflow's registry and a plugin missing later, so both are
collected: every warning that names an mlflow-prov module, and every entry point of the
distribution in an MLflow group that MLflow's registry does not hold afterwards.
"""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from importlib.metadata import distribution

DISTRIBUTION = "mlflow-prov"
OUR_PACKAGES = ("mlflow_prov", "exporters")


def _registered(group: str, entry_point) -> bool:
    """Whether MLflow holds this entry point's object where it looks it up for ``group``."""
    if group == "mlflow.dataset_source":
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        return type(resolve_dataset_source("runs:/0123/data/train.csv")) is entry_point.load()
    if group == "mlflow.tracking_store":
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return _tracking_store_registry.get_store_builder(
            f"{entry_point.name}:///nowhere") is entry_point.load()
    if group == "mlflow.model_registry_store":
        from mlflow.tracking._model_registry.utils import _get_store_registry

        return _get_store_registry().get_store_builder(
            f"{entry_point.name}:///nowhere") is entry_point.load()
    if group == "mlflow.request_header_provider":
        from mlflow.tracking.request_header.registry import _request_header_provider_registry

        return any(type(provider) is entry_point.load()
                   for provider in _request_header_provider_registry)
    if group == "mlflow.run_context_provider":
        from mlflow.tracking.context.registry import _run_context_provider_registry

        return any(type(provider) is entry_point.load()
                   for provider in _run_context_provider_registry)
    # ``mlflow.app``: the server imports the target by name when it starts
    return callable(entry_point.load())


def main(order: list[str]) -> list[str]:
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in [*order, *(["mlflow"] if "mlflow" not in order else [])]:
            try:
                importlib.import_module(name)
            except Exception as error:  # noqa: BLE001 - the probe reports, the test fails
                problems.append(f"import {name}: {type(error).__name__}: {error}")
        for entry_point in distribution(DISTRIBUTION).entry_points:
            if entry_point.group.startswith("mlflow."):
                try:
                    if not _registered(entry_point.group, entry_point):
                        problems.append(f"{entry_point.group} {entry_point.name}: not registered")
                except Exception as error:  # noqa: BLE001
                    problems.append(f"{entry_point.group} {entry_point.name}: "
                                    f"{type(error).__name__}: {error}")
    problems += [f"warning: {warning.message}" for warning in caught
                 if any(package in str(warning.message) for package in OUR_PACKAGES)]
    return problems


if __name__ == "__main__":
    for line in main(sys.argv[1:]):
        print(json.dumps(line))
