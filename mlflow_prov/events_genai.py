"""What MLflow 3's GenAI writes mean, as journal events: prompts, traces, assessments,
evaluation datasets, scorers and webhooks (issue 19).

Chains (:mod:`mlflow_prov.vocabulary`): ``prompt:<name>`` for a prompt, its versions, tags
and aliases; ``trace:<trace id>`` for a trace's lifecycle, spans, tags, prompt links and
assessments; ``evaluation_dataset:<id>``; ``scorer:<experiment>/<name>``; ``webhook:<id>``.

Old values come from what MLflow itself loaded in the write's session, never from a query of
our own: :func:`note_flush` keeps, at each flush, the earlier values of the rows MLflow changed
(attribute history: ``session.merge`` of an alias or a tag) and the rows it deleted;
:func:`note_bulk_write` keeps, before a bulk ``UPDATE``/``DELETE``, the loaded rows it is about
to change (``update_assessment`` loads the assessment, then updates it in bulk). When MLflow
loaded nothing, the old value is ``None`` ("not known here"); the chain's earlier event
still has it.

Spans are high-volume, so a trace's spans are one event per ``log_spans`` call and trace:
their count and a multiset digest of their rows (:func:`span_row_hash`), never one per span.
Text users write (tag values, rationales, templates) is redacted like params
(:func:`mlflow_prov.vocabulary.redact_text`) and cut to MLflow's tag limit; templates and
serialized scorers are recorded by SHA-256 and length; a webhook's secret only as present or not.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import multiset_digest, row_hash, text_sha256
from mlflow_prov.events import (
    TAG_LIMIT,
    Described,
    Hook,
    WriteContext,
    model_version_created,
    registered_model_created,
)
from mlflow_prov.events_generic import OuterHook, plain
from mlflow_prov.vocabulary import (
    EventKind,
    dataset_chain,
    gateway_chain,
    prompt_chain,
    redact_text,
    scorer_chain,
    trace_chain,
    webhook_chain,
    without_userinfo,
)

OLD_VALUES = "mlflow_prov.old_values"  # session.info: (class, identity) -> {column: old value}
DELETED_ROWS = "mlflow_prov.deleted_rows"  # session.info: [(class, {column: value})]
FLUSH_NOTES = (OLD_VALUES, DELETED_ROWS)
# The rows whose earlier values a describer here reads: only these are noted, so a metric
# batch's thousand latest-metric updates cost nothing extra.
NOTED_ROWS = frozenset({"SqlRegisteredModelTag", "SqlModelVersionTag", "SqlRegisteredModelAlias",
                        "SqlTraceTag", "SqlAssessments", "SqlWebhook"})
PROMPT_TEXT_TAG = "mlflow.prompt.text"  # where MLflow keeps a prompt version's template
IS_PROMPT_TAG = "mlflow.prompt.is_prompt"  # marks a registered model (or version) as a prompt
PROMPT_TAG_PREFIX = "mlflow.prompt."  # MLflow's own bookkeeping tags of a prompt version


# --- what MLflow loaded before it wrote (see the module docstring) ----------------------------

def _columns(obj: Any) -> dict[str, Any]:
    """A mapped object's loaded column values (no lazy load: nothing is queried)."""
    state = sa.inspect(obj)
    return {attr.key: state.dict[attr.key] for attr in state.mapper.column_attrs
            if attr.key in state.dict}


def _key(obj: Any) -> tuple[str, tuple[Any, ...]]:
    return type(obj).__name__, tuple(sa.inspect(obj).identity or ())


def note_flush(session: Any) -> None:
    """At ``after_flush`` (history still holds the earlier values): the old column values of
    every changed row, and every deleted row."""
    old = session.info.setdefault(OLD_VALUES, {})
    for obj in session.dirty:
        if type(obj).__name__ not in NOTED_ROWS:
            continue
        state = sa.inspect(obj)
        changes = {attr.key: attr.history.deleted[0] for attr in state.attrs
                   if attr.key in state.mapper.column_attrs and attr.history.deleted}
        if changes:
            old.setdefault(_key(obj), {}).update(changes)
    deleted = session.info.setdefault(DELETED_ROWS, [])
    deleted.extend((type(obj).__name__, _columns(obj)) for obj in session.deleted
                   if type(obj).__name__ in NOTED_ROWS)


