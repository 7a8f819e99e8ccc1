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

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from mlflow_prov.journal import JournalEvent
from mlflow_prov.vocabulary import (
    RUN_NAME_TAG,
    STATE_FIELD,
    EventKind,
    RunCreated,
    RunDeleted,
    RunParamsLogged,
    RunTagDeleted,
    RunTagsSet,
    RunUpdated,
)

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
    at: JournalEvent | None = None  # the event being folded
    # each checked item's ("tag 'k'", "status", "name") value now, and for its recent
    # changes the value each replaced, who changed it and when
    current: dict[str, str | None] = field(default_factory=dict)
    changes: dict[str, list[tuple[str | None, str, int]]] = field(default_factory=dict)

    def saw(self, what: str, value: Any, *, first: bool = False) -> None:
        """Note a value ``what`` took, at the event being folded; ``first``: the value it
        was created with."""
        if not first and self.at is not None:
            recent = self.changes.setdefault(what, [])
            recent.append((self.current.get(what), _writer(self.at), self.at.time_us))
            del recent[:-RECENT_CHANGES]
        self.current[what] = _text(value)

    def expect(self, seq: int, what: str, found: Any, expected: Any, known: bool) -> None:
        """The event being folded says ``what`` held ``found`` when it overwrote it. Anything
        but the journaled value is a change behind MLflow's back, with one exception: a
        writer that raced another on the same key loaded the value the other's write replaced
        (its transaction began before the other committed, and its event comes after). So a
        value the key held is accepted when every change since was made by other writers
        (other processes or threads: the journal records both) within
        :data:`RACE_WINDOW_US`; never across a change of the writer's own, since a writer
        cannot race itself (a tag reverted behind MLflow's back and then overwritten by the
        same script is reported)."""
        if _text(found) == _text(expected) or self._raced(what, found):
            return
        self.mismatches.append(Mismatch(seq, what, found, expected, known))

    def _raced(self, what: str, found: Any) -> bool:
        """Whether ``found`` is what the key held before changes made, since, only by other
        writers and within the race window: what a writer racing them loaded."""
        if self.at is None:
            return False
        writer, now = _writer(self.at), self.at.time_us
        for replaced, changed_by, time_us in reversed(self.changes.get(what, ())):
            if changed_by == writer or now - time_us > RACE_WINDOW_US:
                return False
            if replaced == _text(found):
                return True
        return False


RACE_WINDOW_US = 60_000_000  # longer than a write waits for another's lock in practice
RECENT_CHANGES = 64  # per key: more writers than that racing on one key is not a race


def _writer(event: JournalEvent) -> str:
    return json.dumps(event.writer, sort_keys=True, default=str)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def replay_run(events: list[JournalEvent]) -> Replayed:
    """A run's row, tags and params as its chain's events say MLflow must hold them."""
    state = Replayed()
    for event in events:
        state.at = event
        checked = state.whole_row and STATE_FIELD not in event.payload
        _RUN_STEPS.get(str(event.kind), _ignore)(state, event, checked)
    return state


def _ignore(state: Replayed, event: JournalEvent, checked: bool) -> None:
    """Events that change none of the run's row, tags or params (metrics, inputs, ...)."""


