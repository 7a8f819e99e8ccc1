"""Records -> W3C PROV: one small function per sub-model, combined in :data:`MODELS` order.

Identifiers live in the ``mlflow`` namespace (``urn:mlflow:``) and are derived from MLflow
ids only (run id, model id, dataset digest, artifact path), so a run's statements are the
same in its own ``prov.json`` and inside ``experiment.prov.json``, and another run's document
can point at them (lineage across runs). User strings in ids are percent-encoded, which keeps
them valid PROV-N qualified names; the readable text is in ``prov:label`` and attributes.
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from urllib.parse import quote

from prov.model import (
    PROV,
    Literal,
    Namespace,
    ProvBundle,
    ProvDocument,
    ProvRecord,
    QualifiedName,
)

from exporters.lineage.keys import ARTIFACT, NodeKey, model_key
from exporters.lineage.prov import ExportLineage
from exporters.prov_genai import add_genai
from exporters.records import (
    ArtifactRecord,
    DatasetRecord,
    ExperimentRecord,
    HistoryEvent,
    LoggedModelRecord,
    MetricSummary,
    RunRecord,
)
from exporters.sanitize import TEXT_NOTE, ClampedTime, time_note, xml_safe_text, xml_unsafe
from exporters.versions import package_version
from mlflow_prov.vocabulary import (
    JOURNAL_HEAD_ATTRIBUTE,
    EventKind,
    RunTagDeleted,
    RunTagsSet,
    RunUpdated,
)

MLFLOW = Namespace("mlflow", "urn:mlflow:")
MLFLOWPROV = Namespace("mlflowprov", "https://w3id.org/mlflow-prov/ns#")
PROVML = Namespace("provml", "https://w3id.org/provml/ns#")
DCTERMS = Namespace("dcterms", "http://purl.org/dc/terms/")
NAMESPACES = (MLFLOW, MLFLOWPROV, PROVML, DCTERMS)

NON_FINITE = MLFLOWPROV["nonFiniteDouble"]
HISTORY_UNAVAILABLE = ("history unavailable: this tracking store has no mlflow-prov journal, "
                       "so earlier tag values, status changes and deletion times are unknown")


def qid(*parts: str) -> QualifiedName:
    """A ``mlflow:`` id from dot-joined parts, each percent-encoded (``/``, spaces, unicode)."""
    return MLFLOW[".".join(quote(str(p), safe="-_") for p in parts)]


def number(value: float | int) -> float | int | Literal:
    """A number for PROV; NaN and +/-inf become ``"NaN"``/``"INF"``/``"-INF"`` literals of
    type ``mlflowprov:nonFiniteDouble`` (JSON has no NaN, and a ``xsd:double`` NaN would
    not compare equal to itself after a round trip)."""
    if isinstance(value, float) and not math.isfinite(value):
        lexical = "NaN" if math.isnan(value) else ("INF" if value > 0 else "-INF")
        return Literal(lexical, NON_FINITE)
    return value


def _attrs(pairs: Iterable[tuple[QualifiedName, object]]) -> list[tuple[QualifiedName, object]]:
    """Attribute list without ``None`` values (PROV has no null)."""
    return [(k, v) for k, v in pairs if v is not None and v != ""]




# --- ids shared across documents ----------------------------------------------------------

def run_id_of(run_id: str) -> QualifiedName:
    return qid("run", run_id)


def bundle_id_of(run_id: str) -> QualifiedName:
    return qid("bundle", run_id)


def artifact_id_of(run_id: str, path: str) -> QualifiedName:
    return qid("run", run_id, "artifact", path)


def model_id_of(model_id: str) -> QualifiedName:
    return qid("model", model_id)


def experiment_id_of(experiment_id: str) -> QualifiedName:
    return qid("experiment", experiment_id)


def user_id_of(user: str) -> QualifiedName:
    return qid("user", user)


# --- lineage (exporters.lineage.prov) ------------------------------------------------------

def entity_of(key: NodeKey) -> QualifiedName:
    """The PROV id of a lineage node another run generated (an artifact or a logged model)."""
    if key.kind == ARTIFACT:
        return artifact_id_of(key.run_id or "", key.path or "")
    return model_id_of(key.ref)


# --- the builder --------------------------------------------------------------------------

@dataclass(frozen=True)
class RunScope:
    """What every sub-model function of one run needs: read-only, so that no sub-model
    depends on another having run first (each derives what it needs, e.g. the run's upstream
    entities, from ``run`` and ``index``) and :data:`MODELS` can be reordered freely."""

    bundle: ProvBundle
    run: RunRecord
    experiment: ExperimentRecord
    index: ExportLineage


def dataset_origin(dataset: DatasetRecord, run: RunRecord,
                   index: ExportLineage) -> QualifiedName | None:
    """The entity another run generated that this dataset is (by URI or digest), if any."""
    origin = index.origin_of(dataset)
    if origin is not None and index.producer_of(origin) != run.run_id:
        return entity_of(origin)
    return None


def upstream_of(run: RunRecord, index: ExportLineage) -> list[tuple[QualifiedName, str | None]]:
    """What the run used that another run generated (dataset origins, then input models),
    each with the run that generated it."""
    origins = [index.origin_of(dataset) for dataset in run.datasets]
    origins += [model_key(model_id) for model_id in run.input_model_ids]
    upstream = [(entity_of(key), index.producer_of(key)) for key in origins
                if key is not None and index.producer_of(key) != run.run_id]
    return list(dict.fromkeys(upstream))


def add_run_activity(scope: RunScope) -> None:
    """The run as an activity with times, status and MLflow ids."""
    run = scope.run
    scope.bundle.activity(run_id_of(run.run_id), run.start_time, run.end_time, _attrs([
        (PROV["type"], MLFLOWPROV["Run"]),
        (PROV["label"], run.name),
        (MLFLOWPROV["runId"], run.run_id),
        (MLFLOWPROV["status"], run.status),
        (MLFLOWPROV["lifecycleStage"], run.lifecycle_stage),
        (MLFLOWPROV["artifactUri"], run.artifact_uri),
        (MLFLOWPROV["historyAvailable"], scope.experiment.history_available),
        (MLFLOWPROV["journalIntact"], run.journal_intact),
        (MLFLOWPROV["metricRowsRehashed"], run.metric_rows_rehashed),
        (MLFLOWPROV[JOURNAL_HEAD_ATTRIBUTE], run.journal_head),
        (MLFLOWPROV["artifactsVerified"], run.artifacts_verified),
    ]))


WRITER_FIELDS = ("user", "host", "pid", "rank", "local_rank", "slurm_procid", "client_address")


def add_writers(scope: RunScope) -> None:
    """The processes that wrote the run, from the journal: one agent per distinct writer
    (user, host, pid, rank; behind a server the client address), associated with the run,
    so the ranks of a distributed job or the clients of a server are told apart."""
    run_activity = run_id_of(scope.run.run_id)
    for identity, (agent, count) in writer_agents(scope.run).items():
        attributes = [(PROV["type"], PROV["SoftwareAgent"]), (PROV["type"], MLFLOWPROV["Writer"]),
                      (MLFLOWPROV["eventCount"], count)]
        attributes += [(MLFLOWPROV[_camel(f)], v) for f, v in identity]
        scope.bundle.agent(agent, attributes)
        scope.bundle.wasAssociatedWith(run_activity, agent,
                                       other_attributes=[(PROV["role"], MLFLOWPROV["Writer"])])


def writer_identity(writer: dict) -> tuple:
    """The fields that tell one writer of a run's events from another, in a fixed order."""
    return tuple((f, writer.get(f)) for f in WRITER_FIELDS if writer.get(f) is not None)