def note_bulk_write(orm_execute_state: Any) -> None:
    """Before a bulk ``UPDATE``/``DELETE``: the rows of its table MLflow already loaded."""
    if not (orm_execute_state.is_update or orm_execute_state.is_delete):
        return
    mapper = orm_execute_state.bind_mapper
    if mapper is None or mapper.class_.__name__ not in NOTED_ROWS:
        return
    session = orm_execute_state.session
    old = session.info.setdefault(OLD_VALUES, {})
    for obj in list(session.identity_map.values()):
        if isinstance(obj, mapper.class_):
            old.setdefault(_key(obj), _columns(obj))
    if orm_execute_state.is_delete:
        deleted = session.info.setdefault(DELETED_ROWS, [])
        deleted.extend((type(obj).__name__, _columns(obj))
                       for obj in list(session.identity_map.values())
                       if isinstance(obj, mapper.class_))


def old_row(ctx: WriteContext, class_name: str, **match: Any) -> dict[str, Any] | None:
    """The earlier column values of the ``class_name`` row whose columns equal ``match``:
    changed rows first (their earlier values over the loaded ones), then deleted rows."""
    for obj in ctx.changed_objects:
        if type(obj).__name__ == class_name and _matches(_columns(obj), match):
            earlier = ctx.session.info.get(OLD_VALUES, {}).get(_key(obj), {})
            return {**_columns(obj), **earlier}
    for (name, _identity), columns in ctx.session.info.get(OLD_VALUES, {}).items():
        if name == class_name and _matches(columns, match):
            return columns
    return deleted_row(ctx, class_name, **match)


def deleted_row(ctx: WriteContext, class_name: str, **match: Any) -> dict[str, Any] | None:
    for name, columns in ctx.session.info.get(DELETED_ROWS, []):
        if name == class_name and _matches(columns, match):
            return columns
    return None


def _matches(columns: dict[str, Any], match: dict[str, Any]) -> bool:
    return all(str(columns.get(k)) == str(v) for k, v in match.items())


def _created(ctx: WriteContext, class_name: str) -> list[Any]:
    return [o for o in ctx.new_objects if type(o).__name__ == class_name]


