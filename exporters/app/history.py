"""Journal reads for the ``/prov/`` routes: filters from a request, opaque page tokens,
writers as the server's privacy option wants them, and what each event changed."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from exporters.privacy import Pseudonymizer, readable_payload
from mlflow_prov.journal import EventPage, JournalEvent, read_events_page
from mlflow_prov.vocabulary import EventKind

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class BadRequestError(ValueError):
    """A query parameter the user can fix; its message says how."""


@dataclass(frozen=True)
class EventFilters:
    """What a caller may filter events by (all optional, combined with AND)."""

    experiment_id: str | None = None
    run_id: str | None = None
    kinds: tuple[str, ...] = ()
    since_us: int | None = None
    until_us: int | None = None
    after_seq: int | None = None
    limit: int = DEFAULT_PAGE_SIZE


def encode_token(after_seq: int | None) -> str | None:
    """An opaque page token for the page after ``after_seq`` (None: no further page)."""
    if after_seq is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"after": after_seq}).encode()).decode()


def decode_token(token: str | None) -> int | None:
    if not token:
        return None
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["after"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequestError(f"page_token {token!r} is not one this server issued; "
                              "pass next_page_token from the previous page") from exc


def parse_time_us(name: str, value: str | None) -> int | None:
    """``since``/``until`` as ISO 8601 (``2026-01-31T12:00:00Z``) or epoch milliseconds."""
    if not value:
        return None
    if value.isdigit():
        return int(value) * 1000
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequestError(f"{name}={value!r} is not a time; use ISO 8601 "
                              "(2026-01-31T12:00:00Z) or epoch milliseconds") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000)


def parse_kinds(values: list[str]) -> tuple[str, ...]:
    """``kind=run.tags_set&kind=run.updated`` or ``kind=run.tags_set,run.updated``."""
    kinds = tuple(k.strip() for value in values for k in value.split(",") if k.strip())
    known = {str(kind) for kind in EventKind}
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise BadRequestError(f"unknown event kind(s) {', '.join(unknown)}; "
                              f"known kinds: {', '.join(sorted(known))}")
    return kinds


def parse_filters(args: MultiDict[str, str]) -> EventFilters:
    """Filters from a request's query string."""
    size = args.get("page_size", str(DEFAULT_PAGE_SIZE))
    if not size.isdigit() or not 1 <= int(size) <= MAX_PAGE_SIZE:
        raise BadRequestError(f"page_size={size!r}: use a whole number from 1 to "
                              f"{MAX_PAGE_SIZE}")
    return EventFilters(experiment_id=args.get("experiment_id") or None,
                        run_id=args.get("run_id") or None,
                        kinds=parse_kinds(args.getlist("kind")),
                        since_us=parse_time_us("since", args.get("since")),
                        until_us=parse_time_us("until", args.get("until")),
                        after_seq=decode_token(args.get("page_token")), limit=int(size))


def events_page(tracking_uri: str, filters: EventFilters) -> EventPage:
    return read_events_page(tracking_uri, experiment_id=filters.experiment_id,
                            run_id=filters.run_id, kinds=list(filters.kinds) or None,
                            since_us=filters.since_us, until_us=filters.until_us,
                            after_seq=filters.after_seq, limit=filters.limit)


def event_json(event: JournalEvent, pseudonymize: Pseudonymizer) -> dict[str, Any]:
    """An event as the API returns it: every stored field, the time also in ISO 8601. The
    API redacts every answer whole (:func:`exporters.app.api.json_route`)."""
    return {"seq": event.seq, "time_us": event.time_us, "time": event.time.isoformat(),
            "chain": event.chain, "experiment_id": event.experiment_id,
            "run_id": event.run_id, "kind": str(event.kind), "payload": event.payload,
            "writer": pseudonymize.writer(event.writer),
            "prev_hash": event.prev_hash, "hash": event.hash}