def writer_agents(run: RunRecord) -> dict[tuple, tuple[QualifiedName, int]]:
    """Each distinct writer of the run's events -> (its agent id, how many events it wrote);
    shared by :func:`add_writers` and :mod:`exporters.prov_changes`, so both name the same
    agent."""
    counts: dict[tuple, int] = {}
    for event in run.history:
        identity = writer_identity(event.writer)
        counts[identity] = counts.get(identity, 0) + 1
    return {identity: (qid("run", run.run_id, "writer", str(index)), count)
            for index, (identity, count) in enumerate(sorted(counts.items(), key=str))}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def add_agents(scope: RunScope) -> None:
    """The user (prov:Person) under the plan (source, entry point, git), and software."""
    run, bundle = scope.run, scope.bundle
    plan = qid("run", run.run_id, "plan")
    bundle.entity(plan, _attrs([
        (PROV["type"], PROV["Plan"]),
        (MLFLOWPROV["sourceName"], run.source_name),
        (MLFLOWPROV["sourceType"], run.source_type),
        (MLFLOWPROV["entryPoint"], run.entry_point),
        (MLFLOWPROV["gitCommit"], run.git_commit),
        (MLFLOWPROV["gitRepoUrl"], run.git_repo_url),
    ]))
    if run.user:
        bundle.agent(user_id_of(run.user), [(PROV["type"], PROV["Person"]),
                                            (PROV["label"], run.user)])
        bundle.wasAssociatedWith(run_id_of(run.run_id), user_id_of(run.user), plan)
    versions, source = software_versions(run)
    for name, ver in versions:
        agent = qid("software", name, ver)
        bundle.agent(agent, [(PROV["type"], PROV["SoftwareAgent"]), (PROV["label"], name),
                             (MLFLOWPROV["version"], ver), (MLFLOWPROV["versionSource"], source)])
        bundle.wasAssociatedWith(run_id_of(run.run_id), agent)


