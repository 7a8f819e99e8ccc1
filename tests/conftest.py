"""Shared fixtures: one real sample experiment per store kind, built once per session."""

from __future__ import annotations

import gc

import pytest
from export_experiment import SampleExperiment, build
from store_templates import prebuild, prov_store, sqlite_store


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


def pytest_configure(config: pytest.Config) -> None:
    """The empty template stores are made in a second process during the collection."""
    if not config.option.collectonly:
        prebuild()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what the collection imported (MLflow, torch, pandas, ...: about a million
    objects, alive until the end) out of the garbage collector's full passes, which would
    otherwise walk all of it again dozens of times in a run, and once more at exit."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)  # fewer young passes: MLflow's ORM allocates a lot


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """After each test module (its fixtures gone), the same for what it imported."""
    yield
    if nextitem is None or nextitem.path != item.path:
        gc.collect()
        gc.freeze()
