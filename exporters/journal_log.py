"""The provenance journal as ``git log`` shows commits: when, who, what kind, what changed.

Why: the journal keeps what MLflow forgets (every value a tag had, status transitions, who
wrote from which host and process), but only as JSON rows. ``mlflow-prov log`` answers "who
changed this tag and when?" without Python.

Events are streamed a page at a time, filtered in SQL where the journal's read API can
(experiment, run, kind, time, a key's text) and exactly in Python after that, so a journal of
100,000 events is never held in memory. A ``prov:`` store is read directly (undecoded rows,
:mod:`mlflow_prov.journal_scan`); an ``http(s)://`` server through the ``/prov/api/``
journal API of ``--app-name prov``. What each event changed is worded by
:mod:`exporters.wording`, as on the server's timeline pages and in exported timelines.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from exporters.errors import ReaderError
from exporters.privacy import BOOKKEEPING_FIELDS, readable_payload_json, redact, redact_chain
from exporters.wording import change_lines, describe, subject, time_text, writer_text
from mlflow_prov.journal import JournalEvent, JournalUnavailableError
from mlflow_prov.journal_scan import RawEvent
from mlflow_prov.vocabulary import EventKind, parse_kind

PAGE_SIZE = 1000
# json.loads minus its per-call checks and whitespace scans: a stored payload is one JSON
# object written by json.dumps, nothing around it.
_decode = json.JSONDecoder().raw_decode
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


def payload_keys(payload: dict[str, Any]) -> set[str]:
    """The tag, param or metric keys an event's payload is about."""
    keys: set[str] = set()
    for section in ("tags", "params", "old"):
        if isinstance(payload.get(section), dict):
            keys.update(payload[section])
    if isinstance(payload.get("keys"), list):
        keys.update(str(k) for k in payload["keys"])
    if isinstance(payload.get("key"), str):
        keys.add(payload["key"])
    return keys


def read_log(base_url: str, filters: LogFilters) -> Iterator[JournalEvent]:
    """The events of a server's journal that pass ``filters``, oldest first, page by page."""
    shown = 0
    for page in _remote_pages(base_url, filters):
        for event in page:
            if filters.keys and not payload_keys(event.payload) & set(filters.keys):
                continue
            yield event
            shown += 1
            if filters.limit is not None and shown >= filters.limit:
                return


def _contains(filters: LogFilters) -> str | None:
    """With one ``--key``, the text SQL looks for in a payload: events whose payload does
    not even mention the key are skipped there."""
    key = filters.keys[0] if len(filters.keys) == 1 else ""
    return f'"{key}"' if key and not set(key) & {'"', "\\"} else None


def _unavailable(exc: JournalUnavailableError) -> LogError:
    return LogError(f"{exc}; mlflow-prov log reads the journal of a prov store "
                    "(prov:///dir, prov+postgresql://…) or of a server started with "
                    "--app-name prov")


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