def software_versions(run: RunRecord) -> tuple[list[tuple[str, str]], str]:
    """The software a run was logged with, and where that list comes from.

    A prov store's journal recorded Python and the library versions when the run was created
    (``"logging"``); without a journal only the exporting environment is known (``"export"``),
    which may differ from what trained the model, and the attribute says so.
    """
    created = next((e.payload for e in run.history if e.kind == EventKind.RUN_CREATED), {})
    environment = created.get("environment") or {}
    if environment:
        packages = sorted((environment.get("packages") or {}).items())
        versions = [("python", environment.get("python")), *packages]
        return [(name, ver) for name, ver in versions if ver], "logging"
    return [("mlflow", package_version("mlflow")), ("python", platform.python_version()),
            ("mlflow-prov", package_version("mlflow-prov"))], "export"


def add_parent(scope: RunScope) -> None:
    """A child run was informed by its parent run."""
    run = scope.run
    if run.parent_run_id:
        scope.bundle.wasInformedBy(run_id_of(run.run_id), run_id_of(run.parent_run_id),
                                   other_attributes=[(PROV["type"],
                                                      MLFLOWPROV["ParentRun"])])


def context_activity(scope: RunScope, context: str | None) -> QualifiedName:
    """The context's activity (created once, informed by the run); the run itself if None."""
    run_activity = run_id_of(scope.run.run_id)
    if context is None:
        return run_activity
    activity = qid("run", scope.run.run_id, "context", context)
    if scope.bundle.get_record(activity):
        return activity
    scope.bundle.activity(activity, other_attributes=[
        (PROV["type"], PROVML["Context"]), (PROV["label"], context),
        (MLFLOWPROV["context"], context)])
    scope.bundle.wasInformedBy(activity, run_activity)
    return activity


def add_params(scope: RunScope) -> None:
    """Params are inputs: entities *used* by the run, never generated by it."""
    run = scope.run
    logged_at = _first_event_times(run.history, EventKind.RUN_PARAMS_LOGGED, "params")
    for key, value in sorted(run.params.items()):
        entity = qid("run", run.run_id, "param", key)
        scope.bundle.entity(entity, [(PROV["type"], PROVML["HyperParameter"]),
                                     (PROV["label"], key), (MLFLOWPROV["key"], key),
                                     (PROV["value"], value)])
        scope.bundle.used(run_id_of(run.run_id), entity, logged_at.get(key))


def _first_event_times(history: Sequence[HistoryEvent], kind: str,
                       field_name: str) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for event in history:
        if event.kind == kind:
            for key in event.payload.get(field_name) or {}:
                times.setdefault(key, event.time)
    return times


def add_datasets(scope: RunScope) -> None:
    """Datasets used by their context; a source another run generated is used directly."""
    for dataset in scope.run.datasets:
        entity = qid("dataset", dataset.digest, dataset.name)
        scope.bundle.entity(entity, _attrs([
            (PROV["type"], PROVML["Dataset"]), (PROV["label"], dataset.name),
            (MLFLOWPROV["name"], dataset.name), (MLFLOWPROV["digest"], dataset.digest),
            (MLFLOWPROV["sourceType"], dataset.source_type),
            (MLFLOWPROV["source"], dataset.source), (MLFLOWPROV["schema"], dataset.schema),
            (MLFLOWPROV["profile"], dataset.profile), (MLFLOWPROV["context"], dataset.context),
        ]))
        user = context_activity(scope, dataset.context)
        scope.bundle.used(user, entity)
        origin = dataset_origin(dataset, scope.run, scope.index)
        if origin is not None:
            scope.bundle.used(user, origin)
            scope.bundle.wasDerivedFrom(entity, origin)