def _run_created(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = cast(RunCreated, event.payload)
    row = payload.get("run")
    if isinstance(row, dict):
        state.whole_row = True
        state.fields.update(row)
        state.saw("status", row.get("status"), first=True)
        state.saw("name", row.get("name"), first=True)
    else:  # an earlier journal: the columns it spelled out; MLflow creates every run RUNNING
        state.fields.update(user_id=payload.get("user_id"), start_time=payload.get("start_time"),
                            name=payload.get("run_name"), lifecycle_stage="active",
                            status=CREATED_STATUS, end_time=None)
    state.tags.update(payload.get("tags") or {})
    if payload.get("run_name"):
        state.tags.setdefault(RUN_NAME_TAG, payload.get("run_name"))
    for key, value in state.tags.items():
        state.saw(f"tag {key!r}", value, first=True)


def _run_updated(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = cast(RunUpdated, event.payload)
    if checked and "old_status" in payload:
        state.expect(event.seq, "status", payload["old_status"], state.fields.get("status"), True)
    if checked and "old_name" in payload:
        state.expect(event.seq, "name", payload["old_name"], state.fields.get("name"), True)
    if payload.get("new_status") is not None:
        state.fields["status"] = payload.get("new_status")
        state.saw("status", payload.get("new_status"))
    if payload.get("end_time") is not None:
        state.fields["end_time"] = payload.get("end_time")
    new_name = payload.get("new_name")
    if new_name:
        state.fields["name"] = new_name
        state.tags[RUN_NAME_TAG] = new_name
        state.saw("name", new_name)
        state.saw(f"tag {RUN_NAME_TAG!r}", new_name)


def _run_deleted(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = cast(RunDeleted, event.payload)
    state.fields["lifecycle_stage"] = "deleted"
    if "deleted_time" in payload:
        state.fields["deleted_time"] = payload["deleted_time"]


def _run_restored(state: Replayed, event: JournalEvent, checked: bool) -> None:
    state.fields["lifecycle_stage"] = "active"
    if state.whole_row:
        state.fields["deleted_time"] = None


def _tags_set(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = cast(RunTagsSet, event.payload)
    if checked:
        for key, old in (payload.get("old") or {}).items():
            state.expect(event.seq, f"tag {key!r}", old, state.tags.get(key), key in state.tags)
    for key, value in (payload.get("tags") or {}).items():
        state.tags[key] = value
        state.saw(f"tag {key!r}", value)


def _tag_deleted(state: Replayed, event: JournalEvent, checked: bool) -> None:
    payload = cast(RunTagDeleted, event.payload)
    key = payload.get("key")
    if key is None:
        return
    if checked and "old_value" in payload:
        state.expect(event.seq, f"tag {key!r}", payload["old_value"], state.tags.get(key),
                     key in state.tags)
    state.tags.pop(str(key), None)
    state.saw(f"tag {key!r}", None)


def _params_logged(state: Replayed, event: JournalEvent, checked: bool) -> None:
    for key, value in (cast(RunParamsLogged, event.payload).get("params") or {}).items():
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
        state.at = event
        payload = event.payload
        checked = state.whole_row and STATE_FIELD not in payload
        if event.kind == EventKind.EXPERIMENT_CREATED:
            state.whole_row = "creation_time" in payload
            state.fields.update(name=payload.get("name"), lifecycle_stage="active")
            state.saw("name", payload.get("name"), first=True)
            for column in ("artifact_location", "creation_time"):
                if payload.get(column) is not None:
                    state.fields[column] = payload[column]
            state.tags.update(payload.get("tags") or {})
            for key, value in state.tags.items():
                state.saw(f"tag {key!r}", value, first=True)
        elif event.kind == EventKind.EXPERIMENT_RENAMED:
            if checked and "old_name" in payload:
                state.expect(event.seq, "name", payload["old_name"], state.fields.get("name"),
                             True)
            state.fields["name"] = payload.get("new_name")
            state.saw("name", payload.get("new_name"))
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
    state.saw(f"tag {key!r}", state.tags.get(key))


def replay_logged_model(events: list[JournalEvent]) -> Replayed:
    """A LoggedModel's row, tags and params as its chain's events say MLflow must hold them.
    The status is compared in the form MLflow stores it, a number: known from the created row
    and each finalize that recorded it."""
    state = Replayed()
    for event in events:
        payload = event.payload
        if event.kind == EventKind.LOGGED_MODEL_CREATED:
            row = payload.get("model")
            state.whole_row = isinstance(row, dict)
            state.fields.update(row if isinstance(row, dict) else {
                "name": payload.get("name"), "source_run_id": payload.get("source_run_id")})
            state.tags.update(payload.get("tags") or {})
            state.params.update(payload.get("params") or {})
        elif event.kind == EventKind.LOGGED_MODEL_FINALIZED:
            if "stored_status" in payload:
                state.fields["status"] = payload["stored_status"]
            else:
                state.fields.pop("status", None)
        elif event.kind == EventKind.LOGGED_MODEL_DELETED:
            state.fields["lifecycle_stage"] = "deleted"
        elif event.kind == EventKind.LOGGED_MODEL_TAGS_SET:
            state.tags.update(payload.get("tags") or {})
        elif event.kind == EventKind.LOGGED_MODEL_TAG_DELETED:
            state.tags.pop(str(payload.get("key")), None)
        elif event.kind == EventKind.LOGGED_MODEL_PARAMS_LOGGED:
            state.params.update(payload.get("params") or {})
    return state


@dataclass
class RegistryReplay:
    """The registry as the journal's registered-model chains say MLflow must hold it: per
    model its description and tags, per ``(name, version)`` its columns and tags, aliases."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    version_tags: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], int] = field(default_factory=dict)

    def rename(self, old: str, new: str) -> None:
        """MLflow renames a registered model with its versions, tags and aliases."""
        for table in (self.models, self.model_tags):
            if old in table:
                table[new] = table.pop(old)
        for keyed in (self.versions, self.version_tags, self.aliases):
            moved: dict[Any, Any] = keyed
            for _, second in [key for key in moved if key[0] == old]:
                moved[(new, second)] = moved.pop((old, second))
        for version in self.versions.values():
            if version.get("name") == old:
                version["name"] = new

    def drop(self, name: str) -> None:
        self.models.pop(name, None)
        self.model_tags.pop(name, None)
        for keyed in (self.versions, self.version_tags, self.aliases):
            dropped: dict[Any, Any] = keyed
            for key in [key for key in dropped if key[0] == name]:
                dropped.pop(key)


DELETED_VERSION_STAGE = "Deleted_Internal"  # how MLflow keeps a deleted model version's row
ARCHIVED_STAGE = "Archived"


def replay_registry(events: list[JournalEvent]) -> RegistryReplay:
    """Every registered-model chain's events, in write order across chains (a rename moves a
    model to another chain)."""
    state = RegistryReplay()
    for event in sorted(events, key=lambda e: e.seq):
        _REGISTRY_STEPS.get(str(event.kind), _no_registry_change)(state, event.payload)
    return state


def _no_registry_change(state: RegistryReplay, payload: dict[str, Any]) -> None:
    """A registry event that changes none of the compared columns."""


def _version_key(payload: dict[str, Any]) -> tuple[str, int]:
    return str(payload.get("name")), int(payload.get("version") or 0)


def _model_created(state: RegistryReplay, payload: dict[str, Any]) -> None:
    name = str(payload.get("name"))
    state.models[name] = {"name": name, "description": payload.get("description")}
    state.model_tags[name] = dict(payload.get("tags") or {})


def _version_created(state: RegistryReplay, payload: dict[str, Any]) -> None:
    key = _version_key(payload)
    state.versions[key] = {"name": key[0], "version": key[1], "source": payload.get("source"),
                           "run_id": payload.get("run_id"), "current_stage": "None"}
    if "description" in payload:
        state.versions[key]["description"] = payload["description"]
    state.version_tags[key] = dict(payload.get("tags") or {})


def _stage_transitioned(state: RegistryReplay, payload: dict[str, Any]) -> None:
    key = _version_key(payload)
    stage = payload.get("stage")
    if payload.get("archive_existing_versions"):
        for other, version in state.versions.items():
            if other[0] == key[0] and other != key and version.get("current_stage") == stage:
                version["current_stage"] = ARCHIVED_STAGE
    if key in state.versions:
        state.versions[key]["current_stage"] = _stage_as_stored(str(stage))


def _stage_as_stored(stage: str) -> str:
    """MLflow stores a stage in its canonical spelling (``production`` -> ``Production``)."""
    return {"none": "None", "staging": "Staging", "production": "Production",
            "archived": ARCHIVED_STAGE}.get(stage.lower(), stage)


def _version_deleted(state: RegistryReplay, payload: dict[str, Any]) -> None:
    key = _version_key(payload)
    state.versions[key] = {"name": key[0], "version": key[1],
                           "current_stage": DELETED_VERSION_STAGE, "description": None}
    for alias in [alias for alias, version in state.aliases.items()
                  if alias[0] == key[0] and version == key[1]]:
        state.aliases.pop(alias)


def _set_in(table: dict[Any, dict[str, Any]], key: Any, name: Any, value: Any) -> None:
    table.setdefault(key, {})[str(name)] = value


_REGISTRY_STEPS: dict[str, Callable[[RegistryReplay, dict[str, Any]], None]] = {
    EventKind.REGISTERED_MODEL_CREATED: _model_created,
    EventKind.REGISTERED_MODEL_UPDATED: lambda state, payload: state.models.setdefault(
        str(payload.get("name")), {}).update(description=payload.get("description")),
    EventKind.REGISTERED_MODEL_RENAMED: lambda state, payload: state.rename(
        str(payload.get("name")), str(payload.get("new_name"))),
    EventKind.REGISTERED_MODEL_DELETED: lambda state, payload: state.drop(
        str(payload.get("name"))),
    EventKind.REGISTERED_MODEL_TAG_SET: lambda state, payload: _set_in(
        state.model_tags, str(payload.get("name")), payload.get("key"), payload.get("value")),
    EventKind.REGISTERED_MODEL_TAG_DELETED: lambda state, payload: state.model_tags.get(
        str(payload.get("name")), {}).pop(str(payload.get("key")), None),
    EventKind.MODEL_VERSION_CREATED: _version_created,
    EventKind.MODEL_VERSION_UPDATED: lambda state, payload: state.versions.setdefault(
        _version_key(payload), {}).update(description=payload.get("description")),
    EventKind.MODEL_VERSION_STAGE_TRANSITIONED: _stage_transitioned,
    EventKind.MODEL_VERSION_DELETED: _version_deleted,
    EventKind.MODEL_VERSION_TAG_SET: lambda state, payload: _set_in(
        state.version_tags, _version_key(payload), payload.get("key"), payload.get("value")),
    EventKind.MODEL_VERSION_TAG_DELETED: lambda state, payload: state.version_tags.get(
        _version_key(payload), {}).pop(str(payload.get("key")), None),
    EventKind.REGISTERED_MODEL_ALIAS_SET: lambda state, payload: state.aliases.__setitem__(
        (str(payload.get("name")), str(payload.get("alias"))), int(payload.get("version") or 0)),
    EventKind.REGISTERED_MODEL_ALIAS_DELETED: lambda state, payload: _drop_alias(state, payload),
}


def _drop_alias(state: RegistryReplay, payload: dict[str, Any]) -> None:
    state.aliases.pop((str(payload.get("name")), str(payload.get("alias"))), None)


def replay_dataset_inputs(events: list[JournalEvent]) -> set[tuple[str, str, str | None]]:
    """The datasets a run's chain says it used, as ``(name, digest, context)``: MLflow links a
    dataset to a run once, with the context it was first logged with."""
    seen: dict[tuple[str, str], str | None] = {}
    for event in events:
        if event.kind == EventKind.RUN_INPUTS_LOGGED:
            for dataset in event.payload.get("datasets") or ():
                seen.setdefault((str(dataset.get("name")), str(dataset.get("digest"))),
                                dataset.get("context"))
    return {(name, digest, context) for (name, digest), context in seen.items()}
