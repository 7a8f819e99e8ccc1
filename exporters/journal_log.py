"""The provenance journal as ``git log`` shows commits: when, who, what kind, what changed.

Why: the journal keeps what MLflow forgets (every value a tag had, status transitions, who
wrote from which host and process), but only as JSON rows. ``mlflow-prov log`` answers "who
changed this tag and when?" without Python.

Events are streamed one page (1000 events) at a time, filtered in SQL where the journal's
read API can (experiment, run, kind, time, a key's text) and exactly in Python after that, so
a journal of 100,000 events is never held in memory. A ``prov:`` store is read directly;
an ``http(s)://`` server through the ``/prov/api/`` journal API of ``--app-name prov``.
What each event changed comes from :func:`exporters.app.history.changes`, the same wording
the server's timeline pages use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from exporters.errors import ReaderError
from mlflow_prov.journal import JournalEvent, JournalUnavailableError
from mlflow_prov.vocabulary import EventKind

PAGE_SIZE = 1000
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class LogError(ReaderError):
    """The journal cannot be read with these filters; the message says what to change."""


@dataclass(frozen=True)
class LogFilters:
    """What to show; every filter is optional and they combine with AND."""

    experiment_id: str | None = None
    run_id: str | None = None
    kinds: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    since_us: int | None = None
    limit: int | None = None


def parse_since(text: str, now: datetime | None = None) -> int:
    """``2026-01-31``, ``2026-01-31T12:00:00Z``, epoch milliseconds, or a relative age
    (``30m``, ``2h``, ``7d``, ``1w``) -> epoch microseconds."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        delta = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return int(((now or datetime.now(tz=UTC)) - delta).timestamp() * 1_000_000)
    if text.isdigit():
        return int(text) * 1000
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LogError(f"--since {text!r} is not a time; use 2026-01-31, "
                       "2026-01-31T12:00:00Z, epoch milliseconds or an age like 2h or 7d") \
            from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000)


def parse_kinds(values: tuple[str, ...]) -> tuple[str, ...]:
    """Event kinds, comma-separated or repeated; a chain kind (``run``) means all of its
    kinds (``run.*``)."""
    known = [str(kind) for kind in EventKind]
    found: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",") if v.strip()):
            expanded = [k for k in known if k == name or k.startswith(f"{name}.")]
            if not expanded:
                raise LogError(f"unknown event kind {name!r}; use one of: "
                               f"{', '.join(known)} (or a prefix such as run or model_version)")
            found.extend(expanded)
    return tuple(dict.fromkeys(found))


def event_keys(event: JournalEvent) -> set[str]:
    """The tag, param or metric keys an event is about."""
    payload = event.payload
    keys: set[str] = set()
    for section in ("tags", "params", "old"):
        if isinstance(payload.get(section), dict):
            keys.update(payload[section])
    if isinstance(payload.get("keys"), list):
        keys.update(str(k) for k in payload["keys"])
    if isinstance(payload.get("key"), str):
        keys.add(payload["key"])
    return keys


def read_log(tracking_uri: str, filters: LogFilters) -> Iterator[JournalEvent]:
    """The events that pass ``filters``, oldest first, streamed page by page."""
    from exporters.remote_journal import is_http

    pages = (_remote_pages if is_http(tracking_uri) else _local_pages)(tracking_uri, filters)
    shown = 0
    for page in pages:
        for event in page:
            if filters.keys and not event_keys(event) & set(filters.keys):
                continue
            yield event
            shown += 1
            if filters.limit is not None and shown >= filters.limit:
                return