def add_input_models(scope: RunScope) -> None:
    """Logged models the run used (``log_inputs``); another run's model is upstream
    (:func:`upstream_of`)."""
    for model_id in scope.run.input_model_ids:
        scope.bundle.used(run_id_of(scope.run.run_id), model_id_of(model_id))


def add_metrics(scope: RunScope) -> None:
    """One entity per (key, context) with its summary and where the full series lives."""
    for summary in scope.run.metrics:
        entity = metric_entity_id(scope.run.run_id, summary)
        scope.bundle.entity(entity, metric_attributes(summary))
        activity = context_activity(scope, summary.context)
        scope.bundle.wasGeneratedBy(entity, activity, summary.last_time)


def metric_entity_id(run_id: str, summary: MetricSummary) -> QualifiedName:
    return qid("run", run_id, "metric", summary.key, summary.context or "-")


def metric_attributes(summary: MetricSummary) -> list[tuple[QualifiedName, object]]:
    location = summary.location
    return _attrs([
        (PROV["type"], PROVML["Metric"]), (PROV["label"], summary.key),
        (MLFLOWPROV["key"], summary.key), (MLFLOWPROV["context"], summary.context),
        (MLFLOWPROV["source"], summary.source), (MLFLOWPROV["count"], summary.count),
        (MLFLOWPROV["firstStep"], summary.first_step), (MLFLOWPROV["lastStep"], summary.last_step),
        (MLFLOWPROV["firstTime"], summary.first_time), (MLFLOWPROV["lastTime"], summary.last_time),
        (MLFLOWPROV["min"], number(summary.min)), (MLFLOWPROV["max"], number(summary.max)),
        (MLFLOWPROV["last"], number(summary.last)),
        (MLFLOWPROV["file"], location.file if location else None),
        (MLFLOWPROV["variable"], location.variable if location else None),
        (MLFLOWPROV["seriesSource"], None if location else "mlflow:get_metric_history"),
        (MLFLOWPROV["datasetDigest"], summary.dataset_digest),
        (MLFLOWPROV["modelId"], summary.model_id),
    ])


def add_artifacts(scope: RunScope) -> None:
    """Artifact files generated by the run, with path, size and sha256; successive versions
    of one model saved as files (``models/<name>/…``) chained by ``wasRevisionOf``."""
    run_id = scope.run.run_id
    for artifact in scope.run.artifacts:
        entity = artifact_id_of(run_id, artifact.path)
        scope.bundle.entity(entity, artifact_attributes(artifact, MLFLOWPROV["Artifact"]))
        scope.bundle.wasGeneratedBy(entity, run_id_of(run_id))
    for versions in model_file_versions(scope.run.artifacts):
        for older, newer in zip(versions, versions[1:], strict=False):
            scope.bundle.wasRevisionOf(artifact_id_of(run_id, newer.path),
                                       artifact_id_of(run_id, older.path))


MODEL_FILES_FOLDER = "models"


def model_file_versions(artifacts: Iterable[ArtifactRecord]) -> list[list[ArtifactRecord]]:
    """Files directly under ``models/<name>/`` are versions of model ``<name>`` (the layout
    ``mlflow_prov.torch.save_model_version`` writes), oldest first by the numbers in their
    names (``v0002_step1.pt`` after ``v0001_step0.pt``; ``model_10.pt`` after ``model_9.pt``).
    Folders of MLflow's own logged models (``MLmodel`` beside the files) are left out."""
    folders: dict[str, list[ArtifactRecord]] = {}
    for artifact in artifacts:
        parts = artifact.path.split("/")
        if len(parts) == 3 and parts[0] == MODEL_FILES_FOLDER:
            folders.setdefault(parts[1], []).append(artifact)
    return [sorted(files, key=_version_order) for files in folders.values()
            if len(files) > 1 and not any(f.path.endswith("/MLmodel") for f in files)]


def _version_order(artifact: ArtifactRecord) -> tuple:
    name = artifact.path.rsplit("/", 1)[-1]
    return tuple(int(n) for n in re.findall(r"\d+", name)), name


