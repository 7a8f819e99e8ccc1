"""Importing mlflow-prov before or after ``mlflow`` registers every plugin, in any order.

MLflow loads its plugins' entry points (the ``runs:/`` dataset source, the ``prov`` stores, the
header and run-context providers) while ``import mlflow`` runs. A plugin module that is still
half-imported at that moment (it, or something it imports first, started MLflow's import) is
skipped with nothing but a ``UserWarning``, and the user meets the consequence much later:
``from_pandas(..., source="runs:/…")`` fails to find a source.

Each order runs in a fresh interpreter (a failed circular import leaves a process that proves
nothing about the next order). The orders: ``mlflow`` first, then every public module; each
module an MLflow entry point names, first (the only modules whose own half-import can hide a
plugin: any other module that leads to the same failure does so by importing one of these,
which then fails the same way when imported first, with the same modules half-imported);
and the report's own steps, down to the dataset they failed to make.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("import_order_probe.py")
PACKAGES = ("mlflow_prov", "exporters")


def public_modules() -> list[str]:
    """Every module and package under ours whose dotted name has no ``_``-part, found on disk
    (importing a package to list it would already be an import order)."""
    found = []

    def walk(package: str) -> None:
        for module in pkgutil.iter_modules([str(ROOT / package.replace(".", "/"))],
                                           f"{package}."):
            if any(part.startswith("_") for part in module.name.split(".")):
                continue
            found.append(module.name)
            if module.ispkg:
                walk(module.name)

    for package in PACKAGES:
        found.append(package)
        walk(package)
    return sorted(found)


def plugin_modules() -> list[str]:
    """The modules MLflow's entry points of this distribution name (``module:attribute``)."""
    return sorted({entry_point.value.partition(":")[0]
                   for entry_point in distribution("mlflow-prov").entry_points
                   if entry_point.group.startswith("mlflow.")})


def probe(*order: str) -> list[str]:
    done = subprocess.run([sys.executable, str(PROBE), *order], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_enumeration_finds_the_modules_and_plugins_it_must():
    modules = public_modules()
    assert {"mlflow_prov", "mlflow_prov.inputs", "mlflow_prov.system_metrics.activation",
            "exporters.app", "exporters.cli"} <= set(modules)
    assert not [name for name in modules if "._" in name]
    assert {"mlflow_prov.inputs", "mlflow_prov.builders"} <= set(plugin_modules())
    assert set(plugin_modules()) <= set(modules)


@pytest.mark.slow  # a fresh interpreter that imports MLflow and every module
def test_mlflow_first_then_every_public_module():
    assert probe("mlflow", *public_modules()) == []


@pytest.mark.slow  # one fresh interpreter per plugin module (MLflow's import is seconds)
@pytest.mark.parametrize("module", plugin_modules())
def test_a_plugin_module_imported_before_mlflow(module):
    assert probe(module) == []


@pytest.mark.slow  # a fresh interpreter
def test_the_issues_order_logs_a_runs_dataset(tmp_path):
    """The report's own steps: the helper imported before ``mlflow``, then a pandas dataset
    whose source is another run's artifact."""
    script = (
        "from mlflow_prov import log_run_artifact_as_dataset\n"
        "import mlflow, pandas\n"
        "dataset = mlflow.data.from_pandas(pandas.DataFrame({'x': [1]}), "
        "source='runs:/0123/data/train.csv')\n"
        "print(type(dataset.source).__name__, dataset.source.uri)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mlflow_prov" not in done.stderr, done.stderr  # no registration warning either
    assert done.stdout.split() == ["RunArtifactDatasetSource", "runs:/0123/data/train.csv"]
