"""Every write method MLflow's stores declare is journaled, or listed with a reason why not.

A new MLflow release that adds a write method, or renames a private helper we hook, fails
here instead of silently writing rows without provenance.
"""

import inspect

import pytest
from mlflow.store.model_registry.abstract_store import AbstractStore as AbstractRegistryStore
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as SqlRegistryStore
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from mlflow_prov.events import JOURNALED_THROUGH, REGISTRY_HOOKS, TRACKING_HOOKS
from mlflow_prov.store import ProvRegistryStore, ProvTrackingStore

READ_PREFIXES = ("get_", "search_", "list_", "find_", "query_", "_", "supports", "filter_",
                 "calculate", "batch_get", "sum_")

# Writes that are not ML training provenance: GenAI tracing, evaluation datasets, scorers,
# the AI gateway, MCP servers, review queues, prompts and webhooks. Their rows are MLflow's
# alone; an exporter reading runs never sees them.
NOT_JOURNALED = {
    "add_dataset_to_experiments", "add_guardrail_to_endpoint", "add_items_to_review_queue",
    "archive_traces", "attach_model_to_endpoint", "create_assessment", "create_budget_policy",
    "create_dataset", "create_endpoint_binding", "create_gateway_endpoint",
    "create_gateway_guardrail", "create_gateway_model_definition", "create_gateway_secret",
    "create_issue", "create_label_schema", "create_mcp_access_endpoint", "create_mcp_server",
    "create_mcp_server_version", "create_review_queue", "delete_assessment",
    "delete_budget_policy", "delete_dataset", "delete_dataset_records", "delete_dataset_tag",
    "delete_endpoint_binding", "delete_gateway_endpoint", "delete_gateway_endpoint_tag",
    "delete_gateway_guardrail", "delete_gateway_model_definition", "delete_gateway_secret",
    "delete_label_schema", "delete_mcp_access_endpoint", "delete_mcp_server",
    "delete_mcp_server_alias", "delete_mcp_server_tag", "delete_mcp_server_version",
    "delete_mcp_server_version_tag", "delete_review_queue", "delete_scorer", "delete_trace_tag",
    "delete_traces", "detach_model_from_endpoint", "link_mcp_server_versions_to_trace",
    "link_prompts_to_trace", "log_spans", "log_spans_async", "register_scorer",
    "remove_dataset_from_experiments", "remove_guardrail_from_endpoint",
    "remove_items_from_review_queue", "resolve_trace_archival_config", "set_dataset_tags",
    "set_gateway_endpoint_tag", "set_mcp_server_alias", "set_mcp_server_tag",
    "set_mcp_server_version_tag", "set_model_versions_tags", "set_review_queue_item_status",
    "set_trace_tag", "start_trace", "update_assessment", "update_budget_policy",
    "update_endpoint_guardrail_config", "update_gateway_endpoint",
    "update_gateway_model_definition", "update_gateway_secret", "update_issue",
    "update_label_schema", "update_mcp_access_endpoint", "update_mcp_server",
    "update_mcp_server_version", "update_review_queue", "upsert_dataset_records",
    "upsert_online_scoring_config",
    # registry: GenAI prompts and webhooks
    "create_prompt", "create_prompt_version", "delete_prompt", "delete_prompt_alias",
    "delete_prompt_tag", "delete_prompt_version", "delete_prompt_version_tag",
    "link_prompt_version_to_model", "link_prompt_version_to_run", "set_prompt_alias",
    "set_prompt_tag", "set_prompt_version_tag", "create_webhook", "delete_webhook",
    "update_webhook", "test_webhook",
}
# Not writes at all: control of the client-side async queue.
NOT_WRITES = {"end_async_logging", "flush_async_logging", "shut_down_async_logging"}


def _public_writes(cls) -> set[str]:
    return {name for name, value in inspect.getmembers(cls)
            if callable(value) and not name.startswith(READ_PREFIXES)}


@pytest.mark.parametrize("abstract, hooks", [
    (AbstractStore, TRACKING_HOOKS), (AbstractRegistryStore, REGISTRY_HOOKS)])
def test_every_public_write_is_hooked_or_listed(abstract, hooks):
    unclassified = (_public_writes(abstract) - set(hooks) - set(JOURNALED_THROUGH)
                    - NOT_JOURNALED - NOT_WRITES)
    assert not unclassified, f"write methods with no journal decision: {sorted(unclassified)}"


@pytest.mark.parametrize("base, hooks", [
    (SqlAlchemyStore, TRACKING_HOOKS), (SqlRegistryStore, REGISTRY_HOOKS)])
def test_every_hooked_method_exists_in_mlflow(base, hooks):
    missing = [name for name in hooks if not callable(getattr(base, name, None))]
    assert not missing, f"MLflow no longer has {missing}: re-check how those writes are made"


def test_journaled_through_names_hooked_helpers():
    hooked = set(TRACKING_HOOKS) | set(REGISTRY_HOOKS)
    for public, helpers in JOURNALED_THROUGH.items():
        assert set(helpers) <= hooked, f"{public} is said to go through unhooked {helpers}"


def test_hooked_methods_are_wrapped_and_keep_mlflow_signatures():
    for cls, base, hooks in ((ProvTrackingStore, SqlAlchemyStore, TRACKING_HOOKS),
                             (ProvRegistryStore, SqlRegistryStore, REGISTRY_HOOKS)):
        for name in hooks:
            ours, mlflows = getattr(cls, name), getattr(base, name)
            assert ours is not mlflows, f"{name} is not wrapped"
            assert inspect.signature(ours) == inspect.signature(mlflows), name
            assert ours.__doc__ == mlflows.__doc__, name


def test_stores_keep_mlflows_isinstance_gates():
    assert issubclass(ProvTrackingStore, SqlAlchemyStore)
    assert issubclass(ProvRegistryStore, SqlRegistryStore)
