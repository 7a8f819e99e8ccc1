"""Fold a chain's payloads into the state MLflow must hold now: what ``verify`` compares with
MLflow's rows.

Why replay: the payloads are the journal's whole truth (docs/internals.md, "The journal's
write path"). Each event records what MLflow stored and, for a write that overwrote
something, the value it overwrote as MLflow loaded it in the same transaction. Folding them in
order gives every column, tag and param MLflow must hold; and where an event says it
overwrote a value the fold did not expect, a row changed outside MLflow's API before that
write, which a later write must not absorb (``mismatches``).

Journals written before payloads carried whole rows (their run events hold a ``state``
digest, their ``run.created`` no ``run``) replay what they spell out; the columns they do not
are left out of ``fields``, and their overwritten values are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlflow_prov.journal import JournalEvent
from mlflow_prov.vocabulary import RUN_NAME_TAG, STATE_FIELD, EventKind

CREATED_STATUS = "RUNNING"


@dataclass(frozen=True)
class Mismatch:
    """An event that overwrote a value the journal did not hold: changed outside MLflow."""

    seq: int
    what: str  # "tag 'k'", "status", "name"
    found: Any  # what MLflow held before the event
    expected: Any  # what the journal last recorded
    known: bool  # whether the journal recorded anything for it (False: never journaled)


@dataclass
class Replayed:
    """The state one chain's events describe: row columns, tags and params, and the events
    whose overwritten values disagreed with the fold."""

    fields: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    whole_row: bool = False  # the created event recorded every column

    def expect(self, seq: int, what: str, found: Any, expected: Any, known: bool) -> None:
        if _text(found) != _text(expected):
            self.mismatches.append(Mismatch(seq, what, found, expected, known))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def replay_run(events: list[JournalEvent]) -> Replayed:
    """A run's row, tags and params as its chain's events say MLflow must hold them."""
    state = Replayed()
    for event in events:
        checked = state.whole_row and STATE_FIELD not in event.payload
        _RUN_STEPS.get(str(event.kind), _ignore)(state, event, checked)
    return state


def _ignore(state: Replayed, event: JournalEvent, checked: bool) -> None:
    """Events that change none of the run's row, tags or params (metrics, inputs, ...)."""


def _run_created(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = event.payload
    row = payload.get("run")
    if isinstance(row, dict):
        state.whole_row = True
        state.fields.update(row)
    else:  # an earlier journal: the columns it spelled out; MLflow creates every run RUNNING
        state.fields.update(user_id=payload.get("user_id"), start_time=payload.get("start_time"),
                            name=payload.get("run_name"), lifecycle_stage="active",
                            status=CREATED_STATUS, end_time=None)
    state.tags.update(payload.get("tags") or {})
    if payload.get("run_name"):
        state.tags.setdefault(RUN_NAME_TAG, payload["run_name"])


def _run_updated(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = event.payload
    if checked:
        for column, old in (("status", "old_status"), ("name", "old_name")):
            if old in payload:
                state.expect(event.seq, column, payload[old], state.fields.get(column), True)
    if payload.get("new_status") is not None:
        state.fields["status"] = payload["new_status"]
    if payload.get("end_time") is not None:
        state.fields["end_time"] = payload["end_time"]
    if payload.get("new_name"):
        state.fields["name"] = payload["new_name"]
        state.tags[RUN_NAME_TAG] = payload["new_name"]


def _run_deleted(state: Replayed, event: JournalEvent, checked: bool) -> None:
    state.fields["lifecycle_stage"] = "deleted"
    if "deleted_time" in event.payload:
        state.fields["deleted_time"] = event.payload["deleted_time"]


def _run_restored(state: Replayed, event: JournalEvent, checked: bool) -> None:
    state.fields["lifecycle_stage"] = "active"
    if state.whole_row:
        state.fields["deleted_time"] = None


def _tags_set(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = event.payload
    if checked:
        for key, old in (payload.get("old") or {}).items():
            state.expect(event.seq, f"tag {key!r}", old, state.tags.get(key), key in state.tags)
    state.tags.update(payload.get("tags") or {})


def _tag_deleted(state: Replayed, event: JournalEvent, checked: bool) -> None:
    key = event.payload.get("key")
    if key is None:
        return
    if checked and "old_value" in event.payload:
        state.expect(event.seq, f"tag {key!r}", event.payload["old_value"], state.tags.get(key),
                     key in state.tags)
    state.tags.pop(str(key), None)


def _params_logged(state: Replayed, event: JournalEvent, checked: bool) -> None:
    for key, value in (event.payload.get("params") or {}).items():
        state.params.setdefault(key, value)


Step = Callable[[Replayed, JournalEvent, bool], None]
_RUN_STEPS: dict[str, Step] = {
    EventKind.RUN_CREATED: _run_created,
    EventKind.RUN_UPDATED: _run_updated,
    EventKind.RUN_DELETED: _run_deleted,
    EventKind.RUN_RESTORED: _run_restored,
    EventKind.RUN_TAGS_SET: _tags_set,
    EventKind.RUN_TAG_DELETED: _tag_deleted,
    EventKind.RUN_PARAMS_LOGGED: _params_logged,
}


def replay_experiment(events: list[JournalEvent]) -> Replayed:
    """An experiment's row and tags as its chain's events say MLflow must hold them."""
    state = Replayed()
    for event in events:
        payload = event.payload
        checked = state.whole_row and STATE_FIELD not in payload
        if event.kind == EventKind.EXPERIMENT_CREATED:
            state.whole_row = "creation_time" in payload
            state.fields.update(name=payload.get("name"), lifecycle_stage="active")
            for column in ("artifact_location", "creation_time"):
                if payload.get(column) is not None:
                    state.fields[column] = payload[column]
            state.tags.update(payload.get("tags") or {})
        elif event.kind == EventKind.EXPERIMENT_RENAMED:
            if checked and "old_name" in payload:
                state.expect(event.seq, "name", payload["old_name"], state.fields.get("name"),
                             True)
            state.fields["name"] = payload.get("new_name")
        elif event.kind == EventKind.EXPERIMENT_DELETED:
            state.fields["lifecycle_stage"] = "deleted"
        elif event.kind == EventKind.EXPERIMENT_RESTORED:
            state.fields["lifecycle_stage"] = "active"
        elif event.kind in (EventKind.EXPERIMENT_TAG_SET, EventKind.EXPERIMENT_TAG_DELETED):
            _experiment_tag(state, event, checked)
    return state


def _experiment_tag(state: Replayed, event: JournalEvent, checked: bool) -> None:
    key = str(event.payload.get("key"))
    if checked and "old_value" in event.payload:
        state.expect(event.seq, f"tag {key!r}", event.payload["old_value"], state.tags.get(key),
                     key in state.tags)
    if event.kind == EventKind.EXPERIMENT_TAG_SET:
        state.tags[key] = event.payload.get("value")
    else:
        state.tags.pop(key, None)