def artifact_attributes(artifact: ArtifactRecord, kind: QualifiedName):
    return _attrs([
        (PROV["type"], kind), (PROV["label"], artifact.path),
        (MLFLOWPROV["path"], artifact.path), (MLFLOWPROV["size"], artifact.size),
        (MLFLOWPROV["sha256"], artifact.sha256), (PROV["location"], artifact.uri),
        (MLFLOWPROV["skipped"], artifact.skipped),
    ])


def add_logged_models(scope: RunScope) -> None:
    """LoggedModels generated by the run (a collection of their files), with params,
    metrics, and a revision link to the previous model of the same name."""
    for model in scope.run.logged_models:
        entity = model_id_of(model.model_id)
        attributes = _attrs([
            (PROV["type"], PROVML["Model"]), (PROV["type"], PROV["Collection"]),
            (PROV["label"], model.name), (MLFLOWPROV["modelId"], model.model_id),
            (MLFLOWPROV["name"], model.name), (MLFLOWPROV["status"], model.status),
            (MLFLOWPROV["modelType"], model.model_type),
            (PROV["location"], model.artifact_location),
        ])
        attributes += [(MLFLOWPROV[f"param.{quote(k, safe='-_')}"], v)
                       for k, v in sorted(model.params.items())]
        attributes += [(MLFLOWPROV[f"metric.{quote(k, safe='-_')}"], number(v))
                       for k, v in sorted(model.metrics.items())]
        scope.bundle.entity(entity, attributes)
        scope.bundle.wasGeneratedBy(entity, run_id_of(scope.run.run_id), model.creation_time)
        for artifact in model.artifacts:
            file_entity = qid("model", model.model_id, "file", artifact.path)
            scope.bundle.entity(file_entity, artifact_attributes(artifact, MLFLOWPROV["ModelFile"]))
            scope.bundle.hadMember(entity, file_entity)
        previous = previous_model(scope.index, model)
        if previous is not None:
            scope.bundle.wasRevisionOf(entity, model_id_of(previous.model_id))


def previous_model(index: ExportLineage, model: LoggedModelRecord) -> LoggedModelRecord | None:
    """The latest earlier LoggedModel with the same name in the export, if any (a model
    without a creation time has no place in the order)."""
    created = model.creation_time
    if created is None:
        return None
    earlier = [(m.creation_time, m) for m in index.models.values()
               if m.name == model.name and m.creation_time is not None
               and m.creation_time < created]
    return max(earlier, key=lambda pair: pair[0], default=(None, None))[1]


def add_model_versions(scope: RunScope) -> None:
    """Registry versions: derived from the run's model, chained by version number."""
    for mv in scope.run.model_versions:
        entity = qid("registered", mv.name, str(mv.version))
        scope.bundle.entity(entity, _attrs([
            (PROV["type"], MLFLOWPROV["ModelVersion"]), (PROV["label"], f"{mv.name} v{mv.version}"),
            (MLFLOWPROV["name"], mv.name), (MLFLOWPROV["version"], mv.version),
            (MLFLOWPROV["status"], mv.status), (MLFLOWPROV["stage"], mv.current_stage),
            (PROV["location"], mv.source)]))
        if mv.version > 1:
            scope.bundle.wasRevisionOf(entity, qid("registered", mv.name, str(mv.version - 1)))
        source = scope.index.version_origin(mv)
        if source is not None:
            scope.bundle.wasDerivedFrom(entity, entity_of(source))


def add_tags(scope: RunScope) -> None:
    """User tags (not ``mlflow.*``) as entities; from the journal, each earlier value as a
    revision and each deletion as an invalidation."""
    run = scope.run
    for key, value in sorted(run.tags.items()):
        if not key.startswith("mlflow."):
            entity = qid("run", run.run_id, "tag", key)
            scope.bundle.entity(entity, [(PROV["type"], MLFLOWPROV["Tag"]), (PROV["label"], key),
                                         (MLFLOWPROV["key"], key), (PROV["value"], value)])
            scope.bundle.wasGeneratedBy(entity, run_id_of(run.run_id))
    add_tag_history(scope)


