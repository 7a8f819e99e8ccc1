"""MLflow 3's GenAI writes through its public APIs, offline: one scenario for the journal,
verify and export tests (``test_genai.py``), the prompt history page and the lineage tests.

Register a prompt twice (the second with a commit message), link version 1 to a ``baseline``
run, move the prompt's ``prod`` alias from version 1 to 2, tag the prompt and a version,
trace an instrumented agent that loads ``qa@prod``, log feedback and an expectation and
update the feedback, create an evaluation dataset and run ``mlflow.genai.evaluate`` on it
with a custom scorer, register that scorer; in one run, link version 2 to the run, trace the
agent under a logged model and link version 1 to that model; delete a trace, create a
webhook with a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, Feedback

PLANTED = "whsec-planted-0123456789abcdef"
SPANS_PER_REQUEST = 4
COMMIT_MESSAGE = "shorter answers"
ENVIRONMENT = {
    "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
    "MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION": "true",
    "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS": "true",  # a local store we trust
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # no network here
}


@contextmanager
def genai_store(uri: str, folder: Path) -> Iterator[None]:
    """MLflow pointed at ``uri`` (tracking and registry), offline, artifacts in ``folder``."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        patch.chdir(folder)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


def write() -> dict:
    """The scenario, into the store :func:`genai_store` points at; the ids by role."""
    client = MlflowClient()
    experiment_id = mlflow.set_experiment("genai").experiment_id
    first = mlflow.genai.register_prompt(name="qa", template="Answer {{question}}")
    second = mlflow.genai.register_prompt(name="qa", template="Answer briefly {{question}}",
                                          commit_message=COMMIT_MESSAGE)
    with mlflow.start_run(run_name="baseline") as baseline:
        client.link_prompt_version_to_run(baseline.info.run_id, first)
    mlflow.genai.set_prompt_alias("qa", alias="prod", version=1)
    mlflow.genai.set_prompt_alias("qa", alias="prod", version=2)
    client.set_prompt_tag("qa", "team", "search")
    client.set_prompt_version_tag("qa", 1, "reviewed", "yes")

    @mlflow.trace
    def step(text: str) -> str:
        return text.upper()

    @mlflow.trace
    def agent(question: str) -> dict:
        prompt = mlflow.genai.load_prompt("prompts:/qa@prod")
        text = prompt.format(question=question)
        for _ in range(SPANS_PER_REQUEST - 1):
            text = step(text)
        return {"answer": text}

    agent("why?")
    trace_id = mlflow.get_last_active_trace_id()
    feedback = mlflow.log_feedback(trace_id=trace_id, name="correct", value=True,
                                   rationale="looks right",
                                   source=AssessmentSource(source_type="HUMAN",
                                                           source_id="alice"))
    mlflow.log_expectation(trace_id=trace_id, name="expected", value="WHY",
                           source=AssessmentSource(source_type="HUMAN", source_id="bob"))
    mlflow.update_assessment(trace_id=trace_id, assessment_id=feedback.assessment_id,
                             assessment=Feedback(name="correct", value=False))

    from mlflow.genai.datasets import create_dataset
    from mlflow.genai.scorers import scorer

    dataset = create_dataset(name="questions")
    dataset.merge_records([{"inputs": {"question": "a?"}, "expectations": {"answer": "A"}},
                           {"inputs": {"question": "b?"}, "expectations": {"answer": "B"}}])

    @scorer
    def has_answer(outputs) -> bool:
        return bool(outputs and outputs.get("answer"))

    has_answer.register(experiment_id=experiment_id)
    evaluation = mlflow.genai.evaluate(data=dataset, predict_fn=agent, scorers=[has_answer])
    with mlflow.start_run(run_name="agent-run") as run:
        client.link_prompt_version_to_run(run.info.run_id, second)
        model = mlflow.initialize_logged_model(name="agent")
        mlflow.set_active_model(model_id=model.model_id)
        agent("in a run")
        run_trace = mlflow.get_last_active_trace_id()
        mlflow.clear_active_model()
        client.link_prompt_version_to_model("qa", 1, model.model_id)
    agent("to delete")
    doomed = mlflow.get_last_active_trace_id()
    client.delete_traces(experiment_id=experiment_id, trace_ids=[doomed])
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent

    client.create_webhook(
        name="notify", url="https://127.0.0.1:9/prompt",
        events=[WebhookEvent(WebhookEntity.PROMPT_VERSION, WebhookAction.CREATED)],
        secret=PLANTED)
    return {"experiment_id": experiment_id, "trace_id": trace_id, "doomed": doomed,
            "feedback_id": feedback.assessment_id, "evaluation_run": evaluation.run_id,
            "linked_run": run.info.run_id, "baseline_run": baseline.info.run_id,
            "run_trace": run_trace, "model": model.model_id, "dataset_id": dataset.dataset_id}
