"""Journal reads for the ``/prov/`` routes: filters from a request, opaque page tokens and
events as the API returns them (their wording is :mod:`exporters.wording`'s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from exporters.app.params import (
    CHAIN,
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
from exporters.privacy import Pseudonymizer
from mlflow_prov.journal import EventPage, JournalEvent, read_events_page

DEFAULT_PAGE_SIZE = 100
JOURNAL_LISTING = "journal"  # what a journal page token pages (the API's and the timeline's)
EVENT_PARAMS = (EXPERIMENT, RUN, CHAIN, KIND, SINCE, UNTIL, page_size(DEFAULT_PAGE_SIZE),
                PAGE_TOKEN)


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
    chain: str | None = None


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
                        limit=given["page_size"] or DEFAULT_PAGE_SIZE, chain=given["chain"])


def events_page(tracking_uri: str, filters: EventFilters) -> EventPage:
    return read_events_page(tracking_uri, experiment_id=filters.experiment_id,
                            run_id=filters.run_id, chain=filters.chain,
                            kinds=list(filters.kinds) or None,
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
