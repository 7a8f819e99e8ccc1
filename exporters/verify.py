"""``mlflow-prov verify``: check every journal chain and reconcile MLflow's rows with it.

Two questions, answered from the database at its own speed:

1. Is the journal intact? Every chain is rehashed (:func:`mlflow_prov.journal.verify_chain`):
   an edited, deleted, reordered, inserted or moved event, a missing head row or a truncated
   tail breaks a link, a hash or the head.
2. Does MLflow still hold what the journal says it stored? Each run event carries digests of
   MLflow's rows (:mod:`mlflow_prov.digests`): per metric key a row count and an
   order-independent multiset digest, and after every other run write the digests of the run
   row, its tags and its params. All of a run's metric rows are compared with all of its
   events at once, one query per table per run (:mod:`mlflow_prov.stored_rows`); only on a
   mismatch are rows matched to events to name the key, step and event.

An export's ``journalIntact`` asks the same questions at the cost of the number of series
rather than of points (``every_metric_row=False``): on stores whose database keeps series
summaries (:mod:`mlflow_prov.series_summaries`) a series is rehashed only when its row count
differs from the journal's or an update or delete touched it since it was written; the report
says whether every metric row was rehashed (``metric_rows_rehashed``). Elsewhere every row is
read, as ``verify`` always does.

Every problem is one line naming the chain and event (seq), or the MLflow row (run, key,
step), and what is wrong. Journals written before digests existed cannot prove MLflow's rows:
they get a note, not a failure.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporters.verify_genai import genai_findings
from mlflow_prov.digests import (
    EMPTY_DIGEST,
    add_digests,
    metric_row_hash,
    multiset_digest,
    pairs_digest,
    record_digest,
    stored_float,
    stored_integer,
    unnormalised_metric_row_hash,
)
from mlflow_prov.journal import JournalEvent, chain_heads, read_events, verify_chain
from mlflow_prov.series_summaries import SeriesMark, series_marks
from mlflow_prov.stored_rows import (
    EXPERIMENT_COLUMNS,
    RUN_COLUMNS,
    RunRows,
    newest_metric_rows,
    open_store,
    read_experiment_rows,
    read_run_rows,
    read_runs,
)
from mlflow_prov.vocabulary import (
    METRIC_DIGESTS_FIELD,
    RUN_NAME_TAG,
    STATE_FIELD,
    ChainKind,
    EventKind,
    experiment_chain,
    parse_chain,
    run_chain,
)

SHOWN_CHARS = 40
SUMMARY_FIELDS = ("count", "first_step", "last_step", "first_timestamp", "last_timestamp",
                  "min_value", "max_value")
CREATED_STATUS = "RUNNING"
NULLABLE_RUN_FIELDS = frozenset({"end_time"})  # None there is a fact, not "unknown"


@dataclass(frozen=True)
class Problem:
    """One finding: where (a chain and event, or an MLflow row) and what is wrong."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class VerifyReport:
    """What verify found. ``ok`` only when there are no problems (notes do not count)."""

    chains: int = 0
    runs: int = 0
    metric_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heads: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    metric_rows_rehashed: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(tracking_uri: str, experiment_id: str | None = None,
                 run_ids: Iterable[str] = (), every_metric_row: bool = True) -> VerifyReport:
    """Verify the journal and MLflow's run rows of a prov store, for everything in it or for
    one experiment's or some runs' chains and rows. ``every_metric_row=False`` rehashes only
    the series whose summary marks them changed (see the module's docstring)."""
    report = VerifyReport()
    wanted_runs = list(run_ids)
    with open_store(tracking_uri) as connection:
        runs = {}
        selected: list[str | None] = list(wanted_runs) or [None]
        for run_id in selected:
            runs.update(read_runs(connection, experiment_id, run_id))
        heads = chain_heads(tracking_uri)
        if (experiment_id is not None and not runs
                and experiment_chain(experiment_id) not in heads
                and read_experiment_rows(connection, experiment_id)[0] is None):
            report.problems.append(Problem(  # a mistyped id must not read as "ok"
                f"experiment {experiment_id}", "no such experiment in MLflow's tables or the "
                "journal (check the experiment id)"))
            return report
        unknown = [run_id for run_id in wanted_runs
                   if run_id not in runs and run_chain(run_id) not in heads]
        report.problems += [Problem(f"run {run_id}", "no such run in MLflow's tables or the "
                                    "journal (check the run id)") for run_id in unknown]
        wanted_runs = [run_id for run_id in wanted_runs if run_id not in unknown]
        if unknown and not wanted_runs:
            return report
        chains = _chains_in_scope(tracking_uri, heads, runs, experiment_id, wanted_runs)
        report.heads = {chain: heads.get(chain, (0, None)) for chain in chains}
        for chain in sorted(chains):
            chain_report = verify_chain(tracking_uri, chain)
            report.chains += 1
            report.problems += [Problem(f"chain {chain}", problem)
                                for problem in chain_report.problems]
        journaled, experiments = _chain_events(tracking_uri, experiment_id, wanted_runs)
        for run_id in sorted({*runs, *journaled}):
            report.runs += 1
            if run_id not in runs:
                report.problems.append(Problem(
                    f"run {run_id}", "the journal has this run but MLflow's runs table has no "
                    "row for it (deleted outside MLflow's API)"))
                continue
            events = journaled.get(run_id, [])
            if not events:
                continue  # the chain check above already reports the missing chain
            marks = series_marks(connection, run_id)
            keys = None if every_metric_row or marks is None else _series_to_rehash(events,
                                                                                   marks)
            rows = read_run_rows(connection, run_id, keys)
            report.metric_rows += len(rows.metrics)
            unread = set(marks or ()) - set(keys) if keys is not None else set()
            if unread:
                report.metric_rows_rehashed = False
            _reconcile_run(run_id, rows, events, report, keys,
                           newest_metric_rows(connection, run_id, unread))
            _check_summaries(run_id, rows, marks or {}, report)
        for found_id, events in sorted(experiments.items()):
            _reconcile_experiment(found_id, *read_experiment_rows(connection, found_id),
                                  events, report)
        if not wanted_runs:  # GenAI rows belong to no run (exporters/verify_genai.py)
            report.problems += [Problem(where, what) for where, what in
                                genai_findings(tracking_uri, connection, experiment_id)]
    return report


