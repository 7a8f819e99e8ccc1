"""Journal reads for the ``/prov/`` routes: filters from a request, opaque page tokens,
writers as the server's privacy option wants them, and what each event changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from exporters.app.params import (
    EXPERIMENT,
    INT32_MAX,
    KIND,
    PAGE_TOKEN,
    RUN,
    SINCE,
    UNTIL,
    BadRequestError,
    page_size,
    read,
    shown,
)
from exporters.app.tokens import PageTokenError, PageTokens
from exporters.privacy import Pseudonymizer, readable_payload
from mlflow_prov.journal import EventPage, JournalEvent, read_events_page
from mlflow_prov.vocabulary import EventKind

DEFAULT_PAGE_SIZE = 100
JOURNAL_LISTING = "journal"  # what a journal page token pages (the API's and the timeline's)
EVENT_PARAMS = (EXPERIMENT, RUN, KIND, SINCE, UNTIL, page_size(DEFAULT_PAGE_SIZE), PAGE_TOKEN)


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


def read_journal_token(tokens: PageTokens, token: str | None) -> int | None:
    """The seq a journal page token starts after: one this server signed, within the
    journal's INTEGER column."""
    if token is None:
        return None
    try:
        after = tokens.read(JOURNAL_LISTING, token)
    except PageTokenError as exc:
        raise BadRequestError(f"page_token {shown(token)} is not one this server issued "
                              f"({exc}); pass next_page_token from the previous page") from exc
    if type(after) is not int or not 0 <= after <= INT32_MAX:
        raise BadRequestError(f"page_token {shown(token)} holds no journal position; pass "
                              "next_page_token from the previous page")
    return after


def journal_token(tokens: PageTokens, after_seq: int | None) -> str | None:
    """The page token for the events after ``after_seq`` (None: no further page)."""
    return None if after_seq is None else tokens.issue(JOURNAL_LISTING, after_seq)


def parse_filters(args: MultiDict[str, str], tokens: PageTokens) -> EventFilters:
    """Filters from a request's query string, each checked before any query."""
    given = read(EVENT_PARAMS, args)
    return EventFilters(experiment_id=given["experiment_id"], run_id=given["run_id"],
                        kinds=given["kind"], since_us=given["since"],
                        until_us=given["until"],
                        after_seq=read_journal_token(tokens, given["page_token"]),
                        limit=given["page_size"] or DEFAULT_PAGE_SIZE)


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
