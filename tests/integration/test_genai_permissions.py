"""``mlflow server --app-name prov-auth`` applies MLflow's own permissions to MLflow 3's GenAI
objects (issue 19, Deliver 3): a trace and its assessments follow the trace's experiment, a
prompt its own prompt permission; nobody sees the journal of what MLflow would not show them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.entities import AssessmentSource
from test_prov_pages import ADMIN, ALICE, TIMEOUT, _as, _auth_server

pytestmark = pytest.mark.slow
SECRET_VERDICT = "verdict-only-readers-of-hidden-see"


def _traced(experiment: str, question: str) -> tuple[str, str]:
    """One traced agent call in ``experiment`` with a feedback on it: (experiment id, trace
    id)."""
    experiment_id = mlflow.set_experiment(experiment).experiment_id

    @mlflow.trace
    def agent(text: str) -> str:
        return text.upper()

    agent(question)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(trace_id=trace_id, name="quality", value=SECRET_VERDICT
                        if experiment == "hidden" else "fine",
                        source=AssessmentSource(source_type="HUMAN", source_id="reviewer"))
    return experiment_id, trace_id


def _write(store: str) -> dict[str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        try:
            shared, shared_trace = _traced("shared", "what is open?")
            hidden, hidden_trace = _traced("hidden", "what is hidden?")
            for name in ("open-prompt", "closed-prompt"):
                mlflow.genai.register_prompt(name=name, template=f"{name}: {{{{question}}}}")
                mlflow.genai.set_prompt_alias(name, alias="prod", version=1)
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
    return {"shared": shared, "shared_trace": shared_trace, "hidden": hidden,
            "hidden_trace": hidden_trace}


def _grant(base: str, resource_type: str, resource_id: str) -> None:
    answer = requests.post(f"{base}/api/3.0/mlflow/users/permissions/grant", auth=ADMIN,
                           timeout=TIMEOUT, json={"username": ALICE[0], "permission": "READ",
                                                  "resource_type": resource_type,
                                                  "resource_id": resource_id})
    assert answer.ok, answer.text


@pytest.fixture
def served(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, dict[str, str]]]:
    store = f"prov://{tmp_path / 'served'}"
    ids = _write(store)
    for base in _auth_server(tmp_path, monkeypatch, store):
        created = requests.post(f"{base}/api/2.0/mlflow/users/create", auth=ADMIN,
                                timeout=TIMEOUT, json={"username": ALICE[0],
                                                       "password": ALICE[1]})
        assert created.ok, created.text
        _grant(base, "experiment", ids["shared"])
        _grant(base, "prompt", "open-prompt")
        yield base, ids


def _kinds(answer: requests.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {event["kind"] for event in answer.json()["events"]}


def test_traces_and_assessments_follow_their_experiments_permission(served):
    base, ids = served
    events = f"{base}/prov/api/events"
    hidden_chain = f"trace:{ids['hidden_trace']}"
    assert _as(ALICE, f"{base}/api/3.0/mlflow/traces/{ids['hidden_trace']}/info"
               ).status_code == 403, "MLflow's own rule"
    assert {"trace.started", "trace.assessment_created"} <= _kinds(_as(ADMIN, events,
                                                                  chain=hidden_chain))
    assert SECRET_VERDICT in _as(ADMIN, events, chain=hidden_chain).text

    assert _as(ALICE, events, chain=hidden_chain).status_code == 403
    assert _as(ALICE, events, experiment_id=ids["hidden"]).status_code == 403
    mine = _as(ALICE, events, experiment_id=ids["shared"])
    assert {"trace.started", "trace.assessment_created"} <= _kinds(mine)
    assert {e["chain"] for e in mine.json()["events"]} >= {f"trace:{ids['shared_trace']}"}
    assert {"trace.started", "trace.assessment_created"} <= _kinds(
        _as(ALICE, events, chain=f"trace:{ids['shared_trace']}"))
    for page in (f"{base}/prov/", f"{base}/prov/experiments/{ids['shared']}"):
        shown = _as(ALICE, page)
        assert shown.status_code == 200
        assert ids["hidden_trace"] not in shown.text and SECRET_VERDICT not in shown.text
    assert _as(ALICE, f"{base}/prov/experiments/{ids['hidden']}").status_code == 403


def test_a_prompts_history_follows_the_prompt_permission(served):
    base, _ = served
    events = f"{base}/prov/api/events"
    assert _as(ALICE, f"{base}/api/2.0/mlflow/registered-models/get",
               name="closed-prompt").status_code == 403, "MLflow's own rule"
    assert {"prompt.created", "prompt.version_created", "prompt.alias_set"} <= _kinds(
        _as(ADMIN, events, chain="prompt:closed-prompt"))

    assert _as(ALICE, events, chain="prompt:closed-prompt").status_code == 403
    for page in ("/prov/prompts/closed-prompt", "/prov/api/prompts/closed-prompt"):
        assert _as(ALICE, f"{base}{page}").status_code == 403, page
    for page in ("/prov/prompts/open-prompt", "/prov/api/prompts/open-prompt"):
        assert _as(ALICE, f"{base}{page}").status_code == 200, page
    assert {"prompt.created", "prompt.version_created", "prompt.alias_set"} <= _kinds(
        _as(ALICE, events, chain="prompt:open-prompt"))
    assert _as(ALICE, events).status_code == 400, "no whole journal for her"
    assert _as(ALICE, events, chain="webhook:any").json()["events"] == []
    assert _as(ALICE, events, chain="no-such-kind:x").status_code == 400