def _chains_in_scope(tracking_uri: str, heads: dict[str, Any], runs: dict[str, Any],
                     experiment_id: str | None, run_ids: list[str]) -> set[str]:
    """The chains to rehash: those of the selected runs (present in MLflow or the journal),
    and, without a selection, every chain the journal knows."""
    chains = {run_chain(run_id) for run_id in runs}
    if run_ids:
        return chains | {run_chain(run_id) for run_id in run_ids}
    if experiment_id is None:
        return chains | set(heads)
    in_experiment = {event.chain for event in read_events(tracking_uri, experiment_id)}
    return chains | in_experiment


def _chain_events(tracking_uri: str, experiment_id: str | None, run_ids: list[str]
                  ) -> tuple[dict[str, list[JournalEvent]], dict[str, list[JournalEvent]]]:
    """Each run's own chain events (not the logged-model events that name it as source) and,
    unless runs were selected, each experiment's own chain events."""
    selections: list[dict[str, Any]] = ([{"run_id": run_id} for run_id in run_ids]
                                        or [{"experiment_id": experiment_id}])
    runs: dict[str, list[JournalEvent]] = defaultdict(list)
    experiments: dict[str, list[JournalEvent]] = defaultdict(list)
    for selection in selections:
        for event in read_events(tracking_uri, **selection):
            kind, object_id = parse_chain(event.chain)
            if kind == ChainKind.RUN:
                runs[object_id].append(event)
            elif kind == ChainKind.EXPERIMENT and object_id.isdigit():
                experiments[object_id].append(event)
    return runs, experiments