def add_tag_history(scope: RunScope) -> None:
    """Walk tag events in order: every earlier value gets a revision entity, chained; the
    live value revises the last one; a deleted value is invalidated at the deletion time."""
    run, bundle = scope.run, scope.bundle
    last: dict[str, QualifiedName] = {}
    counts: dict[str, int] = {}
    for event in run.history:
        for key, old in _tag_changes(event):
            if key.startswith("mlflow.") or old is None:
                continue
            counts[key] = counts.get(key, 0) + 1
            old_entity = qid("run", run.run_id, "tag", key, f"rev{counts[key]}")
            bundle.entity(old_entity, [(PROV["type"], MLFLOWPROV["Tag"]), (PROV["label"], key),
                                       (MLFLOWPROV["key"], key), (PROV["value"], old)])
            bundle.wasInvalidatedBy(old_entity, run_id_of(run.run_id), event.time)
            if key in last:
                bundle.wasRevisionOf(old_entity, last[key])
            last[key] = old_entity
    for key, entity in last.items():
        current = qid("run", run.run_id, "tag", key)
        if bundle.get_record(current):
            bundle.wasRevisionOf(current, entity)


def _tag_changes(event: HistoryEvent) -> list[tuple[str, object]]:
    if event.kind == EventKind.RUN_TAGS_SET:
        tags_set = cast(RunTagsSet, event.payload)
        old = tags_set.get("old") or {}
        return [(k, old.get(k)) for k in (tags_set.get("tags") or {})]
    if event.kind == EventKind.RUN_TAG_DELETED:
        deleted = cast(RunTagDeleted, event.payload)
        return [(deleted.get("key", ""), deleted.get("old_value"))]
    return []


def add_status_history(scope: RunScope) -> None:
    """Status transitions from the journal as a revision chain of status entities."""
    run, bundle = scope.run, scope.bundle
    previous: QualifiedName | None = None
    updates = [(e, cast(RunUpdated, e.payload)) for e in run.history
               if e.kind == EventKind.RUN_UPDATED]
    changes = [e for e, update in updates
               if update.get("new_status") and update.get("new_status") != update.get("old_status")]
    for n, event in enumerate(changes, start=1):
        status = qid("run", run.run_id, "status", str(n))
        bundle.entity(status, [(PROV["type"], MLFLOWPROV["RunStatus"]),
                               (PROV["value"], str(event.payload["new_status"]))])
        bundle.wasGeneratedBy(status, run_id_of(run.run_id), event.time)
        if previous is not None:
            bundle.wasRevisionOf(status, previous)
            bundle.wasInvalidatedBy(previous, run_id_of(run.run_id), event.time)
        previous = status


def add_deletion(scope: RunScope) -> None:
    """A deleted run: its provenance bundle is invalidated by a deletion activity (at the
    journal's time when known), and each restore is recorded too."""
    run, bundle = scope.run, scope.bundle
    deletions = [e for e in run.history
                 if e.kind in (EventKind.RUN_DELETED, EventKind.RUN_RESTORED)]
    for n, event in enumerate(deletions, start=1):
        activity = qid("run", run.run_id, event.kind.removeprefix("run."), str(n))
        deleted = event.kind == EventKind.RUN_DELETED
        kind = MLFLOWPROV["Deletion"] if deleted else MLFLOWPROV["Restore"]
        bundle.activity(activity, event.time, event.time, [(PROV["type"], kind)])
        if deleted:
            bundle.wasInvalidatedBy(bundle_id_of(run.run_id), activity, event.time)
    if run.lifecycle_stage == "deleted" and not deletions:
        activity = qid("run", run.run_id, "deleted")
        bundle.activity(activity, other_attributes=[(PROV["type"], MLFLOWPROV["Deletion"])])
        bundle.wasInvalidatedBy(bundle_id_of(run.run_id), activity)


KEY_CHANGE_KINDS: dict[str, tuple[str, str]] = {
    # event kind -> (kind of key, payload field naming the keys)
    EventKind.RUN_PARAMS_LOGGED: ("param", "params"),
    EventKind.RUN_METRICS_LOGGED: ("metric", "keys"),
    EventKind.RUN_TAGS_SET: ("tag", "tags"),
    EventKind.RUN_TAG_DELETED: ("tag", "key"),
}


def changed_keys(event: HistoryEvent) -> list[tuple[str, str]]:
    """(kind, key) of every param, metric or tag key one journal event wrote or deleted."""
    kind, field_name = KEY_CHANGE_KINDS.get(event.kind, ("", ""))
    keys = event.payload.get(field_name) if kind else None
    if isinstance(keys, str):
        return [(kind, keys)]
    return [(kind, str(key)) for key in keys or ()]


