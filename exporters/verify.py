"""``mlflow-prov verify``: check every journal chain and reconcile MLflow's rows with it.

Two questions, answered from the database at its own speed:

1. Is the journal intact? Every chain is rehashed (:func:`mlflow_prov.journal.verify_chain`):
   an edited, deleted, reordered, inserted or moved event, a missing head row or a truncated
   tail breaks a link, a hash or the head.
2. Does MLflow still hold what the journal says it stored? Each chain's payloads are folded
   into the rows MLflow must hold (:mod:`exporters.replay`): a run's row, tags and params,
   an experiment's row and tags; every write that overwrote a value says what it overwrote,
   so a row changed outside MLflow's API is found even after a later write hid it. Metric
   events carry per key a row count and an order-independent multiset digest
   (:mod:`mlflow_prov.digests`): all of a run's metric rows are compared with all of its
   events at once, one query per table per run (:mod:`mlflow_prov.stored_rows`); only on a
   mismatch are rows matched to events to name the key, step and event.

An export's ``journalIntact`` asks the same questions at the cost of the number of series
rather than of points (``every_metric_row=False``): on stores whose database keeps series
summaries (:mod:`mlflow_prov.series_summaries`) a series is rehashed only when its row count
differs from the journal's or an update or delete touched it since it was written; the report
says whether every metric row was rehashed (``metric_rows_rehashed``). Elsewhere every row is
read, as ``verify`` always does.

Every problem is one line naming the chain and event (seq), or the MLflow row (run, key,
step), and what is wrong. What a journal written by an earlier version cannot prove (metric
rows before digests, run columns before whole rows) gets a note, not a failure.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporters.replay import (
    Replayed,
    replay_dataset_inputs,
    replay_experiment,
    replay_logged_model,
    replay_registry,
    replay_run,
)
from mlflow_prov.digests import (
    EMPTY_DIGEST,
    add_digests,
    metric_row_hash,
    multiset_digest,
    stored_float,
    stored_integer,
    unnormalised_metric_row_hash,
)
from mlflow_prov.journal import JournalEvent, chain_heads, read_events, verify_chain
from mlflow_prov.series_summaries import SeriesMark, series_marks
from mlflow_prov.stored_rows import (
    RUN_COLUMNS,
    DatasetInput,
    LoggedModelRows,
    RegistryRows,
    RunRows,
    model_metrics_digest,
    newest_metric_rows,
    open_store,
    read_dataset_inputs,
    read_experiment_rows,
    read_logged_model_rows,
    read_registry_rows,
    read_run_rows,
    read_runs,
)
from mlflow_prov.vocabulary import (
    METRIC_DIGESTS_FIELD,
    MODEL_METRIC_ROWS_FIELD,
    ChainKind,
    EventKind,
    experiment_chain,
    parse_chain,
    run_chain,
)

SHOWN_CHARS = 40
SUMMARY_FIELDS = ("count", "first_step", "last_step", "first_timestamp", "last_timestamp",
                  "min_value", "max_value")
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
        in_scope = _chain_events(tracking_uri, experiment_id, wanted_runs)
        journaled = in_scope.runs
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
            _check_dataset_inputs(run_id, read_dataset_inputs(connection, run_id), events,
                                  report)
        for found_id, events in sorted(in_scope.experiments.items()):
            _reconcile_experiment(found_id, *read_experiment_rows(connection, found_id),
                                  events, report)
        model_metrics = _model_metric_digests(journaled)
        for model_id, events in sorted(in_scope.models.items()):
            _reconcile_logged_model(model_id, read_logged_model_rows(connection, model_id),
                                    events, model_metrics.get(model_id, {}), report)
        if in_scope.registry:
            _reconcile_registry(read_registry_rows(connection), in_scope.registry, report)
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


@dataclass
class _ChainEvents:
    """The events in scope, by the object whose chain holds them."""

    runs: dict[str, list[JournalEvent]] = field(default_factory=lambda: defaultdict(list))
    experiments: dict[str, list[JournalEvent]] = field(
        default_factory=lambda: defaultdict(list))
    models: dict[str, list[JournalEvent]] = field(default_factory=lambda: defaultdict(list))
    registry: list[JournalEvent] = field(default_factory=list)


def _chain_events(tracking_uri: str, experiment_id: str | None,
                  run_ids: list[str]) -> _ChainEvents:
    """Each run's own chain events (not the logged-model events that name it as source) and,
    unless runs were selected, each experiment's and LoggedModel's chain events, and the
    registry's when the whole store is verified."""
    selections: list[dict[str, Any]] = ([{"run_id": run_id} for run_id in run_ids]
                                        or [{"experiment_id": experiment_id}])
    found = _ChainEvents()
    for selection in selections:
        for event in read_events(tracking_uri, **selection):
            try:
                kind, object_id = parse_chain(event.chain)
            except ValueError:  # a chain kind of a newer version: its chain was rehashed
                continue
            if kind == ChainKind.RUN:
                found.runs[object_id].append(event)
            elif run_ids:
                continue
            elif kind == ChainKind.EXPERIMENT and object_id.isdigit():
                found.experiments[object_id].append(event)
            elif kind == ChainKind.LOGGED_MODEL:
                found.models[object_id].append(event)
            elif kind == ChainKind.REGISTERED_MODEL and experiment_id is None:
                found.registry.append(event)
    return found


