"""MLflow 3's GenAI writes through its public APIs land in the journal, verify, and export.

One scenario (offline, sqlite prov store, ``genai_scenario.py``): register and alias a prompt,
trace an instrumented agent, log feedback and an expectation and update the feedback, create
an evaluation dataset and run ``mlflow.genai.evaluate`` on it with a custom scorer, register
that scorer, link a prompt to a run and a logged model, delete a trace, create a webhook with
a secret. Then: an event for each write,
``verify`` clean, a PROV export that validates and round-trips, and each kind of row edited
with SQL reported by ``verify``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import mlflow
import pytest
from click.testing import CliRunner
from genai_scenario import PLANTED, SPANS_PER_REQUEST, genai_store, write
from mlflow import MlflowClient
from prov.model import ProvDocument
from store_templates import prov_store

from exporters import ExportOptions, export
from exporters.cli import main
from mlflow_prov.digests import add_digests
from mlflow_prov.journal import read_events
from mlflow_prov.store import ProvTrackingStore

pytestmark = pytest.mark.slow
SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "prov-json.schema.json")
                    .read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("genai")
    uri = prov_store(folder / "runs")
    with genai_store(uri, folder):
        yield {"uri": uri, "folder": folder, **write()}


def _events(scenario) -> list:
    return list(read_events(scenario["uri"]))


def test_every_genai_write_has_an_event_with_old_values(scenario) -> None:
    events = _events(scenario)
    kinds = [str(e.kind) for e in events]
    for kind in ("prompt.created", "prompt.version_created", "prompt.alias_set",
                 "trace.started", "trace.spans_logged", "trace.assessment_created",
                 "trace.assessment_updated", "trace.prompts_linked",
                 "evaluation_dataset.created", "evaluation_dataset.records_upserted",
                 "scorer.registered", "trace.deleted", "webhook.created"):
        assert kind in kinds, kind
    assert "store.write" not in kinds  # every GenAI write here has its own describer
    aliases = [e.payload for e in events if e.kind == "prompt.alias_set"]
    assert [(a["old_version"], a["version"]) for a in aliases] == [(None, 1), (1, 2)]
    [update] = [e.payload for e in events if e.kind == "trace.assessment_updated"]
    assert (update["old"]["value"], update["new"]["value"]) == (True, False)
    assert update["old"]["rationale"] == "looks right"
    [records] = [e.payload for e in events if e.kind == "evaluation_dataset.records_upserted"]
    assert (records["count"], records["inserted"], len(records["digest"])) == (2, 2, 64)
    linked = [e for e in events if e.kind == "run.tags_set" and e.run_id == scenario["linked_run"]
              and "mlflow.linkedPrompts" in e.payload["tags"]]
    assert linked, "the prompt -> run link is the run's mlflow.linkedPrompts tag event"


def test_a_trace_is_one_event_per_write_not_one_per_span(scenario, tmp_path) -> None:
    on_trace = [e for e in _events(scenario) if e.chain == f"trace:{scenario['trace_id']}"]
    spans = [e.payload for e in on_trace if e.kind == "trace.spans_logged"]
    assert sum(p["count"] for p in spans) == SPANS_PER_REQUEST
    assert [str(e.kind) for e in on_trace if e.experiment_id != scenario["experiment_id"]] == []
    # one log_spans call carrying the whole trace (as MLflow's batching exporter sends it)
    uri = prov_store(tmp_path / "other")
    store = ProvTrackingStore(uri)
    experiment_id = store.create_experiment("replay")
    trace = MlflowClient(scenario["uri"]).get_trace(scenario["trace_id"])
    store.log_spans(experiment_id, trace.data.spans)
    [event] = [e for e in read_events(uri) if e.kind == "trace.spans_logged"]
    assert event.payload["count"] == SPANS_PER_REQUEST
    assert event.payload["digest"] == add_digests(p["digest"] for p in spans)


def test_no_secret_in_any_event(scenario) -> None:
    text = json.dumps([e.payload for e in _events(scenario)])
    assert PLANTED not in text
    [webhook] = [e.payload for e in _events(scenario) if e.kind == "webhook.created"]
    assert webhook["has_secret"] is True


def test_verify_is_clean(scenario) -> None:
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", scenario["uri"]])
    assert result.exit_code == 0, result.output
    assert "0 problem(s)" in result.output


def test_log_shows_a_repointed_alias_and_an_edited_assessment(scenario) -> None:
    result = CliRunner().invoke(main, ["log", "--tracking-uri", scenario["uri"], "--kind",
                                       "prompt.alias_set", "--kind", "trace.assessment_updated"])
    assert result.exit_code == 0, result.output
    assert "prompt.alias_set  prompt qa" in result.output
    assert "old_version: 1\n    version: 2" in result.output
    assert '"rationale": "looks right"' in result.output


def test_export_validates_round_trips_and_shows_genai(scenario, tmp_path) -> None:
    result = export(scenario["experiment_id"], tmp_path, tracking_uri=scenario["uri"],
                    options=ExportOptions(formats=("prov-json",)))
    run_doc = result.experiment_dir / f"run-{scenario['evaluation_run']}" / "prov.json"
    for path in result.experiment_dir.rglob("*.json"):
        content = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(content, SCHEMA)
        once = ProvDocument.deserialize(content=path.read_text(encoding="utf-8"), format="json")
        assert ProvDocument.deserialize(content=once.serialize(format="json"),
                                        format="json") == once
    text = run_doc.read_text(encoding="utf-8")
    for statement in ("mlflowprov:Trace", "mlflowprov:PromptVersion", "mlflowprov:Assessment",
                      "mlflowprov:Scorer", "prompt.qa.2"):
        assert statement in text, statement


def _tampered_copy(scenario, tmp_path: Path, statements: list[str]) -> str:
    source = sqlite3.connect(Path(scenario["uri"].removeprefix("prov://")) / "mlflow.db")
    (tmp_path / "runs").mkdir()
    target = sqlite3.connect(tmp_path / "runs" / "mlflow.db")
    source.backup(target)
    source.close()
    for statement in statements:
        assert target.execute(statement).rowcount >= 1, statement
    target.commit()
    target.close()
    return f"prov://{tmp_path / 'runs'}"


def test_rows_edited_with_sql_are_named_by_verify(scenario, tmp_path) -> None:
    uri = _tampered_copy(scenario, tmp_path, [
        "UPDATE assessments SET value = '\"no\"' "
        f"WHERE assessment_id = '{scenario['feedback_id']}'",
        "UPDATE registered_model_aliases SET version = 1 WHERE alias = 'prod'",
        f"DELETE FROM spans WHERE trace_id = '{scenario['trace_id']}' AND parent_span_id IS NULL",
        f"DELETE FROM trace_info WHERE request_id IN (SELECT request_id FROM trace_info "
        f"WHERE request_id != '{scenario['trace_id']}' LIMIT 1)",
        f"UPDATE evaluation_dataset_records SET expectations = '{{\"answer\": \"Z\"}}' "
        f"WHERE dataset_id = '{scenario['dataset_id']}' AND rowid IN (SELECT min(rowid) "
        "FROM evaluation_dataset_records)",
    ])
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri])
    assert result.exit_code == 1
    output = result.output
    assert f"assessment {scenario['feedback_id']}: value is 'no'" in output
    assert "prompt qa alias prod: points to version 1, the journal recorded version 2" in output
    assert f"trace {scenario['trace_id']} (MLflow spans)" in output
    assert "deleted outside MLflow's API" in output
    assert f"evaluation dataset {scenario['dataset_id']}" in output


def test_no_gateway_secret_value_is_journaled(tmp_path) -> None:
    uri = prov_store(tmp_path / "runs")
    store = ProvTrackingStore(uri)
    secret = store.create_gateway_secret("openai", {"api_key": PLANTED}, provider="openai",
                                         auth_config={"auth_token": PLANTED, "region": "eu"})
    store.update_gateway_secret(secret.secret_id, {"api_key": PLANTED + "2"})
    events = [e for e in read_events(uri) if e.kind == "gateway.secret_written"]
    assert [e.payload["value_keys"] for e in events] == [["api_key"], ["api_key"]]
    assert events[0].payload["auth_config"] == {"auth_token": "[redacted]", "region": "eu"}
    assert PLANTED not in json.dumps([e.payload for e in read_events(uri)])


def test_later_genai_writes_keep_their_old_values_and_verify(tmp_path, monkeypatch) -> None:
    """Tags, overrides, deletions and webhook edits, each with the value it replaced."""
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    uri = prov_store(tmp_path / "runs")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    mlflow.set_experiment("later")
    mlflow.genai.register_prompt(name="p", template="one {{x}}")
    mlflow.genai.register_prompt(name="p", template="two {{x}}")
    mlflow.genai.set_prompt_alias("p", alias="live", version=2)
    client.delete_prompt_alias("p", "live")
    client.set_prompt_version_tag("p", 1, "reviewed", "yes")

    @mlflow.trace
    def answer(question: str) -> str:
        return question

    answer("q")
    trace_id = mlflow.get_last_active_trace_id()
    client.set_trace_tag(trace_id, "topic", "first")
    client.set_trace_tag(trace_id, "topic", "second")
    client.delete_trace_tag(trace_id, "topic")
    first = mlflow.log_feedback(trace_id=trace_id, name="ok", value=0.2)
    mlflow.override_feedback(trace_id=trace_id, assessment_id=first.assessment_id, value=0.9)
    expectation = mlflow.log_expectation(trace_id=trace_id, name="gold", value="q")
    mlflow.delete_assessment(trace_id=trace_id, assessment_id=expectation.assessment_id)
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent

    hook = client.create_webhook(name="w", url="https://127.0.0.1:9/a", events=[
        WebhookEvent(WebhookEntity.PROMPT_VERSION, WebhookAction.CREATED)])
    # a Slack-style hook: the URL's path is the credential
    client.update_webhook(hook.webhook_id, url=f"https://127.0.0.1:9/services/{PLANTED}",
                          secret=PLANTED)
    client.delete_webhook(hook.webhook_id)

    events = list(read_events(uri))
    by_kind: dict[str, list[dict]] = {}
    for event in events:
        by_kind.setdefault(str(event.kind), []).append(event.payload)
    assert by_kind["prompt.alias_deleted"] == [{"name": "p", "alias": "live", "old_version": 2}]
    assert by_kind["prompt.version_tag_set"][0]["value"] == "yes"
    assert [(p["old_value"], p["value"]) for p in by_kind["trace.tag_set"]
            if p["key"] == "topic"] == [(None, "first"), ("first", "second")]
    # MLflow deletes a trace tag without loading it: its value is the chain's last tag_set
    assert by_kind["trace.tag_deleted"] == [{"trace_id": trace_id, "key": "topic",
                                             "old_value": None}]
    override = by_kind["trace.assessment_created"][-2]
    assert (override["value"], override["overrides"]) == (0.9, first.assessment_id)
    assert by_kind["trace.assessment_deleted"][0]["old"]["value"] == "q"
    old_url = by_kind["webhook.updated"][0]["old"]["url"]
    assert old_url == {"origin": "https://127.0.0.1:9",
                       "sha256": hashlib.sha256(b"https://127.0.0.1:9/a").hexdigest()}
    assert by_kind["webhook.updated"][0]["secret_changed"] is True
    assert "webhook.deleted" in by_kind and "store.write" not in by_kind
    assert PLANTED not in json.dumps([e.payload for e in events])
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
