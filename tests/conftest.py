"""Shared fixtures: one real sample experiment per store kind, built once per session."""

from __future__ import annotations

import pytest
from export_experiment import SampleExperiment, build
from store_templates import prov_store, sqlite_store


@pytest.fixture(scope="session")
def prov_experiment(tmp_path_factory) -> SampleExperiment:
    """The sample experiment in a ``prov:///`` store (with the provenance journal)."""
    workdir = tmp_path_factory.mktemp("prov-store")
    return build(prov_store(workdir / "store"), workdir)


@pytest.fixture(scope="session")
def sqlite_experiment(tmp_path_factory) -> SampleExperiment:
    """The same experiment in a plain ``sqlite:///`` store (no journal: no history)."""
    workdir = tmp_path_factory.mktemp("sqlite-store")
    return build(sqlite_store(workdir / "mlflow.db"), workdir)