def _reconcile_experiment(experiment_id: str, row: dict[str, Any] | None, tags: dict[str, str],
                          events: list[JournalEvent], report: VerifyReport) -> None:
    """An experiment's row and tags against its chain's replayed payloads."""
    where = f"experiment {experiment_id}"
    if row is None:
        report.problems.append(Problem(where, "the journal has this experiment but MLflow's "
                                       "experiments table has no row for it (deleted outside "
                                       "MLflow's API)"))
        return
    state = replay_experiment(events)
    _check_fields(f"{where} (MLflow experiments row)", row, state.fields, report)
    _check_pairs(where, "tag", tags, state.tags, report)
    _report_mismatches(where, state, report)


def _check_dataset_inputs(run_id: str, stored: list[DatasetInput], events: list[JournalEvent],
                          report: VerifyReport) -> None:
    """The datasets linked to a run against those its ``log_inputs`` events name."""
    found = {(name, digest, context) for name, digest, _, _, context in stored}
    expected = replay_dataset_inputs(events)
    for name, digest, context in sorted(found - expected, key=str):
        report.problems.append(Problem(f"run {run_id} dataset input {name!r} ({digest})",
                                       f"MLflow links it with context {context!r}, never "
                                       "journaled (inserted or edited)"))
    for name, digest, context in sorted(expected - found, key=str):
        report.problems.append(Problem(f"run {run_id} dataset input {name!r} ({digest})",
                                       f"journaled with context {context!r}, missing in "
                                       "MLflow (deleted or edited)"))


def _model_metric_digests(runs: dict[str, list[JournalEvent]]
                          ) -> dict[str, dict[str, list[str | int]]]:
    """Per LoggedModel and key, the journaled ``[row count, digests...]`` of its metric rows,
    from the run events that logged them."""
    found: dict[str, dict[str, list[str | int]]] = defaultdict(dict)
    for events in runs.values():
        for event in events:
            rows = event.payload.get(MODEL_METRIC_ROWS_FIELD)
            if event.kind != EventKind.LOGGED_MODEL_METRICS_LOGGED or not rows:
                continue
            for model_id, keys in rows.items():
                for key, (count, digest) in keys.items():
                    entry = found[model_id].setdefault(key, [0])
                    entry[0] = int(entry[0]) + count
                    entry.append(digest)
    return found


def _reconcile_logged_model(model_id: str, rows: LoggedModelRows, events: list[JournalEvent],
                            metrics: dict[str, list[str | int]], report: VerifyReport) -> None:
    """A LoggedModel's row, tags, params and metric rows against its replayed chain."""
    where = f"logged model {model_id}"
    if rows.model is None:
        report.problems.append(Problem(where, "the journal has this model but MLflow's "
                                       "logged_models table has no row for it (deleted "
                                       "outside MLflow's API)"))
        return
    state = replay_logged_model(events)
    _check_fields(f"{where} (MLflow logged_models row)", rows.model, state.fields, report)
    _check_pairs(where, "tag", rows.tags, state.tags, report)
    _check_pairs(where, "param", rows.params, state.params, report)
    stored = model_metrics_digest(rows.metrics)
    for key in sorted({*stored, *metrics}):
        journaled = metrics.get(key)
        expected = ([journaled[0], add_digests(str(d) for d in journaled[1:])]
                    if journaled else [0, EMPTY_DIGEST])
        if stored.get(key, [0, EMPTY_DIGEST]) != expected:
            report.problems.append(Problem(
                f"{where} metric {key!r}", f"MLflow holds {stored.get(key, [0])[0]} rows, the "
                f"journal recorded {expected[0]}, or their values differ (edited, inserted or "
                "deleted)"))