class LogPrinter:
    """Events as ``git log`` shows commits (or one JSON object each), every secret redacted
    (:mod:`exporters.privacy`; ``patterns``: ``--redact``), worded by :mod:`exporters.wording`.

    Why a class: ``log`` prints 100,000 events a second. What repeats from event to event
    (a writer, a chain, a kind) is redacted and worded once and remembered, and a journal
    row's payload is decoded once and redacted with a per-string check instead of a walk
    (:func:`exporters.privacy.readable_payload_json`)."""

    def __init__(self, patterns: Sequence[re.Pattern[str]] = (), as_json: bool = False,
                 ) -> None:
        self.patterns = tuple(patterns)
        self.as_json = as_json
        self._writers: dict[str, tuple[dict[str, Any], str]] = {}
        self._texts: dict[str | None, Any] = {}
        self._kinds: dict[str, EventKind | str] = {}
        self._subjects: dict[str, str] = {}

    def row(self, row: RawEvent, payload: dict[str, Any]) -> str:
        """A journal row (``payload``: its decoded payload)."""
        kind = self._kinds.get(row.kind)
        if kind is None:
            kind = self._kinds[row.kind] = redact(parse_kind(row.kind))
        writer = self._writers.get(row.writer)
        if writer is None:
            writer = self._writers[row.writer] = self._writer(json.loads(row.writer))
        shown = readable_payload_json(row.payload, payload, self.patterns)
        return self._render(row.seq, row.time_us, kind, row.chain, row.experiment_id,
                            row.run_id, shown, writer, row.hash)

    def event(self, event: JournalEvent) -> str:
        """A decoded event (one a server's journal API returned)."""
        shown = redact({k: v for k, v in event.payload.items()
                        if k not in BOOKKEEPING_FIELDS}, self.patterns)
        return self._render(event.seq, event.time_us, redact(event.kind), event.chain,
                            event.experiment_id, event.run_id, shown,
                            self._writer(event.writer), event.hash)

    def _writer(self, writer: dict[str, Any]) -> tuple[dict[str, Any], str]:
        shown = redact(writer, self.patterns)
        return shown, writer_text(shown)

    def _redacted(self, text: str | None) -> Any:
        """A chain or id as every output shows it, remembered (runs repeat)."""
        found = self._texts.get(text, self)
        if found is self:
            if len(self._texts) > 65536:
                self._texts.clear()
            found = self._texts[text] = redact(text)
        return found

    def _render(self, seq: int, time_us: int, kind: EventKind | str, chain: str,
                experiment_id: str | None, run_id: str | None, payload: dict[str, Any],
                writer: tuple[dict[str, Any], str], hash_: str) -> str:
        found = describe(kind, payload)
        if self.as_json:
            moment = datetime.fromtimestamp(time_us / 1_000_000, tz=UTC)
            return json.dumps({
                "seq": seq, "time": moment.isoformat(), "kind": str(kind),
                "chain": redact_chain(chain), "experiment_id": self._redacted(experiment_id),
                "run_id": self._redacted(run_id), "writer": writer[0],
                "changes": [{"what": c.what, "old": c.old, "new": c.new} for c in found],
                "payload": payload, "hash": redact(hash_)}, ensure_ascii=False)
        return "\n".join([f"event {seq}  {time_text(time_us)}Z  {kind}  {self._subject(chain)}",
                          f"    by {writer[1]}", *change_lines(found)])

    def _subject(self, chain: str) -> str:
        """What the chain's events are about, redacted, remembered per chain."""
        found = self._subjects.get(chain)
        if found is None:
            if len(self._subjects) > 65536:
                self._subjects.clear()
            found = self._subjects[chain] = subject(redact_chain(chain))
        return found


def log_output(tracking_uri: str, filters: LogFilters, printer: LogPrinter,
               chunk: int = 1000) -> Iterator[str]:
    """The command's output in pieces of ``chunk`` events, exactly as printing each event on
    its own would write it (a blank line between events, or one JSON object a line)."""
    from exporters.remote_journal import is_http

    if is_http(tracking_uri):
        shown: Iterator[str] = map(printer.event, read_log(tracking_uri, filters))
    else:
        shown = _local_events(tracking_uri, filters, printer)
    separator = "\n" if printer.as_json else "\n\n"
    first = True
    while piece := list(itertools.islice(shown, chunk)):
        yield ("" if first else separator) + separator.join(piece)
        first = False
    if not first:
        yield "\n"


def _local_events(tracking_uri: str, filters: LogFilters, printer: LogPrinter
                  ) -> Iterator[str]:
    """Rows of a prov store, streamed undecoded (:mod:`mlflow_prov.journal_scan`), filtered
    and shown as :func:`read_log` filters and shows decoded events."""
    from mlflow_prov.journal import require_existing_store
    from mlflow_prov.journal_scan import scan_rows

    wanted = set(filters.keys)
    try:
        require_existing_store(tracking_uri)
        rows = scan_rows(tracking_uri, experiment_id=filters.experiment_id,
                         run_id=filters.run_id, kinds=list(filters.kinds) or None,
                         since_us=filters.since_us, payload_contains=_contains(filters))
        shown = 0
        for row in rows:
            payload = _decode(row.payload)[0]
            if wanted and not payload_keys(payload) & wanted:
                continue
            yield printer.row(row, payload)
            shown += 1
            if filters.limit is not None and shown >= filters.limit:
                return
    except JournalUnavailableError as exc:
        raise _unavailable(exc) from exc