def shown(value: Any) -> Any:
    """A user's value as the journal keeps it: text redacted and cut to MLflow's tag limit,
    anything else as redacted JSON-ready data."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)[:TAG_LIMIT]
    return plain(value)


def _shown_dict(values: dict[str, Any] | None) -> dict[str, Any]:
    return {str(k): shown(v) for k, v in (values or {}).items()}


def _text_digest(text: Any) -> dict[str, Any] | None:
    """A long text (a template, a serialized scorer) as its length and SHA-256."""
    if text is None:
        return None
    content = text if isinstance(text, str) else json.dumps(plain(text), sort_keys=True)
    return {"length": len(content), "sha256": text_sha256(content)}


# --- prompts (registry store) -----------------------------------------------------------------

def _prompt_event(name: str, kind: str, payload: dict[str, Any]) -> Described:
    return Described(prompt_chain(name), kind, {"name": name, **payload})


def prompt_created(ctx: WriteContext, name: str, description: str | None = None,
                   tags: dict[str, str] | None = None) -> Described:
    return _prompt_event(name, EventKind.PROMPT_CREATED,
                         {"description": shown(description), "tags": _shown_dict(tags)})


def _is_prompt(tags: Iterable[Any] | None) -> bool:
    return any(t.key == IS_PROMPT_TAG and str(t.value).lower() == "true" for t in tags or ())


def prompt_or_model_created(ctx: WriteContext, name: str, tags: list[Any] | None = None,
                            description: str | None = None,
                            deployment_job_id: str | None = None) -> Described:
    """``create_registered_model``: MLflow registers a prompt as a registered model tagged
    ``mlflow.prompt.is_prompt`` (``mlflow.genai.register_prompt``); that one is a prompt."""
    if not _is_prompt(tags):
        return registered_model_created(ctx, name, tags, description, deployment_job_id)
    return prompt_created(ctx, name, description,
                          {t.key: t.value for t in tags or () if t.key != IS_PROMPT_TAG})


def prompt_or_model_version_created(ctx: WriteContext, name: str, source: str,
                                    run_id: str | None = None, tags: list[Any] | None = None,
                                    run_link: str | None = None,
                                    description: str | None = None,
                                    local_model_path: str | None = None,
                                    model_id: str | None = None) -> Described:
    """``create_model_version`` of a prompt: a prompt version, its template by digest."""
    if not _is_prompt(tags):
        return model_version_created(ctx, name, source, run_id, tags, run_link, description,
                                     local_model_path, model_id)
    values = {t.key: t.value for t in tags or ()}
    return prompt_version_created(
        ctx, name, values.get(PROMPT_TEXT_TAG), description,
        {k: v for k, v in values.items() if not k.startswith(PROMPT_TAG_PREFIX)})


def prompt_deleted(ctx: WriteContext, name: str) -> Described:
    return _prompt_event(name, EventKind.PROMPT_DELETED, {})


def prompt_tag_set(ctx: WriteContext, name: str, key: str, value: str) -> Described:
    old = old_row(ctx, "SqlRegisteredModelTag", name=name, key=key)
    return _prompt_event(name, EventKind.PROMPT_TAG_SET, {
        "key": key, "value": shown(value), "old_value": shown((old or {}).get("value"))})


def prompt_tag_deleted(ctx: WriteContext, name: str, key: str) -> Described:
    old = deleted_row(ctx, "SqlRegisteredModelTag", name=name, key=key)
    return _prompt_event(name, EventKind.PROMPT_TAG_DELETED,
                         {"key": key, "old_value": shown((old or {}).get("value"))})


def prompt_version_created(ctx: WriteContext, name: str, template: Any,
                           description: str | None = None, tags: dict[str, str] | None = None,
                           response_format: Any = None, model_config: Any = None) -> Described:
    versions = _created(ctx, "SqlModelVersion")
    number = versions[0].version if versions else None
    return _prompt_event(name, EventKind.PROMPT_VERSION_CREATED, {
        "version": None if number is None else int(number), "template": _text_digest(template),
        "description": shown(description), "tags": _shown_dict(tags),
        "model_config": shown(model_config),
        "response_format": _text_digest(response_format)})


def prompt_version_deleted(ctx: WriteContext, name: str, version: str | int) -> Described:
    return _prompt_event(name, EventKind.PROMPT_VERSION_DELETED, {"version": int(version)})


def prompt_version_tag_set(ctx: WriteContext, name: str, version: str | int, key: str,
                           value: str) -> Described:
    old = old_row(ctx, "SqlModelVersionTag", name=name, version=version, key=key)
    return _prompt_event(name, EventKind.PROMPT_VERSION_TAG_SET, {
        "version": int(version), "key": key, "value": shown(value),
        "old_value": shown((old or {}).get("value"))})


def prompt_version_tag_deleted(ctx: WriteContext, name: str, version: str | int,
                               key: str) -> Described:
    old = deleted_row(ctx, "SqlModelVersionTag", name=name, version=version, key=key)
    return _prompt_event(name, EventKind.PROMPT_VERSION_TAG_DELETED, {
        "version": int(version), "key": key, "old_value": shown((old or {}).get("value"))})


def prompt_alias_set(ctx: WriteContext, name: str, alias: str, version: str | int) -> Described:
    old = old_row(ctx, "SqlRegisteredModelAlias", name=name, alias=alias)
    old_version = (old or {}).get("version")
    return _prompt_event(name, EventKind.PROMPT_ALIAS_SET, {
        "alias": alias, "version": int(version),
        "old_version": None if old_version is None else int(old_version)})


def prompt_alias_deleted(ctx: WriteContext, name: str, alias: str) -> Described:
    old = deleted_row(ctx, "SqlRegisteredModelAlias", name=name, alias=alias)
    old_version = (old or {}).get("version")
    return _prompt_event(name, EventKind.PROMPT_ALIAS_DELETED, {
        "alias": alias, "old_version": None if old_version is None else int(old_version)})


# --- webhooks (registry store) ----------------------------------------------------------------

def _webhook_url(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(without_userinfo(url))
    return {"origin": f"{parts.scheme}://{parts.hostname or ''}"
                      + (f":{parts.port}" if parts.port else ""),
            "sha256": hashlib.sha256(url.encode("utf-8")).hexdigest()}


def _webhook_fields(url: str | None, events: Any, status: Any) -> dict[str, Any]:
    """A webhook's URL as its scheme and host with the SHA-256 of the whole URL: the path of
    a Slack or Discord hook (``/services/T../B../XXXX``) is itself the credential."""
    return {"url": None if url is None else _webhook_url(url),
            "events": None if events is None else sorted(str(plain(e)) for e in events),
            "status": None if status is None else str(plain(status))}


def webhook_created(ctx: WriteContext, name: str, url: str, events: Any,
                    description: str | None = None, secret: str | None = None,
                    status: Any = None) -> Described | None:
    created = _created(ctx, "SqlWebhook")
    if not created:
        return None
    webhook_id = created[0].webhook_id
    return Described(webhook_chain(webhook_id), EventKind.WEBHOOK_CREATED, {
        "webhook_id": webhook_id, "name": shown(name), "description": shown(description),
        "has_secret": bool(secret), **_webhook_fields(url, events, status)})


def webhook_updated(ctx: WriteContext, webhook_id: str, name: str | None = None,
                    description: str | None = None, url: str | None = None,
                    events: Any = None, secret: str | None = None,
                    status: Any = None) -> Described:
    old = old_row(ctx, "SqlWebhook", webhook_id=webhook_id) or {}
    return Described(webhook_chain(webhook_id), EventKind.WEBHOOK_UPDATED, {
        "webhook_id": webhook_id, "name": shown(name), "description": shown(description),
        "secret_changed": secret is not None, **_webhook_fields(url, events, status),
        "old": {"name": shown(old.get("name")),
                "url": None if old.get("url") is None else _webhook_url(old["url"]),
                "status": None if old.get("status") is None else str(old["status"])}})


def webhook_deleted(ctx: WriteContext, webhook_id: str) -> Described:
    return Described(webhook_chain(webhook_id), EventKind.WEBHOOK_DELETED,
                     {"webhook_id": webhook_id})


# --- traces (tracking store) ------------------------------------------------------------------

def _trace_event(trace_id: str, kind: str, payload: dict[str, Any],
                 experiment_id: Any = None) -> Described:
    return Described(trace_chain(trace_id), kind, {"trace_id": trace_id, **payload},
                     None if experiment_id is None else str(experiment_id))


_TRACE_EXPERIMENTS: dict[str, str] = {}  # trace id -> experiment id (traces never move)
_TRACE_CACHE_SIZE = 4096
_TRACE_EXPERIMENT = sa.text("SELECT experiment_id FROM trace_info WHERE request_id = :trace_id")


def _remember_experiment(trace_id: str, experiment_id: Any) -> None:
    if experiment_id is None:
        return
    if len(_TRACE_EXPERIMENTS) >= _TRACE_CACHE_SIZE:
        _TRACE_EXPERIMENTS.clear()
    _TRACE_EXPERIMENTS[trace_id] = str(experiment_id)


def _loaded_experiment(ctx: WriteContext, trace_id: str) -> Any:
    """The trace's experiment id, so the event is found with its experiment: from the trace
    row MLflow loaded in this session, else from a trace this process wrote, else (once per
    trace) from its row, as ``experiment_of_run`` does for runs."""
    for obj in list(ctx.session.identity_map.values()):
        if type(obj).__name__ == "SqlTraceInfo" and obj.request_id == trace_id:
            return obj.experiment_id
    if trace_id not in _TRACE_EXPERIMENTS:
        _remember_experiment(trace_id, ctx.session.execute(
            _TRACE_EXPERIMENT, {"trace_id": trace_id}).scalar())
    return _TRACE_EXPERIMENTS.get(trace_id)


def trace_started(ctx: WriteContext, trace_info: Any) -> Described:
    """``start_trace``: MLflow writes a trace's info when it ends (after its spans)."""
    trace_id = trace_info.trace_id
    _remember_experiment(trace_id, trace_info.experiment_id)
    return _trace_event(trace_id, EventKind.TRACE_STARTED, {
        "state": str(plain(trace_info.state)), "request_time": trace_info.request_time,
        "execution_duration": trace_info.execution_duration,
        "tags": _shown_dict(trace_info.tags),
        "metadata": _shown_dict(dict(trace_info.trace_metadata or {})),
        "assessments": len(trace_info.assessments or ())}, trace_info.experiment_id)


