"""How every output words a journal event: what it changed, who wrote it, what it is about.

Why one module: ``mlflow-prov log``, the ``/prov/`` timeline pages, the exported HTML
timeline and the JSON of ``log --json`` each phrased events their own way, so the same tag
change read ``stage: dev → prod`` in one place and ``tag stage`` in another, and each chose
for itself which payload fields to hide. Here an event's payload is first made readable once
(:func:`exporters.privacy.readable_payload`: secrets redacted, verification bookkeeping
dropped) and then worded by :func:`describe`; folded metric stretches
(:mod:`exporters.timeline`) are worded by :func:`fold_summary` and :func:`key_summary`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from exporters.privacy import readable_payload
from mlflow_prov.vocabulary import (
    ArtifactsRecordedPayload,
    ArtifactUploadedPayload,
    EventKind,
    ExperimentCreated,
    ExperimentRenamed,
    ExperimentTagSet,
    LoggedModelCreated,
    LoggedModelFinalized,
    RegistryEvent,
    RunCreated,
    RunInputsLogged,
    RunOutputsLogged,
    RunTagDeleted,
    RunUpdated,
)

if TYPE_CHECKING:
    from exporters.timeline import KeyFold, MetricFold

WRITER_FIELDS = ("user", "host", "pid", "rank", "client_address")
SHOWN_KEYS = 6  # names listed before "(+N more)"
SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")


class Event(Protocol):
    """What wording needs of an event: a journal row or an export's history entry."""

    @property
    def kind(self) -> Any: ...

    @property
    def payload(self) -> dict[str, Any]: ...


@dataclass(slots=True)  # built for every event ``log`` prints: slots make that cheap
class Change:
    """One line of "what changed": ``old`` → ``new`` for a named thing (either may be
    missing: a value set for the first time has no ``old``)."""

    what: str
    old: str | None = None
    new: str | None = None


def changes(event: Event) -> list[Change]:
    """What an event changed, from its raw payload (made readable here)."""
    return describe(event.kind, readable_payload(event.payload))


