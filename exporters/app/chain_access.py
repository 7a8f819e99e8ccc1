"""Who may read which journal events: MLflow's own basic-auth rule for the object each chain
records, so ``prov-auth`` never shows an event of something MLflow would not show the reader.

Why one rule per chain kind: the journal keeps one chain per object, and MLflow 3.17's
basic-auth decides per kind of object (``mlflow/server/auth``, asked through
:mod:`exporters.compat`):

* runs, experiments, logged models and scorers: READ on their experiment (the event's own
  ``experiment_id``; ``ListScorers`` checks the experiment);
* traces, with their spans, tags, prompt links and assessments: MLflow's trace rule; once
  MLflow no longer has the trace (deleted), READ on the experiment the events name;
* evaluation datasets: READ on every experiment the dataset belongs to;
* prompts: the prompt's own permission (a registered model's on the same name does not count);
* AI-gateway secrets: the secret's own permission;
* registered models (as before), webhooks (admin-only in MLflow) and writes only the generic
  describer knows (``store:<method>``): readers of everything.
"""

from __future__ import annotations

from collections.abc import Callable

from exporters.app.permissions import Permissions
from mlflow_prov.journal import JournalEvent
from mlflow_prov.vocabulary import ChainKind, parse_chain

BULK_TRACE_DELETION = "experiment/"  # trace:experiment/<id>: delete_traces by experiment
GATEWAY_SECRET = "secret/"  # gateway:secret/<id>

Rule = Callable[[Permissions, str, "str | None"], bool]


def _experiment(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    return permissions.can_read(experiment_id)


def _scorer(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    return permissions.can_read(object_id.partition("/")[0])  # scorer:<experiment>/<name>


def _trace(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    if object_id.startswith(BULK_TRACE_DELETION):
        return permissions.can_read(object_id.removeprefix(BULK_TRACE_DELETION))
    answer = permissions.can_read_trace(object_id)
    return permissions.can_read(experiment_id) if answer is None else answer


def _dataset(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    return permissions.can_read_dataset(object_id)


def _prompt(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    return permissions.can_read_prompt(object_id)


def _gateway(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    if object_id.startswith(GATEWAY_SECRET):
        return permissions.can_read_gateway_secret(object_id.removeprefix(GATEWAY_SECRET))
    return permissions.sees_everything()


def _everything(permissions: Permissions, object_id: str, experiment_id: str | None) -> bool:
    return permissions.sees_everything()


RULES: dict[ChainKind, Rule] = {
    ChainKind.RUN: _experiment,
    ChainKind.EXPERIMENT: _experiment,
    ChainKind.LOGGED_MODEL: _experiment,
    ChainKind.SCORER: _scorer,
    ChainKind.TRACE: _trace,
    ChainKind.EVALUATION_DATASET: _dataset,
    ChainKind.PROMPT: _prompt,
    ChainKind.GATEWAY: _gateway,
    ChainKind.REGISTERED_MODEL: _everything,
    ChainKind.WEBHOOK: _everything,
    ChainKind.STORE: _everything,
}


def readable_chain(permissions: Permissions, chain: str, experiment_id: str | None) -> bool:
    """Whether the reader may see events of ``chain`` (written under ``experiment_id``)."""
    if permissions.sees_everything():
        return True
    try:
        kind, object_id = parse_chain(chain)
    except ValueError:
        return False
    return RULES[kind](permissions, object_id, experiment_id)


def readable_events(permissions: Permissions, events: list[JournalEvent]) -> list[JournalEvent]:
    """The events the reader may see, each by its own chain's rule."""
    return [event for event in events
            if readable_chain(permissions, event.chain, event.experiment_id)]
