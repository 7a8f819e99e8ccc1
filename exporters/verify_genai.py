"""``verify`` for MLflow's GenAI rows: traces, spans, assessments, prompt aliases and
templates, evaluation-dataset records, against the journal's events (issue 19).

Each check replays a chain's events to what MLflow should hold now and reads the rows once
(:mod:`mlflow_prov.genai_rows`): an assessment whose value was edited, a prompt alias that
points elsewhere, a trace deleted outside MLflow's API, a span or a dataset record changed,
each is one line naming the row and what differs. Chains written before this journal kept
GenAI events have no such events, so nothing is claimed for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import add_digests
from mlflow_prov.genai_rows import (
    read_assessments,
    read_dataset_records,
    read_prompt_aliases,
    read_prompt_templates,
    read_span_digests,
    read_trace_infos,
)
from mlflow_prov.journal import JournalEvent, read_events
from mlflow_prov.vocabulary import ChainKind, EventKind, parse_chain

Finding = tuple[str, str]  # (where, what): verify turns each into a Problem
_GENAI_CHAINS = (ChainKind.TRACE, ChainKind.PROMPT, ChainKind.EVALUATION_DATASET)


def genai_findings(tracking_uri: str, connection: sa.Connection,
                   experiment_id: str | None = None) -> list[Finding]:
    """Every GenAI row that disagrees with the journal (optionally in one experiment)."""
    chains = _genai_events(tracking_uri, experiment_id)
    return [*_check_traces(connection, chains[ChainKind.TRACE]),
            *_check_prompts(connection, chains[ChainKind.PROMPT]),
            *_check_datasets(connection, chains[ChainKind.EVALUATION_DATASET])]


def _genai_events(tracking_uri: str, experiment_id: str | None
                  ) -> dict[ChainKind, dict[str, list[JournalEvent]]]:
    found: dict[ChainKind, dict[str, list[JournalEvent]]] = {
        kind: defaultdict(list) for kind in _GENAI_CHAINS}
    for event in read_events(tracking_uri):
        try:
            kind, object_id = parse_chain(event.chain)
        except ValueError:
            continue
        if kind in found:
            found[kind][object_id].append(event)
    if experiment_id is not None:  # a trace's events name its experiment; prompts do not
        found[ChainKind.TRACE] = {
            trace_id: events for trace_id, events in found[ChainKind.TRACE].items()
            if any(e.experiment_id == experiment_id for e in events)}
        found[ChainKind.PROMPT] = {}
        found[ChainKind.EVALUATION_DATASET] = {}
    return found


# --- traces, spans, assessments ----------------------------------------------------------------

def _check_traces(connection: sa.Connection,
                  traces: dict[str, list[JournalEvent]]) -> list[Finding]:
    criteria = _deletions_by_criteria(traces)
    traces = {trace_id: events for trace_id, events in traces.items()
              if not trace_id.startswith("experiment/")}
    infos = read_trace_infos(connection, traces)
    spans = read_span_digests(connection, traces)
    assessments = read_assessments(connection, traces)
    findings: list[Finding] = []
    for trace_id, events in sorted(traces.items()):
        where = f"trace {trace_id}"
        if any(e.kind == EventKind.TRACE_DELETED for e in events):
            if trace_id in infos:
                findings.append((where, "the journal deleted this trace but MLflow still has "
                                 "its row"))
            continue
        if trace_id not in infos:
            if not _deleted_by_criteria(events, criteria):
                findings.append((where, "the journal has this trace but MLflow's trace_info "
                                 "table has no row for it (deleted outside MLflow's API)"))
            continue
        findings += _check_trace_row(where, infos[trace_id], events)
        findings += _check_spans(where, spans.get(trace_id, (0, "")), events)
        findings += _check_assessments(where, trace_id, assessments, events)
    return findings


def _deletions_by_criteria(traces: dict[str, list[JournalEvent]]) -> list[JournalEvent]:
    return [event for trace_id, events in traces.items() if trace_id.startswith("experiment/")
            for event in events if event.kind == EventKind.TRACE_DELETED]


def _deleted_by_criteria(events: list[JournalEvent], deletions: list[JournalEvent]) -> bool:
    """A deletion by age or count covers a trace of its experiment journaled before it, whose
    request time is old enough (a count alone cannot say which: it covers any)."""
    started = [e for e in events if e.kind == EventKind.TRACE_STARTED]
    request_time = started[-1].payload.get("request_time") if started else None
    for deletion in deletions:
        if deletion.experiment_id != events[0].experiment_id or deletion.seq < events[-1].seq:
            continue
        newest = deletion.payload.get("max_timestamp_millis")
        if newest is None or request_time is None or request_time <= newest:
            return True
    return False


def _check_trace_row(where: str, row: dict[str, Any],
                     events: list[JournalEvent]) -> list[Finding]:
    started = [e for e in events if e.kind == EventKind.TRACE_STARTED]
    if not started:
        return []
    state = started[-1].payload.get("state")
    if state is not None and str(row["status"]) != state:
        return [(f"{where} (MLflow trace_info row)",
                 f"status is {row['status']!r}, the journal recorded {state!r}")]
    return []


def _check_spans(where: str, stored: tuple[int, str],
                 events: list[JournalEvent]) -> list[Finding]:
    logged = [e.payload for e in events if e.kind == EventKind.TRACE_SPANS_LOGGED]
    if not logged:
        return []
    count = sum(int(p.get("count", 0)) for p in logged)
    digest = add_digests(str(p.get("digest")) for p in logged)
    if stored == (count, digest):
        return []
    if stored[0] != count:
        what = f"MLflow has {stored[0]} span row(s), the journal logged {count}"
    else:
        what = "a span row's name, parent or times differ from what the journal logged"
    return [(f"{where} (MLflow spans)", what)]


_COMPARED = ("name", "value", "rationale")


def _check_assessments(where: str, trace_id: str, stored: dict[str, dict[str, Any]],
                       events: list[JournalEvent]) -> list[Finding]:
    expected = _journaled_assessments(events)
    findings: list[Finding] = []
    for assessment_id, fields in sorted(expected.items()):
        row = stored.get(assessment_id)
        place = f"{where} assessment {assessment_id}"
        if row is None:
            findings.append((place, "the journal has this assessment but MLflow's "
                             "assessments table has no row for it (deleted outside "
                             "MLflow's API)"))
            continue
        differing = [f"{name} is {row.get(name)!r}, the journal recorded {value!r}"
                     for name, value in fields.items() if row.get(name) != value]
        if differing:
            findings.append((place, "; ".join(differing)))
    extra = sorted(a for a, row in stored.items()
                   if row["trace_id"] == trace_id and a not in expected)
    findings += [(f"{where} assessment {a}", "MLflow has this assessment but the journal "
                  "never recorded it (written outside MLflow's API)") for a in extra]
    return findings


def _journaled_assessments(events: list[JournalEvent]) -> dict[str, dict[str, Any]]:
    """Each assessment's name, value and rationale after the trace chain's last event."""
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        payload = event.payload
        assessment_id = str(payload.get("assessment_id"))
        if event.kind == EventKind.ASSESSMENT_CREATED:
            found[assessment_id] = {name: payload.get(name) for name in _COMPARED}
        elif event.kind == EventKind.ASSESSMENT_UPDATED and assessment_id in found:
            new = payload.get("new") or {}
            found[assessment_id].update({name: new[name] for name in _COMPARED
                                         if new.get(name) is not None})
        elif event.kind == EventKind.ASSESSMENT_DELETED:
            found.pop(assessment_id, None)
    return found


# --- prompts ---------------------------------------------------------------------------------

def _check_prompts(connection: sa.Connection,
                   prompts: dict[str, list[JournalEvent]]) -> list[Finding]:
    aliases = read_prompt_aliases(connection, prompts)
    templates = read_prompt_templates(connection, prompts)
    findings: list[Finding] = []
    for name, events in sorted(prompts.items()):
        if any(e.kind == EventKind.PROMPT_DELETED for e in events):
            continue
        expected = _journaled_aliases(events)
        stored = aliases.get(name, {})
        for alias in sorted(set(expected) | set(stored)):
            if expected.get(alias) != stored.get(alias):
                findings.append((f"prompt {name} alias {alias}",
                                 f"points to version {stored.get(alias)}, the journal "
                                 f"recorded version {expected.get(alias)}"))
        findings += _check_templates(name, templates, events)
    return findings


def _journaled_aliases(events: Iterable[JournalEvent]) -> dict[str, int]:
    aliases: dict[str, int] = {}
    for event in events:
        if event.kind == EventKind.PROMPT_ALIAS_SET:
            aliases[str(event.payload.get("alias"))] = int(event.payload["version"])
        elif event.kind == EventKind.PROMPT_ALIAS_DELETED:
            aliases.pop(str(event.payload.get("alias")), None)
    return aliases


def _check_templates(name: str, templates: dict[tuple[str, int], str],
                     events: list[JournalEvent]) -> list[Finding]:
    deleted = {e.payload.get("version") for e in events
               if e.kind == EventKind.PROMPT_VERSION_DELETED}
    findings: list[Finding] = []
    for event in events:
        template = event.payload.get("template") or {}
        version = event.payload.get("version")
        if (event.kind != EventKind.PROMPT_VERSION_CREATED or version is None
                or version in deleted or not template.get("sha256")):
            continue
        stored = templates.get((name, int(version)))
        if stored != template["sha256"]:
            findings.append((f"prompt {name} version {version}",
                             "its template differs from the one the journal recorded"
                             if stored else "MLflow has no template for this version"))
    return findings


# --- evaluation datasets -----------------------------------------------------------------------

def _check_datasets(connection: sa.Connection,
                    datasets: dict[str, list[JournalEvent]]) -> list[Finding]:
    stored = read_dataset_records(connection, datasets)
    findings: list[Finding] = []
    for dataset_id, events in sorted(datasets.items()):
        if any(e.kind == EventKind.DATASET_DELETED for e in events):
            continue
        findings += _check_records(f"evaluation dataset {dataset_id}",
                                   stored.get(dataset_id, {}), events)
    return findings


def _check_records(where: str, rows: dict[str, int],
                   events: list[JournalEvent]) -> list[Finding]:
    """Each upsert's digest covers its records as written; the records an upsert wrote last
    must still add up to it, and every record must have been written by some upsert."""
    last: dict[str, JournalEvent] = {}
    for event in events:
        if event.kind == EventKind.DATASET_RECORDS_UPSERTED:
            last.update({record_id: event for record_id in event.payload.get("record_ids", ())})
        elif event.kind == EventKind.DATASET_RECORDS_DELETED:
            for record_id in event.payload.get("record_ids", ()):
                last.pop(record_id, None)
    findings: list[Finding] = []
    missing = sorted(set(last) - set(rows))
    unknown = sorted(set(rows) - set(last))
    findings += [(f"{where} record {r}", "the journal has this record but MLflow has no row "
                  "for it (deleted outside MLflow's API)") for r in missing]
    findings += [(f"{where} record {r}", "MLflow has this record but the journal never "
                  "recorded it (written outside MLflow's API)") for r in unknown]
    for event in {id(e): e for e in last.values()}.values():
        records = event.payload.get("record_ids", [])
        if any(last.get(r) is not event or r not in rows for r in records):
            continue  # rewritten later or already reported missing
        total = add_digests(f"{rows[r]:064x}" for r in records)
        if total != event.payload.get("digest"):
            findings.append((f"{where} (event seq {event.seq})", "a record's inputs or "
                             "expectations differ from what the journal recorded"))
    return findings