def describe(kind: Any, payload: Mapping[str, Any]) -> list[Change]:
    """What an event of ``kind`` changed, as a reader wants it: tag values old → new, status
    transitions, renames, deletions. ``payload`` must already be readable
    (:func:`exporters.privacy.readable_payload`)."""
    describer = _DESCRIBERS.get(kind)
    if describer is not None:
        return describer(payload)
    return [Change(key, None, _text(value)) for key, value in sorted(payload.items())]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _key_changes(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[Change]:
    old = old or {}
    return [Change(key, _text(old.get(key)), _text(value)) for key, value in new.items()]


def _tags_or_params(payload: Mapping[str, Any]) -> list[Change]:
    return _key_changes(payload.get("tags") or payload.get("params") or {}, payload.get("old"))


def _tag_deleted(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RunTagDeleted, payload)
    return [Change(str(typed.get("key")), _text(typed.get("old_value")), "(deleted)")]


def _experiment_tag(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(ExperimentTagSet, payload)
    return [Change(str(typed.get("key")), _text(typed.get("old_value")),
                   _text(typed.get("value")))]


def _run_updated(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RunUpdated, payload)
    found = []
    if typed.get("old_status") != typed.get("new_status"):
        found.append(Change("status", typed.get("old_status"), typed.get("new_status")))
    if typed.get("old_name") != typed.get("new_name"):
        found.append(Change("name", typed.get("old_name"), typed.get("new_name")))
    return found or [Change("status", None, typed.get("new_status"))]


def _run_created(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RunCreated, payload)
    return [Change("run", None, typed.get("run_name")),
            *_key_changes(typed.get("tags") or {}, None)]


def _deleted(payload: Mapping[str, Any]) -> list[Change]:
    return [Change("lifecycle", "active", "deleted")]


def _restored(payload: Mapping[str, Any]) -> list[Change]:
    return [Change("lifecycle", "deleted", "active")]


def _metrics(payload: Mapping[str, Any]) -> list[Change]:
    return [Change("metrics", None, metrics_summary(payload))]


def _inputs(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RunInputsLogged, payload)
    return [*(Change("dataset", None, dataset_summary(d))
              for d in typed.get("datasets") or ()),
            *(Change("model input", None, m) for m in typed.get("models") or ())]


def _outputs(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RunOutputsLogged, payload)
    return [Change("model output", None, m.get("model_id")) for m in typed.get("models") or ()]


def _renamed(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(ExperimentRenamed, payload)
    return [Change("name", typed.get("old_name"), typed.get("new_name"))]


def _experiment_created(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(ExperimentCreated, payload)
    return [Change("experiment", None, typed.get("name")),
            Change("artifact location", None, typed.get("artifact_location")),
            *_key_changes(typed.get("tags") or {}, None)]


def _logged_model_created(payload: Mapping[str, Any]) -> list[Change]:
    """The model's name, the run that made it and what it was given; not its stored row,
    which only verification reads."""
    typed = cast(LoggedModelCreated, payload)
    found = [Change("logged model", None, f"{typed.get('name')} ({typed.get('model_id')})")]
    if typed.get("source_run_id"):
        found.append(Change("source run", None, typed.get("source_run_id")))
    if typed.get("model_type"):
        found.append(Change("model type", None, typed.get("model_type")))
    return [*found, *_key_changes(typed.get("params") or {}, None),
            *_key_changes(typed.get("tags") or {}, None)]


def _logged_model_finalized(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(LoggedModelFinalized, payload)
    return [Change("status", "PENDING", typed.get("status"))]


def _artifacts_recorded(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(ArtifactsRecordedPayload, payload)
    files = typed.get("files") or []
    return [Change("artifacts", None, f"{len(files)} file(s), "
                   f"{size_text(sum(f.get('size', 0) for f in files))}: "
                   f"{names([f.get('path') for f in files])}")]


def _artifact_uploaded(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(ArtifactUploadedPayload, payload)
    return [Change("artifact", None, f"{typed.get('path')} ({size_text(typed.get('size', 0))}, "
                   f"sha256 {str(typed.get('sha256'))[:12]})")]


def _registered_model_created(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RegistryEvent, payload)
    return [Change("registered model", None, typed.get("name")),
            *_key_changes(typed.get("tags") or {}, None)]


def _model_version_created(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RegistryEvent, payload)
    made_by = typed.get("run_id") or typed.get("model_id")
    version = typed.get("version")
    return [Change("version", None, f"{typed.get('name')}"
                   + (f" v{version}" if version is not None else "")),
            Change("source", None, typed.get("source")),
            *([Change("from", None, made_by)] if made_by else []),
            *_key_changes(typed.get("tags") or {}, None)]


def _alias_set(payload: Mapping[str, Any]) -> list[Change]:
    typed = cast(RegistryEvent, payload)
    return [Change(f"alias {typed.get('alias')}", None, f"version {typed.get('version')}")]


_DESCRIBERS = {
    EventKind.RUN_TAGS_SET: _tags_or_params,
    EventKind.RUN_PARAMS_LOGGED: _tags_or_params,
    EventKind.RUN_TAG_DELETED: _tag_deleted,
    EventKind.EXPERIMENT_TAG_DELETED: _tag_deleted,
    EventKind.EXPERIMENT_TAG_SET: _experiment_tag,
    EventKind.RUN_UPDATED: _run_updated,
    EventKind.RUN_CREATED: _run_created,
    EventKind.RUN_DELETED: _deleted,
    EventKind.EXPERIMENT_DELETED: _deleted,
    EventKind.RUN_RESTORED: _restored,
    EventKind.EXPERIMENT_RESTORED: _restored,
    EventKind.RUN_METRICS_LOGGED: _metrics,
    EventKind.RUN_INPUTS_LOGGED: _inputs,
    EventKind.RUN_OUTPUTS_LOGGED: _outputs,
    EventKind.EXPERIMENT_RENAMED: _renamed,
    EventKind.EXPERIMENT_CREATED: _experiment_created,
    EventKind.LOGGED_MODEL_CREATED: _logged_model_created,
    EventKind.LOGGED_MODEL_FINALIZED: _logged_model_finalized,
    EventKind.RUN_ARTIFACTS_RECORDED: _artifacts_recorded,
    EventKind.LOGGED_MODEL_ARTIFACTS_RECORDED: _artifacts_recorded,
    EventKind.RUN_ARTIFACT_UPLOADED: _artifact_uploaded,
    EventKind.LOGGED_MODEL_ARTIFACT_UPLOADED: _artifact_uploaded,
    EventKind.REGISTERED_MODEL_CREATED: _registered_model_created,
    EventKind.MODEL_VERSION_CREATED: _model_version_created,
    EventKind.REGISTERED_MODEL_ALIAS_SET: _alias_set,
}


def names(keys: list[str]) -> str:
    """``loss, acc, lr (+3 more)``: the first few names of a list and how many more."""
    shown = ", ".join(map(str, keys[:SHOWN_KEYS]))
    return shown + (f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else "")


def metrics_summary(payload: Mapping[str, Any]) -> str:
    """One metrics event: ``3 point(s): acc, loss, steps 0–7``."""
    keys = payload.get("keys") or []
    steps = ""
    if payload.get("step_min") is not None:
        steps = f", steps {payload['step_min']}–{payload['step_max']}"
    return f"{payload.get('count', len(keys))} point(s): {names(keys)}{steps}"


def dataset_summary(dataset: Mapping[str, Any]) -> str:
    """``train.csv (training)``: a dataset input by name and context."""
    context = dataset.get("context")
    return f"{dataset.get('name')} ({context})" if context else str(dataset.get("name"))


def size_text(size: int) -> str:
    """``812 B``, ``3.4 MB``: a byte count as people read it (decimal units)."""
    scale = next((i for i in range(len(SIZE_UNITS) - 1, 0, -1) if size >= 1000 ** i), 0)
    if scale == 0:
        return f"{size} B"
    return f"{size / 1000 ** scale:.1f} {SIZE_UNITS[scale]}"


def steps_text(low: int | None, high: int | None) -> str:
    """``step 3`` or ``steps 0–99`` (empty when the events named no step)."""
    if low is None or high is None:
        return ""
    return f"step {low}" if low == high else f"steps {low}–{high}"


def time_text(time_us: int) -> str:
    """``2026-01-02 03:04:05.123``, UTC (every timeline's column says UTC)."""
    seconds, micros = divmod(time_us, 1_000_000)
    return f"{second_text(seconds)}.{micros // 1000:03d}"


@functools.lru_cache(maxsize=1024)  # events come in bursts: many share a second
def second_text(seconds: int) -> str:
    """``2026-01-02 03:04:05``: :func:`time_text` to the second (``log`` adds the
    milliseconds itself, one call fewer an event)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def span_text(first_us: int, last_us: int) -> str:
    """``03:04:05.123 – 03:09:01.000`` (dates only where the span crosses midnight)."""
    first, last = time_text(first_us), time_text(last_us)
    if first == last:
        return first
    return f"{first} – {last[11:] if first[:10] == last[:10] else last}"


def fold_summary(fold: MetricFold) -> str:
    """A folded stretch of metric events in one line:
    ``1,000 events, 2 keys (acc, loss): 2,000 values, steps 0–999``."""
    keys = sorted(fold.keys)
    steps = steps_text(fold.step_min, fold.step_max)
    return (f"{fold.events:,} events, {len(keys)} key{'s' if len(keys) != 1 else ''} "
            f"({names(keys)}): {fold.values:,} values" + (f", {steps}" if steps else ""))


def key_summary(key: KeyFold) -> str:
    """One key of a fold: ``1,000 values, steps 0–999`` (``in 10 events`` when a batch
    logged several keys, so values per key are not known)."""
    count = (f"{key.values:,} values" if key.values is not None
             else f"in {key.events:,} events")
    steps = steps_text(key.step_min, key.step_max)
    return count + (f", {steps}" if steps else "")


def writer_summary(writer: Mapping[str, Any]) -> dict[str, str]:
    """The writer's fields a timeline shows, present ones only, in a fixed order."""
    return {name: str(writer[name]) for name in WRITER_FIELDS
            if writer.get(name) not in (None, "")}


def writer_text(writer: Mapping[str, Any]) -> str:
    """``user@host pid N rank R`` from what the writer recorded."""
    user, host = writer.get("user"), writer.get("host")
    who = f"{user}@{host}" if user and host else str(user or host or "unknown writer")
    extras = [f"{name} {writer[name]}" for name in ("pid", "rank") if writer.get(name)
              not in (None, "")]
    via = writer.get("via")
    if isinstance(via, dict) and via.get("host"):
        extras.append(f"via {via['host']}")
    return " ".join([who, *extras])


def subject(chain: str) -> str:
    """What an event is about, from its chain: ``run <id>``, ``experiment <id>``…"""
    kind, _, object_id = chain.partition(":")
    return f"{kind.replace('_', ' ')} {object_id}"


def change_lines(found: list[Change], indent: str = "    ") -> list[str]:
    """Changes as ``log`` prints them: ``stage: dev → prod``, ``lr: 0.1``."""
    lines = []
    for change in found:
        if change.old is None and change.new is None:
            lines.append(f"{indent}{change.what}")
        elif change.old is None:
            lines.append(f"{indent}{change.what}: {change.new}")
        else:
            lines.append(f"{indent}{change.what}: {change.old} → {change.new}")
    return lines
