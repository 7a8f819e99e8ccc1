"""Every write method MLflow's stores declare is journaled.

A write with no specific describer gets the generic one (mlflow_prov/events_generic.py), so
a new MLflow release that adds a write method is journaled, and one that renames a private
helper we hook fails here instead of silently writing rows without provenance.
"""

import inspect

import pytest
from mlflow.store.model_registry.abstract_store import AbstractStore as AbstractRegistryStore
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as SqlRegistryStore
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from mlflow_prov.events import JOURNALED_THROUGH, REGISTRY_HOOKS, TRACKING_HOOKS
from mlflow_prov.events_genai import GENAI_REGISTRY_HOOKS, GENAI_TRACKING_HOOKS
from mlflow_prov.events_generic import COMPUTATIONS
from mlflow_prov.store import ProvRegistryStore, ProvTrackingStore

READ_PREFIXES = ("get_", "search_", "list_", "find_", "query_", "_", "supports", "filter_",
                 "calculate", "batch_get", "sum_")

# Not writes at all: control of the client-side async queue. Every other public method that
# is not a read is journaled: by a specific hook, through the helpers it calls, or by the
# generic describer (mlflow_prov.events_generic).
NOT_WRITES = {"end_async_logging", "flush_async_logging", "shut_down_async_logging"}
ALL_TRACKING_HOOKS = {**TRACKING_HOOKS, **GENAI_TRACKING_HOOKS}
ALL_REGISTRY_HOOKS = {**REGISTRY_HOOKS, **GENAI_REGISTRY_HOOKS}


def _public_writes(cls) -> set[str]:
    return {name for name, value in inspect.getmembers(cls)
            if callable(value) and not name.startswith(READ_PREFIXES)}


@pytest.mark.parametrize("mlflow_class, ours", [
    (AbstractStore, ProvTrackingStore), (SqlAlchemyStore, ProvTrackingStore),
    (AbstractRegistryStore, ProvRegistryStore), (SqlRegistryStore, ProvRegistryStore)])
def test_every_public_write_is_journaled(mlflow_class, ours):
    """Each public write of MLflow's store (its abstract API and the SQL store with the
    gateway and MCP mixins) is wrapped in ours, or journaled through the helpers it calls."""
    unjournaled = sorted(
        name for name in _public_writes(mlflow_class) - NOT_WRITES - set(JOURNALED_THROUGH)
        - COMPUTATIONS
        if getattr(ours, name) is getattr(SqlAlchemyStore if ours is ProvTrackingStore
                                          else SqlRegistryStore, name, None))
    assert not unjournaled, f"write methods no event describes: {unjournaled}"


def test_the_genai_writes_have_specific_describers():
    """The GenAI writes the issue names are described in their own words, not generically."""
    for name in ("start_trace", "log_spans", "create_assessment", "update_assessment",
                 "delete_assessment", "upsert_dataset_records", "register_scorer",
                 "set_trace_tag", "delete_traces"):
        assert name in GENAI_TRACKING_HOOKS
    for name in ("set_prompt_alias", "delete_prompt_alias", "create_webhook"):
        assert name in GENAI_REGISTRY_HOOKS


@pytest.mark.parametrize("base, hooks", [
    (SqlAlchemyStore, ALL_TRACKING_HOOKS), (SqlRegistryStore, ALL_REGISTRY_HOOKS)])
def test_every_hooked_method_exists_in_mlflow(base, hooks):
    missing = [name for name in hooks if not callable(getattr(base, name, None))]
    assert not missing, f"MLflow no longer has {missing}: re-check how those writes are made"


def test_journaled_through_names_hooked_helpers():
    hooked = set(ALL_TRACKING_HOOKS) | set(ALL_REGISTRY_HOOKS)
    for public, helpers in JOURNALED_THROUGH.items():
        assert set(helpers) <= hooked, f"{public} is said to go through unhooked {helpers}"


def test_hooked_methods_are_wrapped_and_keep_mlflow_signatures():
    for cls, base, hooks in ((ProvTrackingStore, SqlAlchemyStore, ALL_TRACKING_HOOKS),
                             (ProvRegistryStore, SqlRegistryStore, ALL_REGISTRY_HOOKS)):
        for name in hooks:
            ours, mlflows = getattr(cls, name), getattr(base, name)
            assert ours is not mlflows, f"{name} is not wrapped"
            assert inspect.signature(ours) == inspect.signature(mlflows), name
            assert ours.__doc__ == mlflows.__doc__, name


def test_stores_keep_mlflows_isinstance_gates():
    assert issubclass(ProvTrackingStore, SqlAlchemyStore)
    assert issubclass(ProvRegistryStore, SqlRegistryStore)


def test_workspace_aware_stores_journal_the_same_writes():
    """MLflow's workspace-aware stores add their own classes: the generic describer is
    installed on whatever store class mlflow-prov builds (class creation enumerates them)."""
    from mlflow_prov.store import _workspace_classes

    for ours, base in zip(_workspace_classes(), (SqlAlchemyStore, SqlRegistryStore),
                          strict=True):
        unjournaled = sorted(
            name for name in _public_writes(base) - NOT_WRITES - set(JOURNALED_THROUGH)
            - COMPUTATIONS if not _wrapped_by_us(ours, name))
        assert not unjournaled, f"{ours.__name__} leaves {unjournaled} unjournaled"


def _wrapped_by_us(cls, name: str) -> bool:
    """The method ``cls`` resolves for ``name`` is one of mlflow-prov's journaling wrappers."""
    ours = {k.__name__ for k in cls.__mro__ if k.__module__.startswith("mlflow_prov.")}
    owner = getattr(getattr(cls, name), "__qualname__", "").split(".")[0]
    return owner in ours