def _local_pages(tracking_uri: str, filters: LogFilters) -> Iterator[list[JournalEvent]]:
    from mlflow_prov.journal import read_events_page, require_existing_store

    try:
        require_existing_store(tracking_uri)
        after = None
        # one key: let SQL skip events whose payload does not even mention it
        key = filters.keys[0] if len(filters.keys) == 1 else ""
        contains = f'"{key}"' if key and not set(key) & {'"', "\\"} else None
        while True:
            page = read_events_page(tracking_uri, experiment_id=filters.experiment_id,
                                    run_id=filters.run_id, kinds=list(filters.kinds) or None,
                                    since_us=filters.since_us, after_seq=after,
                                    payload_contains=contains, limit=PAGE_SIZE)
            yield page.events
            if page.next_after_seq is None:
                return
            after = page.next_after_seq
    except JournalUnavailableError as exc:
        raise LogError(f"{exc}; mlflow-prov log reads the journal of a prov store "
                       "(prov:///dir, prov+postgresql://…) or of a server started with "
                       "--app-name prov") from exc


def _remote_pages(base_url: str, filters: LogFilters) -> Iterator[list[JournalEvent]]:
    from exporters.remote_journal import _event, _get

    if not (filters.experiment_id or filters.run_id):
        raise LogError("a server's journal is read per experiment or run: add --experiment "
                       "or --run")
    params: dict[str, Any] = {"page_size": PAGE_SIZE}
    for name in ("experiment_id", "run_id"):
        if getattr(filters, name):
            params[name] = getattr(filters, name)
    if filters.kinds:
        params["kind"] = ",".join(filters.kinds)
    if filters.since_us is not None:
        params["since"] = str(filters.since_us // 1000)
    token = None
    try:
        while True:
            page = _get(base_url, "events", {**params, **({"page_token": token} if token
                                                           else {})})
            yield [_event(item) for item in page["events"]]
            token = page.get("next_page_token")
            if not token:
                return
    except JournalUnavailableError as exc:
        raise LogError(str(exc)) from exc


# --- presenting ------------------------------------------------------------------------------

def subject(event: JournalEvent) -> str:
    """What the event is about: ``run <id>``, ``experiment <id>``, ``model <name>``…"""
    kind, _, object_id = event.chain.partition(":")
    return f"{kind.replace('_', ' ')} {object_id}"


def writer_text(writer: dict[str, Any]) -> str:
    """``user@host pid N rank R`` from what the writer recorded."""
    user, host = writer.get("user"), writer.get("host")
    who = f"{user}@{host}" if user and host else str(user or host or "unknown writer")
    extras = [f"{name} {writer[name]}" for name in ("pid", "rank") if writer.get(name)
              not in (None, "")]
    via = writer.get("via")
    if isinstance(via, dict) and via.get("host"):
        extras.append(f"via {via['host']}")
    return " ".join([who, *extras])


def render_event(event: JournalEvent, patterns: Sequence[re.Pattern[str]] = ()) -> str:
    """An event as ``git log`` shows a commit: a header line and the changes, indented;
    every secret redacted (:func:`exporters.privacy.redact`, ``patterns``: ``--redact``)."""
    from exporters.app.history import changes
    from exporters.privacy import redact

    event = redact(event, patterns)
    stamp = event.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    lines = [f"event {event.seq}  {stamp}  {event.kind}  {subject(event)}",
             f"    by {writer_text(event.writer)}"]
    for change in changes(event):
        if change.old is None and change.new is None:
            lines.append(f"    {change.what}")
        elif change.old is None:
            lines.append(f"    {change.what}: {change.new}")
        else:
            lines.append(f"    {change.what}: {change.old} → {change.new}")
    return "\n".join(lines)


def event_dict(event: JournalEvent, patterns: Sequence[re.Pattern[str]] = ()) -> dict[str, Any]:
    """An event as one JSON object: the stored fields, the changes as old/new pairs and the
    payload a reader needs (:func:`exporters.privacy.readable_payload`: redacted, without the
    state and row digests only verification reads); ``patterns``: ``--redact``."""
    from exporters.app.history import changes
    from exporters.privacy import readable_payload, redact

    event = redact(event, patterns)
    return {"seq": event.seq, "time": event.time.isoformat(), "kind": str(event.kind),
            "chain": event.chain, "experiment_id": event.experiment_id,
            "run_id": event.run_id, "writer": event.writer,
            "changes": [{"what": c.what, "old": c.old, "new": c.new} for c in changes(event)],
            "payload": readable_payload(event.payload), "hash": event.hash}
