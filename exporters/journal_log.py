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
from exporters.privacy import (
    BOOKKEEPING_FIELDS,
    readable_payload_json,
    readable_strings,
    redact,
    redact_chain,
)
from exporters.wording import (
    Change,
    change_lines,
    describe,
    names,
    second_text,
    subject,
    time_text,
    writer_text,
)
from mlflow_prov.journal import JournalEvent, JournalUnavailableError
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
    (a writer, a chain, a kind, a second) is redacted and worded once and remembered, a
    journal row's payload is decoded once and redacted with a per-string check instead of a
    walk (:func:`exporters.privacy.readable_payload_json`), and a metrics event, most of any
    journal, is worded from the four fields its line shows (:meth:`_metrics_line`)."""

    def __init__(self, patterns: Sequence[re.Pattern[str]] = (), as_json: bool = False,
                 ) -> None:
        self.patterns = tuple(patterns)
        self.as_json = as_json
        # The stored columns :meth:`stored` reads, in its order (seq first, as
        # :func:`mlflow_prov.journal_scan.scan_columns` pages by it).
        self.columns = JSON_COLUMNS if as_json else TEXT_COLUMNS
        self._writers: dict[str, tuple[dict[str, Any], str]] = {}
        self._texts: dict[str | None, Any] = {}
        self._kinds: dict[str, EventKind | str] = {}
        self._subjects: dict[str, str] = {}
        self._key_lists: dict[tuple[Any, ...], str] = {}

    def stored(self, values: Sequence[Any], payload: dict[str, Any]) -> str:
        """A journal row's :attr:`columns` (``payload``: its decoded payload)."""
        if self.as_json:
            seq, time_us, chain, stored_kind, text, stored_writer, experiment_id, run_id, \
                hash_ = values
            return self._json(seq, time_us, self._kind(stored_kind), chain, experiment_id,
                              run_id, readable_payload_json(text, payload, self.patterns),
                              self._stored_writer(stored_writer), hash_)
        seq, time_us, chain, stored_kind, text, stored_writer = values
        kind = self._kinds.get(stored_kind) or self._kind(stored_kind)
        writer = self._writers.get(stored_writer) or self._stored_writer(stored_writer)
        lines = self._metrics_line(payload) if kind is EventKind.RUN_METRICS_LOGGED else None
        if lines is None:
            lines = _changes_text(describe(kind, readable_payload_json(text, payload,
                                                                       self.patterns)))
        seconds, micros = divmod(time_us, 1_000_000)
        return (f"event {seq}  {second_text(seconds)}.{micros // 1000:03d}Z  {kind}  "
                f"{self._subjects.get(chain) or self._subject(chain)}\n    by {writer[1]}"
                f"{lines}")

    def _kind(self, stored: str) -> EventKind | str:
        found = self._kinds.get(stored)
        if found is None:
            found = self._kinds[stored] = redact(parse_kind(stored))
        return found

    def _stored_writer(self, stored: str) -> tuple[dict[str, Any], str]:
        found = self._writers.get(stored)
        if found is None:
            found = self._writers[stored] = self._writer(json.loads(stored))
        return found

    def _metrics_line(self, payload: dict[str, Any]) -> str | None:
        """A metrics event's change line straight from its payload: the same text as
        :func:`exporters.wording.describe` of its readable payload, found without redacting
        the payload (only its metric keys can hold text,
        :func:`exporters.privacy.readable_strings`; their wording is remembered per key
        list, as a training loop logs the same few). None where a field is not of the type
        capture writes; the caller then takes the long way."""
        keys, count = payload.get("keys"), payload.get("count")
        low, high = payload.get("step_min"), payload.get("step_max")
        if (type(keys) is not list or type(count) is not int or type(low) not in _STEP_TYPES
                or type(high) not in _STEP_TYPES):
            return None
        try:
            listed = tuple(keys)
            shown = self._key_lists.get(listed)
        except TypeError:  # an item that is no text (a list): the long way
            return None
        if shown is None:
            readable = readable_strings(keys)
            if readable is None:
                return None
            if len(self._key_lists) > 65536:
                self._key_lists.clear()
            shown = self._key_lists[listed] = names(readable)
        steps = "" if low is None else f", steps {low}–{high}"
        return f"\n    metrics: {count} point(s): {shown}{steps}"

    def event(self, event: JournalEvent) -> str:
        """A decoded event (one a server's journal API returned)."""
        shown = redact({k: v for k, v in event.payload.items()
                        if k not in BOOKKEEPING_FIELDS}, self.patterns)
        kind, writer = redact(event.kind), self._writer(event.writer)
        if self.as_json:
            return self._json(event.seq, event.time_us, kind, event.chain, event.experiment_id,
                              event.run_id, shown, writer, event.hash)
        return "\n".join([f"event {event.seq}  {time_text(event.time_us)}Z  {kind}  "
                          f"{self._subject(event.chain)}", f"    by {writer[1]}",
                          *change_lines(describe(kind, shown))])

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

    def _json(self, seq: int, time_us: int, kind: EventKind | str, chain: str,
              experiment_id: str | None, run_id: str | None, payload: dict[str, Any],
              writer: tuple[dict[str, Any], str], hash_: str) -> str:
        moment = datetime.fromtimestamp(time_us / 1_000_000, tz=UTC)
        return json.dumps({
            "seq": seq, "time": moment.isoformat(), "kind": str(kind),
            "chain": redact_chain(chain), "experiment_id": self._redacted(experiment_id),
            "run_id": self._redacted(run_id), "writer": writer[0],
            "changes": [{"what": c.what, "old": c.old, "new": c.new}
                        for c in describe(kind, payload)],
            "payload": payload, "hash": redact(hash_)}, ensure_ascii=False)

    def _subject(self, chain: str) -> str:
        """What the chain's events are about, redacted, remembered per chain."""
        found = self._subjects.get(chain)
        if found is None:
            if len(self._subjects) > 65536:
                self._subjects.clear()
            found = self._subjects[chain] = subject(redact_chain(chain))
        return found


TEXT_COLUMNS = ("seq", "time_us", "chain", "kind", "payload", "writer")
JSON_COLUMNS = (*TEXT_COLUMNS, "experiment_id", "run_id", "hash")
_STEP_TYPES = (int, type(None))


def _changes_text(found: list[Change]) -> str:
    """What changed as the lines after an event's ``by`` line, each led by its newline."""
    return "".join(f"\n{line}" for line in change_lines(found))


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
    from mlflow_prov.journal_scan import scan_columns

    wanted = set(filters.keys)
    try:
        require_existing_store(tracking_uri)
        rows = scan_columns(tracking_uri, printer.columns, experiment_id=filters.experiment_id,
                            run_id=filters.run_id, kinds=list(filters.kinds) or None,
                            since_us=filters.since_us, payload_contains=_contains(filters))
        shown = 0
        stored = printer.stored
        for values in rows:
            payload = _decode(values[4])[0]  # the payload column, in both of printer.columns
            if wanted and not payload_keys(payload) & wanted:
                continue
            yield stored(values, payload)
            shown += 1
            if filters.limit is not None and shown >= filters.limit:
                return
    except JournalUnavailableError as exc:
        raise _unavailable(exc) from exc