def _reconcile_experiment(experiment_id: str, row: dict[str, Any] | None, tags: dict[str, str],
                          events: list[JournalEvent], report: VerifyReport) -> None:
    """An experiment's row and tags against the state its last event recorded."""
    stated = [event for event in events if "experiment" in event.payload.get(STATE_FIELD, {})]
    if not stated:
        report.notes.append(f"experiment {experiment_id}: the journal predates row digests; "
                            "MLflow's experiment row and tags cannot be proven")
        return
    where = f"experiment {experiment_id}"
    if row is None:
        report.problems.append(Problem(where, "the journal has this experiment but MLflow's "
                                       "experiments table has no row for it (deleted outside "
                                       "MLflow's API)"))
        return
    state = stated[-1].payload[STATE_FIELD]
    if record_digest(row[c] for c in EXPERIMENT_COLUMNS) != state["experiment"]:
        expected = _journaled_experiment_fields(events)
        differing = [f"{name} is {_show(row.get(name))}, the journal recorded {_show(value)}"
                     for name, value in expected.items() if row.get(name) != value]
        report.problems.append(Problem(f"{where} (MLflow experiments row)", "; ".join(
            differing) or f"a column differs from the journal's digest "
                          f"({', '.join(EXPERIMENT_COLUMNS)})"))
    _check_pairs(f"experiment {experiment_id}", "tag", tags, _journaled_experiment_tags(events),
                 state["tags"], report)