@dataclass(frozen=True)
class Change:
    """One line of "what changed" on a timeline: ``old`` → ``new`` for a named thing."""

    what: str
    old: str | None = None
    new: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _key_changes(new: dict[str, Any], old: dict[str, Any] | None) -> list[Change]:
    old = old or {}
    return [Change(key, _text(old.get(key)), _text(value)) for key, value in new.items()]


def changes(event: JournalEvent) -> list[Change]:
    """What an event changed, as a reader wants it: tag values old → new, status
    transitions, renames, deletions; secrets redacted as in exports, and none of the
    journal's own bookkeeping (state and row digests)."""
    payload, kind = readable_payload(event.payload), event.kind
    if kind in (EventKind.RUN_TAGS_SET, EventKind.RUN_PARAMS_LOGGED):
        return _key_changes(payload.get("tags") or payload.get("params") or {},
                            payload.get("old"))
    if kind in (EventKind.RUN_TAG_DELETED, EventKind.EXPERIMENT_TAG_DELETED):
        key = str(payload.get("key"))
        return [Change(key, _text(payload.get("old_value")), "(deleted)")]
    if kind == EventKind.EXPERIMENT_TAG_SET:
        key = str(payload.get("key"))
        return [Change(key, _text(payload.get("old_value")), _text(payload.get("value")))]
    if kind == EventKind.RUN_UPDATED:
        found = []
        if payload.get("old_status") != payload.get("new_status"):
            found.append(Change("status", payload.get("old_status"), payload.get("new_status")))
        if payload.get("old_name") != payload.get("new_name"):
            found.append(Change("name", payload.get("old_name"), payload.get("new_name")))
        return found or [Change("status", None, payload.get("new_status"))]
    if kind == EventKind.RUN_CREATED:
        return [Change("run", None, payload.get("run_name")),
                *_key_changes(payload.get("tags") or {}, None)]
    if kind in (EventKind.RUN_DELETED, EventKind.EXPERIMENT_DELETED):
        return [Change("lifecycle", "active", "deleted")]
    if kind in (EventKind.RUN_RESTORED, EventKind.EXPERIMENT_RESTORED):
        return [Change("lifecycle", "deleted", "active")]
    if kind == EventKind.RUN_METRICS_LOGGED:
        return [Change("metrics", None, _metrics_summary(payload))]
    if kind == EventKind.RUN_INPUTS_LOGGED:
        return [*(Change("dataset", None, _dataset_summary(d))
                  for d in payload.get("datasets") or ()),
                *(Change("model input", None, m) for m in payload.get("models") or ())]
    if kind == EventKind.RUN_OUTPUTS_LOGGED:
        return [Change("model output", None, m.get("model_id"))
                for m in payload.get("models") or ()]
    if kind == EventKind.EXPERIMENT_RENAMED:
        return [Change("name", payload.get("old_name"), payload.get("new_name"))]
    return [Change(key, None, _text(value)) for key, value in sorted(payload.items())]


def _metrics_summary(payload: dict[str, Any]) -> str:
    keys = payload.get("keys") or []
    shown = ", ".join(str(k) for k in keys[:6]) + (f" (+{len(keys) - 6} more)"
                                                    if len(keys) > 6 else "")
    steps = ""
    if payload.get("step_min") is not None:
        steps = f", steps {payload['step_min']}–{payload['step_max']}"
    return f"{payload.get('count', len(keys))} point(s): {shown}{steps}"


def _dataset_summary(dataset: dict[str, Any]) -> str:
    context = dataset.get("context")
    return f"{dataset.get('name')} ({context})" if context else str(dataset.get("name"))


def writer_summary(writer: dict[str, Any]) -> dict[str, str]:
    """The writer's fields a timeline shows, present ones only, in a fixed order."""
    fields = ("user", "host", "pid", "rank", "client_address")
    return {name: str(writer[name]) for name in fields if writer.get(name) not in (None, "")}