def span_row_hash(trace_id: str, span_id: str, parent_span_id: str | None, name: str | None,
                  start_ns: int | None, end_ns: int | None) -> int:
    """One span row: the columns verify can read back as they were written."""
    return row_hash(trace_id, span_id, parent_span_id, name, start_ns, end_ns)


def spans_logged(ctx: WriteContext, location: str, spans: list[Any],
                 tracking_uri: Any = None) -> list[Described]:
    """One event per trace the call wrote spans of: their count and rows' digest."""
    by_trace: dict[str, list[Any]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    events = []
    for trace_id, trace_spans in sorted(by_trace.items()):
        _remember_experiment(trace_id, location)
        digest = multiset_digest(span_row_hash(
            trace_id, s.span_id, s.parent_id, s.name, s.start_time_ns, s.end_time_ns)
            for s in trace_spans)
        events.append(_trace_event(trace_id, EventKind.TRACE_SPANS_LOGGED, {
            "count": len(trace_spans), "digest": digest,
            "span_ids": sorted(s.span_id for s in trace_spans if s.parent_id is None)},
            location))
    return events


def trace_tag_set(ctx: WriteContext, trace_id: str, key: str, value: str) -> Described:
    old = old_row(ctx, "SqlTraceTag", request_id=trace_id, key=key)
    return _trace_event(trace_id, EventKind.TRACE_TAG_SET, {
        "key": key, "value": shown(value), "old_value": shown((old or {}).get("value"))},
        _loaded_experiment(ctx, trace_id))


def trace_tag_deleted(ctx: WriteContext, trace_id: str, key: str) -> Described:
    old = deleted_row(ctx, "SqlTraceTag", request_id=trace_id, key=key)
    return _trace_event(trace_id, EventKind.TRACE_TAG_DELETED,
                        {"key": key, "old_value": shown((old or {}).get("value"))},
                        _loaded_experiment(ctx, trace_id))


def traces_deleted(ctx: WriteContext, experiment_id: str, max_timestamp_millis: int | None = None,
                   max_traces: int | None = None,
                   trace_ids: list[str] | None = None) -> list[Described]:
    """Named traces get an event each; a deletion by age or count one event on the
    experiment's ``trace:experiment/<id>`` chain, with its criteria."""
    if trace_ids:
        return [_trace_event(trace_id, EventKind.TRACE_DELETED, {}, experiment_id)
                for trace_id in sorted(trace_ids)]
    return [Described(trace_chain(f"experiment/{experiment_id}"), EventKind.TRACE_DELETED, {
        "max_timestamp_millis": max_timestamp_millis, "max_traces": max_traces},
        str(experiment_id))]


def prompts_linked_to_trace(ctx: WriteContext, trace_id: str,
                            prompt_versions: list[Any]) -> Described:
    return _trace_event(trace_id, EventKind.TRACE_PROMPTS_LINKED, {"prompts": sorted(
        ({"name": p.name, "version": int(p.version)} for p in prompt_versions),
        key=lambda p: (p["name"], p["version"]))}, _loaded_experiment(ctx, trace_id))


# --- assessments (tracking store) -------------------------------------------------------------

def stored_assessment(columns: dict[str, Any] | None) -> dict[str, Any] | None:
    """An assessment row as the journal shows it (value and rationale redacted)."""
    if columns is None:
        return None
    value = columns.get("value")
    try:
        value = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        pass
    return {"name": columns.get("name"), "value": shown(value),
            "rationale": shown(columns.get("rationale")), "valid": columns.get("valid"),
            "source_type": columns.get("source_type"), "source_id": shown(columns.get("source_id"))}


def assessment_created(ctx: WriteContext, assessment: Any) -> Described | None:
    rows = _created(ctx, "SqlAssessments")
    if not rows:
        return None
    row = rows[0]
    overridden = old_row(ctx, "SqlAssessments", assessment_id=row.overrides) \
        if row.overrides else None
    return _trace_event(row.trace_id, EventKind.ASSESSMENT_CREATED, {
        "assessment_id": row.assessment_id, "assessment_type": row.assessment_type,
        **(stored_assessment(_columns(row)) or {}), "run_id": row.run_id,
        "span_id": row.span_id, "overrides": row.overrides,
        "overridden": stored_assessment(overridden)}, row.experiment_id)


def assessment_updated(ctx: WriteContext, trace_id: str, assessment_id: str,
                       name: str | None = None, expectation: Any = None, feedback: Any = None,
                       rationale: str | None = None,
                       metadata: dict[str, str] | None = None) -> Described:
    old = old_row(ctx, "SqlAssessments", assessment_id=assessment_id)
    new_value = (feedback.value if feedback is not None
                 else expectation.value if expectation is not None else None)
    return _trace_event(trace_id, EventKind.ASSESSMENT_UPDATED, {
        "assessment_id": assessment_id, "old": stored_assessment(old),
        "new": {"name": name, "value": shown(new_value), "rationale": shown(rationale),
                "metadata": _shown_dict(metadata)}},
        (old or {}).get("experiment_id") or _loaded_experiment(ctx, trace_id))


def assessment_deleted(ctx: WriteContext, trace_id: str, assessment_id: str) -> Described:
    old = deleted_row(ctx, "SqlAssessments", assessment_id=assessment_id)
    return _trace_event(trace_id, EventKind.ASSESSMENT_DELETED, {
        "assessment_id": assessment_id, "old": stored_assessment(old)},
        (old or {}).get("experiment_id") or _loaded_experiment(ctx, trace_id))


# --- evaluation datasets (tracking store) -----------------------------------------------------

def record_row_hash(record_id: str, input_hash: str | None, expectations: Any) -> int:
    """One evaluation-dataset record row: its id, inputs' hash and expectations."""
    return row_hash(record_id, input_hash, json.dumps(expectations, sort_keys=True,
                                                      default=str))


def _record_hashes(rows: Iterable[Any]) -> list[int]:
    return [record_row_hash(r.dataset_record_id, r.input_hash, r.expectations) for r in rows]


def dataset_created(ctx: WriteContext, name: str, tags: dict[str, str] | None = None,
                    experiment_ids: list[str] | None = None) -> Described | None:
    rows = _created(ctx, "SqlEvaluationDataset")
    if not rows:
        return None
    dataset_id = rows[0].dataset_id
    return Described(dataset_chain(dataset_id), EventKind.DATASET_CREATED, {
        "dataset_id": dataset_id, "name": shown(name), "tags": _shown_dict(tags),
        "experiment_ids": sorted(str(e) for e in experiment_ids or ())})


def _dataset_event(dataset_id: str, kind: str, payload: dict[str, Any]) -> Described:
    return Described(dataset_chain(dataset_id), kind, {"dataset_id": dataset_id, **payload})


def dataset_records_upserted(ctx: WriteContext, dataset_id: str,
                             records: list[dict[str, Any]]) -> Described:
    """Counts and the multiset digest of the record rows written (inserted or updated), like
    metrics: the rows themselves stay in MLflow."""
    inserted = _created(ctx, "SqlEvaluationDatasetRecord")
    updated = [r for r in ctx.changed_objects
               if type(r).__name__ == "SqlEvaluationDatasetRecord" and r not in inserted]
    return _dataset_event(dataset_id, EventKind.DATASET_RECORDS_UPSERTED, {
        "count": len(records), "inserted": len(inserted), "updated": len(updated),
        "record_ids": sorted(r.dataset_record_id for r in (*inserted, *updated)),
        "digest": multiset_digest(_record_hashes((*inserted, *updated)))})


def dataset_records_deleted(ctx: WriteContext, dataset_id: str,
                            dataset_record_ids: list[str]) -> Described:
    return _dataset_event(dataset_id, EventKind.DATASET_RECORDS_DELETED,
                          {"record_ids": sorted(dataset_record_ids)})


def dataset_tags_set(ctx: WriteContext, dataset_id: str, tags: dict[str, Any]) -> Described:
    return _dataset_event(dataset_id, EventKind.DATASET_TAGS_SET, {"tags": _shown_dict(tags)})


def dataset_tag_deleted(ctx: WriteContext, dataset_id: str, key: str) -> Described:
    return _dataset_event(dataset_id, EventKind.DATASET_TAG_DELETED, {"key": key})


def dataset_deleted(ctx: WriteContext, dataset_id: str) -> Described:
    return _dataset_event(dataset_id, EventKind.DATASET_DELETED, {})


def dataset_experiments_added(ctx: WriteContext, dataset_id: str,
                              experiment_ids: list[str]) -> Described:
    return _dataset_event(dataset_id, EventKind.DATASET_EXPERIMENTS_CHANGED,
                          {"added": sorted(str(e) for e in experiment_ids)})


def dataset_experiments_removed(ctx: WriteContext, dataset_id: str,
                                experiment_ids: list[str]) -> Described:
    return _dataset_event(dataset_id, EventKind.DATASET_EXPERIMENTS_CHANGED,
                          {"removed": sorted(str(e) for e in experiment_ids)})


# --- scorers (tracking store) -----------------------------------------------------------------

def scorer_registered(ctx: WriteContext, experiment_id: str, name: str,
                      serialized_scorer: str) -> Described:
    versions = _created(ctx, "SqlScorerVersion")
    return Described(scorer_chain(str(experiment_id), name), EventKind.SCORER_REGISTERED, {
        "name": name, "version": versions[0].scorer_version if versions else None,
        "serialized": _text_digest(serialized_scorer)}, str(experiment_id))


def scorer_deleted(ctx: WriteContext, experiment_id: str, name: str,
                   version: int | None = None) -> Described:
    return Described(scorer_chain(str(experiment_id), name), EventKind.SCORER_DELETED,
                     {"name": name, "version": version}, str(experiment_id))


# --- the AI gateway's secrets (tracking store) ------------------------------------------------

def gateway_secret_created(ctx: WriteContext, secret_name: str, secret_value: dict[str, str],
                           provider: str | None = None,
                           auth_config: dict[str, Any] | None = None,
                           created_by: str | None = None) -> Described | None:
    """Which secret was stored, for which provider, under which keys: never a value (the
    auth config goes through the same redaction as params)."""
    rows = _created(ctx, "SqlGatewaySecret")
    if not rows:
        return None
    return _secret_event(rows[0].secret_id, {
        "secret_name": redact_text(secret_name), "provider": provider,
        "value_keys": sorted(secret_value or ()), "auth_config": plain(auth_config),
        "created_by": shown(created_by)})


def gateway_secret_updated(ctx: WriteContext, secret_id: str,
                           secret_value: dict[str, str] | None = None,
                           auth_config: dict[str, Any] | None = None,
                           updated_by: str | None = None) -> Described:
    return _secret_event(secret_id, {
        "value_keys": None if secret_value is None else sorted(secret_value),
        "auth_config": plain(auth_config), "updated_by": shown(updated_by)})


def _secret_event(secret_id: str, payload: dict[str, Any]) -> Described:
    return Described(gateway_chain(f"secret/{secret_id}"), EventKind.GATEWAY_SECRET_WRITTEN,
                     {"secret_id": secret_id, **payload})


GENAI_TRACKING_HOOKS: dict[str, Hook] = {
    "start_trace": Hook(trace_started),
    "log_spans": Hook(spans_logged),
    "set_trace_tag": Hook(trace_tag_set),
    "delete_trace_tag": Hook(trace_tag_deleted),
    "delete_traces": Hook(traces_deleted),
    "link_prompts_to_trace": Hook(prompts_linked_to_trace),
    "create_assessment": Hook(assessment_created),
    "update_assessment": Hook(assessment_updated),
    "delete_assessment": Hook(assessment_deleted),
    "create_dataset": Hook(dataset_created),
    "upsert_dataset_records": Hook(dataset_records_upserted),
    "delete_dataset_records": Hook(dataset_records_deleted),
    "set_dataset_tags": Hook(dataset_tags_set),
    "delete_dataset_tag": Hook(dataset_tag_deleted),
    "delete_dataset": Hook(dataset_deleted),
    "add_dataset_to_experiments": Hook(dataset_experiments_added),
    "remove_dataset_from_experiments": Hook(dataset_experiments_removed),
    "register_scorer": Hook(scorer_registered),
    "delete_scorer": Hook(scorer_deleted),
    "create_gateway_secret": Hook(gateway_secret_created),
    "update_gateway_secret": Hook(gateway_secret_updated),
}

# MLflow implements prompts with registered-model writes: the prompt call's describer speaks
# for them (OuterHook), so a prompt's history is on its own chain, in its own words.
GENAI_REGISTRY_HOOKS: dict[str, Hook] = {
    "create_prompt": OuterHook(prompt_created),
    "delete_prompt": OuterHook(prompt_deleted),
    "set_prompt_tag": OuterHook(prompt_tag_set),
    "delete_prompt_tag": OuterHook(prompt_tag_deleted),
    "create_prompt_version": OuterHook(prompt_version_created),
    "delete_prompt_version": OuterHook(prompt_version_deleted),
    "set_prompt_version_tag": OuterHook(prompt_version_tag_set),
    "delete_prompt_version_tag": OuterHook(prompt_version_tag_deleted),
    "set_prompt_alias": OuterHook(prompt_alias_set),
    "delete_prompt_alias": OuterHook(prompt_alias_deleted),
    "create_webhook": Hook(webhook_created),
    "update_webhook": Hook(webhook_updated),
    "delete_webhook": Hook(webhook_deleted),
    "create_registered_model": Hook(prompt_or_model_created),
    "create_model_version": Hook(prompt_or_model_version_created),
}