def _reconcile_registry(rows: RegistryRows, events: list[JournalEvent],
                        report: VerifyReport) -> None:
    """Registered models, versions, their tags and the aliases against the replayed registry.
    Registered models the journal never saw (made before the store was a prov store) are
    left alone."""
    state = replay_registry(events)
    for name, model in sorted(state.models.items()):
        where = f"registered model {name!r}"
        if name not in rows.models:
            report.problems.append(Problem(where, "journaled, missing in MLflow's "
                                           "registered_models table (deleted outside MLflow's "
                                           "API)"))
            continue
        _check_fields(where, rows.models[name], model, report)
        _check_pairs(where, "tag", rows.model_tags.get(name, {}), state.model_tags.get(name, {}),
                     report)
    for key, version in sorted(state.versions.items()):
        where = f"model version {key[0]!r} {key[1]}"
        if key not in rows.versions:
            report.problems.append(Problem(where, "journaled, missing in MLflow's "
                                           "model_versions table (deleted outside MLflow's "
                                           "API)"))
            continue
        _check_fields(where, rows.versions[key], version, report)
        _check_pairs(where, "tag", rows.version_tags.get(key, {}),
                     state.version_tags.get(key, {}), report)
    for name in sorted({name for name, _ in rows.aliases} & set(state.models)):
        stored = {alias: v for (model, alias), v in rows.aliases.items() if model == name}
        journaled = {alias: v for (model, alias), v in state.aliases.items() if model == name}
        _check_pairs(f"registered model {name!r}", "alias", stored, journaled, report)


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
    state = replay_run(events)
    subject = f"run {run_id}"
    if rows.run is not None:
        _check_fields(f"{subject} (MLflow runs row)", rows.run, _run_fields(state), report)
    _check_pairs(subject, "tag", rows.tags, state.tags, report)
    _check_pairs(subject, "param", rows.params, state.params, report)
    _report_mismatches(subject, state, report)
    if not state.whole_row:
        report.notes.append(f"{subject}: journaled before events recorded whole rows; its "
                            f"columns {', '.join(sorted(set(RUN_COLUMNS) - set(state.fields)))} "
                            "are not proven")
    metric_events = [event for event in events if event.kind == EventKind.RUN_METRICS_LOGGED]
    if any(METRIC_DIGESTS_FIELD not in event.payload for event in metric_events):
        report.notes.append(f"run {run_id}: some metric events predate row digests; its "
                            "metric rows cannot be proven")
    else:
        _check_metrics(run_id, rows.metrics, metric_events, report, keys)
    _check_latest_metrics(run_id, rows, report, newest_unread or {},
                          _rounded_keys(metric_events))


# --- rows, tags, params ------------------------------------------------------------------

def _run_fields(state: Replayed) -> dict[str, Any]:
    """The run columns to compare: all of them for a whole-row journal; for an earlier one,
    those it spelled out (``None`` there means "not said", except for the end time)."""
    if state.whole_row:
        return state.fields
    return {name: value for name, value in state.fields.items()
            if value is not None or name in NULLABLE_RUN_FIELDS}


def _check_fields(where: str, row: dict[str, Any], expected: dict[str, Any],
                  report: VerifyReport) -> None:
    """One problem naming every column whose stored value is not the replayed one."""
    differing = [f"{name} is {_show(row.get(name))}, the journal recorded {_show(value)}"
                 for name, value in expected.items() if _same(row.get(name), value) is False]
    if differing:
        report.problems.append(Problem(where, "; ".join(differing)))


def _same(stored: Any, journaled: Any) -> bool:
    """Equal as the database and JSON each hold it (an integer id, a string id)."""
    if stored is None or journaled is None:
        return stored is None and journaled is None
    return str(stored) == str(journaled)


def _check_pairs(subject: str, noun: str, stored: dict[str, Any], journaled: dict[str, Any],
                 report: VerifyReport) -> None:
    """Tags or params of a run or an experiment (``subject``) against the replayed ones."""
    for key in sorted({*stored, *journaled}):
        if key not in journaled:
            report.problems.append(Problem(f"{subject} {noun} {key!r}", f"MLflow has "
                                           f"{_show(stored[key])}, never journaled (inserted)"))
        elif key not in stored:
            report.problems.append(Problem(f"{subject} {noun} {key!r}", "journaled as "
                                           f"{_show(journaled[key])}, missing in MLflow "
                                           "(deleted)"))
        elif not _same(stored[key], journaled[key]):
            report.problems.append(Problem(f"{subject} {noun} {key!r}", f"MLflow has "
                                           f"{_show(stored[key])}, the journal recorded "
                                           f"{_show(journaled[key])} (edited)"))


def _report_mismatches(subject: str, state: Replayed, report: VerifyReport) -> None:
    """Writes that overwrote a value the journal never had: a row changed outside MLflow's
    API before them, even if that write hid it since."""
    for found in state.mismatches:
        recorded = (f"the journal recorded {_show(found.expected)}" if found.known
                    else "the journal never recorded it")
        report.problems.append(Problem(
            f"{subject} {found.what} (event {found.seq})",
            f"MLflow held {_show(found.found)} before this write; {recorded} (changed outside "
            "MLflow's API)"))


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