def add_key_changes(scope: RunScope) -> None:
    """Who wrote each param, metric and tag key, from the journal: per (key, writer) one
    ``mlflowprov:KeyChanges`` activity from its first to its last write, informed by the run
    and associated with the writer's agent (:func:`add_writers`), with the number of events.
    One activity per key and writer, not per event: a training loop logs a metric key
    thousands of times."""
    run, bundle = scope.run, scope.bundle
    agents = writer_agents(run)
    times: dict[tuple[str, str, tuple], list[datetime]] = {}
    for event in run.history:
        for kind, key in changed_keys(event):
            times.setdefault((kind, key, writer_identity(event.writer)), []).append(event.time)
    for (kind, key, identity), when in times.items():
        agent = agents[identity][0]
        writer_number = agent.localpart.rsplit(".", 1)[-1]
        activity = qid("run", run.run_id, "changes", kind, key, writer_number)
        bundle.activity(activity, min(when), max(when), [
            (PROV["type"], MLFLOWPROV["KeyChanges"]), (PROV["label"], f"{kind} {key} written"),
            (MLFLOWPROV["key"], key), (MLFLOWPROV["keyKind"], kind),
            (MLFLOWPROV["eventCount"], len(when))])
        bundle.wasInformedBy(activity, run_id_of(run.run_id))
        bundle.wasAssociatedWith(activity, agent,
                                 other_attributes=[(PROV["role"], MLFLOWPROV["Writer"])])


def add_lineage(scope: RunScope) -> None:
    """Everything the run generated derives from what it used that another run generated."""
    outputs = [artifact_id_of(scope.run.run_id, a.path) for a in scope.run.artifacts]
    outputs += [model_id_of(m.model_id) for m in scope.run.logged_models]
    for origin, producer in upstream_of(scope.run, scope.index):
        for output in outputs:
            scope.bundle.wasDerivedFrom(output, origin)
        if producer:
            scope.bundle.wasInformedBy(run_id_of(scope.run.run_id), run_id_of(producer))


def add_code(scope: RunScope) -> None:
    """The commit, source code and environment the run used (``exporters/prov_code.py``,
    imported here rather than at the top because it builds on the ids above)."""
    from exporters.prov_code import add_code_and_environment

    add_code_and_environment(scope)


def add_git(scope: RunScope) -> None:
    """The git history behind the run's commit, with ``export --git``
    (``exporters/prov_git.py``, imported here for the same reason)."""
    from exporters.prov_git import add_git_history

    add_git_history(scope)


MODELS: tuple[Callable[[RunScope], None], ...] = (
    add_run_activity, add_agents, add_writers, add_parent, add_params, add_datasets,
    add_input_models, add_metrics, add_artifacts, add_logged_models, add_model_versions, add_tags,
    add_status_history, add_deletion, add_lineage, add_key_changes,
    add_code, add_git, add_genai,
)


def new_document() -> ProvDocument:
    doc = ProvDocument()
    for ns in NAMESPACES:
        doc.add_namespace(ns)
    return doc


def add_experiment(doc: ProvDocument, experiment: ExperimentRecord) -> None:
    """The experiment as a collection, saying whether history was available."""
    attributes = _attrs([
        (PROV["type"], PROV["Collection"]), (PROV["type"], MLFLOWPROV["Experiment"]),
        (PROV["label"], experiment.name), (MLFLOWPROV["experimentId"], experiment.experiment_id),
        (MLFLOWPROV["artifactLocation"], experiment.artifact_location),
        (MLFLOWPROV["lifecycleStage"], experiment.lifecycle_stage),
        (MLFLOWPROV["trackingUri"], experiment.tracking_uri),
        (DCTERMS["created"], experiment.creation_time),
        (MLFLOWPROV["historyAvailable"], experiment.history_available),
        (MLFLOWPROV["historyNote"], None if experiment.history_available
         else HISTORY_UNAVAILABLE),
    ])
    doc.entity(experiment_id_of(experiment.experiment_id), attributes)
    add_experiment_history(doc, experiment)


def add_experiment_history(doc: ProvDocument, experiment: ExperimentRecord) -> None:
    """Earlier experiment names (journal renames) as revisions of the experiment."""
    current = experiment_id_of(experiment.experiment_id)
    renames = [e for e in experiment.history if e.kind == EventKind.EXPERIMENT_RENAMED]
    for n, event in enumerate(renames, start=1):
        old = qid("experiment", experiment.experiment_id, f"name{n}")
        doc.entity(old, [(PROV["type"], MLFLOWPROV["Experiment"]),
                         (PROV["label"], str(event.payload.get("old_name")))])
        doc.wasRevisionOf(current, old)
        doc.wasInvalidatedBy(old, None, event.time)