def _journaled_experiment_fields(events: list[JournalEvent]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for event in events:
        payload = event.payload
        if event.kind == EventKind.EXPERIMENT_CREATED:
            fields.update(name=payload.get("name"), lifecycle_stage="active")
            if payload.get("artifact_location"):
                fields["artifact_location"] = payload["artifact_location"]
        elif event.kind == EventKind.EXPERIMENT_RENAMED:
            fields["name"] = payload.get("new_name")
        elif event.kind == EventKind.EXPERIMENT_DELETED:
            fields["lifecycle_stage"] = "deleted"
        elif event.kind == EventKind.EXPERIMENT_RESTORED:
            fields["lifecycle_stage"] = "active"
    return {name: value for name, value in fields.items() if value is not None}


def _journaled_experiment_tags(events: list[JournalEvent]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for event in events:
        if event.kind == EventKind.EXPERIMENT_CREATED:
            tags.update(event.payload.get("tags") or {})
        elif event.kind == EventKind.EXPERIMENT_TAG_SET:
            tags[str(event.payload.get("key"))] = event.payload.get("value")
        elif event.kind == EventKind.EXPERIMENT_TAG_DELETED:
            tags.pop(str(event.payload.get("key")), None)
    return tags


def _series_to_rehash(events: list[JournalEvent],
                      marks: dict[str, SeriesMark]) -> set[str] | None:
    """The keys whose rows must be read: their count differs from the journal's, an update or
    delete marked them, their points were back-filled unwatched, or only one side knows
    them. ``None`` (read all) when a metric event predates digests and carries no counts."""
    journaled: dict[str, int] = defaultdict(int)
    for event in events:
        if event.kind != EventKind.RUN_METRICS_LOGGED:
            continue
        digests = event.payload.get(METRIC_DIGESTS_FIELD)
        if digests is None:
            return None
        for key, (count, _digest) in digests.items():
            journaled[key] += count
    return {key for key in {*journaled, *marks}
            if key not in marks or not marks[key].watched
            or marks[key].count != journaled.get(key)}


def _reconcile_run(run_id: str, rows: RunRows, events: list[JournalEvent],
                   report: VerifyReport, keys: Collection[str] | None = None,
                   newest_unread: dict[str, list[tuple]] | None = None) -> None:
    """``keys``: the metric keys whose rows were read (``None``: all of them); for the other
    series, whose summaries vouch for their rows, ``newest_unread`` holds each one's newest
    rows, for ``latest_metrics``."""
    stated = [event for event in events if "run" in event.payload.get(STATE_FIELD, {})]
    if stated:
        state = stated[-1].payload[STATE_FIELD]
        _check_run_row(run_id, rows, events, state["run"], report)
        subject = f"run {run_id}"
        _check_pairs(subject, "tag", rows.tags, _journaled_tags(events), state["tags"], report)
        _check_pairs(subject, "param", rows.params, _journaled_params(events), state["params"],
                     report)
    else:
        report.notes.append(f"run {run_id}: the journal predates row digests; MLflow's run "
                            "row, tags and params cannot be proven")
    metric_events = [event for event in events if event.kind == EventKind.RUN_METRICS_LOGGED]
    if any(METRIC_DIGESTS_FIELD not in event.payload for event in metric_events):
        report.notes.append(f"run {run_id}: some metric events predate row digests; its "
                            "metric rows cannot be proven")
    else:
        _check_metrics(run_id, rows.metrics, metric_events, report, keys)
    _check_latest_metrics(run_id, rows, report, newest_unread or {},
                          _rounded_keys(metric_events))


# --- run row, tags, params ------------------------------------------------------------------

def _check_run_row(run_id: str, rows: RunRows, events: list[JournalEvent], digest: str,
                   report: VerifyReport) -> None:
    if rows.run is None or record_digest(rows.run[c] for c in RUN_COLUMNS) == digest:
        return
    expected = _journaled_run_fields(events)
    differing = [f"{name} is {_show(rows.run.get(name))}, the journal recorded {_show(value)}"
                 for name, value in expected.items() if rows.run.get(name) != value]
    what = "; ".join(differing) or ("a column differs from the journal's digest "
                                    f"({', '.join(RUN_COLUMNS)})")
    report.problems.append(Problem(f"run {run_id} (MLflow runs row)", what))


def _journaled_run_fields(events: list[JournalEvent]) -> dict[str, Any]:
    """The run columns the journal spells out, replayed in write order."""
    fields: dict[str, Any] = {}
    for event in events:
        payload = event.payload
        if event.kind == EventKind.RUN_CREATED:  # MLflow creates every run RUNNING
            fields.update(user_id=payload.get("user_id"), start_time=payload.get("start_time"),
                          name=payload.get("run_name"), lifecycle_stage="active",
                          status=CREATED_STATUS, end_time=None)
        elif event.kind == EventKind.RUN_UPDATED:
            fields.update(status=payload.get("new_status"), name=payload.get("new_name"))
            if payload.get("end_time") is not None:
                fields["end_time"] = payload["end_time"]
        elif event.kind == EventKind.RUN_DELETED:
            fields["lifecycle_stage"] = "deleted"
        elif event.kind == EventKind.RUN_RESTORED:
            fields["lifecycle_stage"] = "active"
    return {name: value for name, value in fields.items()
            if value is not None or name in NULLABLE_RUN_FIELDS}


def _journaled_tags(events: list[JournalEvent]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for event in events:
        if event.kind in (EventKind.RUN_CREATED, EventKind.RUN_TAGS_SET):
            tags.update(event.payload.get("tags") or {})
        if event.kind == EventKind.RUN_CREATED and event.payload.get("run_name"):
            tags.setdefault(RUN_NAME_TAG, event.payload["run_name"])
        elif event.kind == EventKind.RUN_UPDATED and event.payload.get("new_name"):
            tags[RUN_NAME_TAG] = event.payload["new_name"]
        elif event.kind == EventKind.RUN_TAG_DELETED and event.payload.get("key") is not None:
            tags.pop(str(event.payload["key"]), None)
    return tags


def _journaled_params(events: list[JournalEvent]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for event in events:
        if event.kind == EventKind.RUN_PARAMS_LOGGED:
            for key, value in (event.payload.get("params") or {}).items():
                params.setdefault(key, value)
    return params


def _check_pairs(subject: str, noun: str, stored: dict[str, str], journaled: dict[str, Any],
                 digest: str, report: VerifyReport) -> None:
    """Tags or params of a run or an experiment (``subject``): the digest decides; the
    replayed values only name the keys."""
    if pairs_digest(stored.items()) == digest:
        return
    found = []
    for key in sorted({*stored, *journaled}):
        if key not in journaled:
            found.append(Problem(f"{subject} {noun} {key!r}",
                                 f"MLflow has {_show(stored[key])}, never journaled (inserted)"))
        elif key not in stored:
            found.append(Problem(f"{subject} {noun} {key!r}", "journaled as "
                                 f"{_show(journaled[key])}, missing in MLflow (deleted)"))
        elif str(stored[key]) != str(journaled[key]):
            found.append(Problem(f"{subject} {noun} {key!r}", f"MLflow has "
                                 f"{_show(stored[key])}, the journal recorded "
                                 f"{_show(journaled[key])} (edited)"))
    report.problems += found or [Problem(
        f"{subject} {noun}s", "MLflow's rows differ from the journal's digest, though every "
        "value agrees with the journal's replay: the recorded digest itself is wrong (an "
        "edited head state, or rows changed by a writer that does not journal)")]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…'"


# --- metrics --------------------------------------------------------------------------------

@dataclass
class _Group:
    """Events of one key whose time ranges overlap: the finest unit rows can be matched to."""

    time_min: int
    time_max: int
    step_min: int
    step_max: int
    seqs: list[int]
    count: int = 0
    digests: list[str] = field(default_factory=list)
    stored: list[tuple] = field(default_factory=list)


def _check_metrics(run_id: str, metric_rows: list[tuple], events: list[JournalEvent],
                   report: VerifyReport, keys: Collection[str] | None = None) -> None:
    journaled: dict[str, list[JournalEvent]] = defaultdict(list)
    for event in events:
        for key in event.payload[METRIC_DIGESTS_FIELD]:
            if keys is None or key in keys:
                journaled[key].append(event)
    stored: dict[str, list[tuple]] = defaultdict(list)
    hashes: dict[str, list[int]] = defaultdict(list)
    for row in metric_rows:
        stored[row[0]].append(row)
        hashes[row[0]].append(metric_row_hash(*row))
    for key in sorted({*journaled, *stored}):
        expected = add_digests(event.payload[METRIC_DIGESTS_FIELD][key][1]
                               for event in journaled.get(key, [])) if key in journaled \
            else EMPTY_DIGEST
        if multiset_digest(hashes.get(key, [])) == expected or (
                key in journaled and _unnormalised_digest(stored.get(key, [])) == expected):
            continue
        report.problems += _locate(run_id, key, stored.get(key, []), journaled.get(key, []))


def _unnormalised_digest(rows: list[tuple]) -> str | None:
    """A series' digest as journals written before stored-form hashing computed it (a
    PostgreSQL ``-0.0`` kept its sign, a fractional step or timestamp was cut): asked only
    when the stored form disagrees, so those journals do not turn into false alarms.
    ``None`` where that digest could not read a row (a step sqlite keeps as a BLOB)."""
    try:
        return multiset_digest(unnormalised_metric_row_hash(*row) for row in rows)
    except (TypeError, ValueError):
        return None


def _locate(run_id: str, key: str, rows: list[tuple],
            events: list[JournalEvent]) -> list[Problem]:
    """Name the steps and events behind a key's mismatch: rows are matched, by timestamp, to
    groups of events whose time ranges overlap, and each group is compared on its own."""
    groups: list[_Group] = []
    for event in sorted(events, key=lambda e: e.payload["time_min"]):
        payload = event.payload
        count, digest = payload[METRIC_DIGESTS_FIELD][key]
        if groups and payload["time_min"] <= groups[-1].time_max:
            group = groups[-1]
            group.time_max = max(group.time_max, payload["time_max"])
            group.step_min = min(group.step_min, payload["step_min"])
            group.step_max = max(group.step_max, payload["step_max"])
            group.seqs.append(event.seq)
        else:
            group = _Group(payload["time_min"], payload["time_max"], payload["step_min"],
                           payload["step_max"], [event.seq])
            groups.append(group)
        group.count += count
        group.digests.append(digest)
    starts = [group.time_min for group in groups]
    problems = []
    where = f"run {run_id} metric {key!r}"
    for row in rows:
        index = bisect.bisect_right(starts, row[2]) - 1
        if index >= 0 and row[2] <= groups[index].time_max:
            groups[index].stored.append(row)
        else:
            problems.append(Problem(f"{where} step {row[3]} (timestamp {row[2]})",
                                    f"value {row[1]!r} matches no journaled write (inserted "
                                    "or moved)"))
    for group in groups:
        if multiset_digest(metric_row_hash(*row) for row in group.stored) == \
                add_digests(group.digests):
            continue
        steps = (f"step {group.step_min}" if group.step_min == group.step_max
                 else f"steps {group.step_min}-{group.step_max}")
        seqs = (f"event {group.seqs[0]}" if len(group.seqs) == 1
                else f"events {group.seqs[0]}..{group.seqs[-1]}")
        found = len(group.stored)
        if found < group.count:
            what = f"{group.count - found} of {group.count} journaled rows missing (deleted)"
        elif found > group.count:
            what = f"{found - group.count} rows more than the {group.count} journaled (inserted)"
        else:
            what = f"values differ from the {group.count} journaled rows (edited)"
        problems.append(Problem(f"{where} {steps} ({seqs})", what))
    return problems


def _rounded_keys(events: list[JournalEvent]) -> set[str]:
    """Keys written with a fractional step or timestamp (as far as each event's ranges show):
    MLflow picked their latest row on the fractions, which PostgreSQL and MySQL rounded away."""
    bounds = ("step_min", "step_max", "time_min", "time_max")
    return {key for event in events
            if any(not float(event.payload.get(name, 0)).is_integer() for name in bounds)
            for key in event.payload.get("keys", ())}


def _check_latest_metrics(run_id: str, rows: RunRows, report: VerifyReport,
                          newest_unread: dict[str, list[tuple]],
                          rounded: Collection[str] = ()) -> None:
    """MLflow's ``latest_metrics`` must be, per key, the row with the largest (step,
    timestamp, value) among the metric rows, as MLflow computes it on every write. Rows that
    tie there (a NaN, stored as 0, beside a 0.0 at the same step and time) are all right:
    MLflow keeps whichever came first, and the database returns them in no set order. So is,
    for a ``rounded`` key, any row at the largest step: MLflow compared the fractions the
    database no longer holds. For a series whose rows were not read, ``newest_unread`` has
    its newest rows, looked up by index."""
    newest: dict[str, list[tuple]] = {key: list(found) for key, found in newest_unread.items()}
    for row in rows.metrics:
        best = newest.get(row[0])
        if best is None or _rank(row) > _rank(best[0]):
            newest[row[0]] = [row]
        elif _rank(row) == _rank(best[0]):
            best.append(row)
    for key in set(rounded) & set(newest):
        top = _rank(newest[key][0])[0]
        newest[key] += [row for row in rows.metrics
                        if row[0] == key and stored_integer(row[3]) == top]
    latest = {row[0]: row for row in rows.latest_metrics}
    for key in sorted({*newest, *latest}):
        where = f"run {run_id} latest metric {key!r}"
        if key not in latest:
            report.problems.append(Problem(where, "missing in MLflow's latest_metrics "
                                           "(deleted)"))
        elif key not in newest:
            report.problems.append(Problem(where, "in latest_metrics without any metric row "
                                           "(inserted)"))
        elif _latest_form(latest[key]) not in {_latest_form(row) for row in newest[key]}:
            have, want = latest[key], newest[key][0]
            report.problems.append(Problem(where, f"says {have[1]!r} at step {have[3]}, the "
                                           f"metric rows say {want[1]!r} at step {want[3]} "
                                           "(edited)"))


def _check_summaries(run_id: str, rows: RunRows, marks: dict[str, SeriesMark],
                     report: VerifyReport) -> None:
    """Each series whose rows were read against the summary row exports take its count,
    ranges and min/max from (outdated ones are not used, so not checked): someone who edits a
    summary to change what a document says is found here."""
    read: dict[str, list[tuple]] = defaultdict(list)
    for row in rows.metrics:
        read[row[0]].append(row)
    for key, series in sorted(read.items()):
        mark = marks.get(key)
        if mark is None or mark.changed:
            continue
        numbers = [float(row[1]) for row in series if not row[4]]
        steps = [stored_integer(row[3]) for row in series]
        times = [stored_integer(row[2]) for row in series]
        found = SeriesMark(len(series), min(steps), max(steps), min(times), max(times),
                           min(numbers, default=None), max(numbers, default=None),
                           mark.changed, mark.watched)
        if found != mark:
            differing = [f"{name} {getattr(mark, name)!r} (rows: {getattr(found, name)!r})"
                         for name in SUMMARY_FIELDS if getattr(mark, name) != getattr(found,
                                                                                    name)]
            report.problems.append(Problem(
                f"run {run_id} metric {key!r} summary",
                f"the stored summary says {', '.join(differing)} (edited)"))


def _rank(row: tuple) -> tuple[int, int, float]:
    """How MLflow orders a series' rows for ``latest_metrics``: (step, timestamp, value), in
    the form the database keeps them."""
    _, value, timestamp, step, _ = row
    return stored_integer(step), stored_integer(timestamp), float(value)


def _latest_form(row: tuple) -> tuple:
    key, value, timestamp, step, is_nan = row
    return key, stored_float(value), stored_integer(timestamp), stored_integer(step), \
        bool(is_nan)