def fill_run(bundle: ProvBundle, run: RunRecord, experiment: ExperimentRecord,
             index: ExportLineage) -> None:
    """Apply every sub-model of :data:`MODELS` to one run."""
    scope = RunScope(bundle=bundle, run=run, experiment=experiment, index=index)
    for model in MODELS:
        model(scope)


def add_membership(doc: ProvDocument, experiment: ExperimentRecord, run: RunRecord) -> None:
    """The run's provenance (a bundle, an entity in PROV) is a member of the experiment."""
    doc.entity(bundle_id_of(run.run_id), [(PROV["type"], PROV["Bundle"]),
                                          (PROV["label"], f"provenance of run {run.name}")])
    doc.hadMember(experiment_id_of(experiment.experiment_id), bundle_id_of(run.run_id))


def run_document(run: RunRecord, experiment: ExperimentRecord,
                 index: ExportLineage) -> ProvDocument:
    """One run's provenance: the statements of its bundle at top level, plus the experiment."""
    doc = new_document()
    add_experiment(doc, experiment)
    add_membership(doc, experiment, run)
    fill_run(doc, run, experiment, index)
    return mark_clamped_times(doc)


def experiment_document(experiment: ExperimentRecord, runs: Sequence[RunRecord],
                        index: ExportLineage) -> ProvDocument:
    """The whole experiment: the collection at top level and one bundle per run."""
    doc = new_document()
    add_experiment(doc, experiment)
    for run in runs:
        add_membership(doc, experiment, run)
        fill_run(doc.bundle(bundle_id_of(run.run_id)), run, experiment, index)
    return mark_clamped_times(doc)


# --- values a format cannot hold (exporters.sanitize) -------------------------------------

def mark_clamped_times(doc: ProvDocument) -> ProvDocument:
    """Add ``mlflowprov:sanitized`` to every record (element or relation) holding a
    :class:`~exporters.sanitize.ClampedTime`, naming the attribute and MLflow's raw value;
    returns ``doc`` itself."""
    for record in _all_records(doc):
        notes = [time_note(str(name), value) for name, value in record.attributes
                 if isinstance(value, ClampedTime)]
        if notes:
            record.add_attributes([(MLFLOWPROV["sanitized"], note) for note in notes])
    return doc


def xml_safe_document(doc: ProvDocument) -> ProvDocument:
    """``doc`` itself when every string in it is XML-safe (PROV-XML, Graphviz), else a copy
    with :func:`~exporters.sanitize.xml_safe_text` applied to every string value and
    ``mlflowprov:sanitized`` on each record it changed, naming the attributes."""
    if not any(_unsafe_names(record) for record in _all_records(doc)):
        return doc
    safe = ProvDocument()
    _copy_xml_safe(doc, safe)
    for bundle in doc.bundles:
        _copy_xml_safe(bundle, safe.bundle(cast(QualifiedName, bundle.identifier)))
    return safe


def _all_records(doc: ProvDocument) -> Iterator[ProvRecord]:
    yield from doc.get_records()
    for bundle in doc.bundles:
        yield from bundle.get_records()


def _text_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Literal) and isinstance(value.value, str):
        return value.value
    return None


def _unsafe_names(record: ProvRecord) -> list[str]:
    names = []
    for name, value in record.attributes:
        text = _text_of(value)
        if text is not None and xml_unsafe(text):
            names.append(str(name))
    return list(dict.fromkeys(names))


def _safe_value(value: object) -> object:
    if isinstance(value, str):
        return xml_safe_text(value)
    if isinstance(value, Literal) and isinstance(value.value, str):
        return Literal(xml_safe_text(value.value), value.datatype, value.langtag)
    return value


def _copy_xml_safe(source: ProvBundle, target: ProvBundle) -> None:
    for namespace in source.namespaces:
        target.add_namespace(namespace)
    for record in source.get_records():
        attributes: list[tuple[QualifiedName, object]] = [
            (name, _safe_value(value)) for name, value in record.attributes]
        attributes += [(MLFLOWPROV["sanitized"], f"{name}: {TEXT_NOTE}")
                       for name in _unsafe_names(record)]
        target.new_record(record.get_type(), record.identifier, attributes)
