"""Read provenance back into pandas: our PROV-JSON and yProv4ML's, generations v0 to v3.

    doc = load("out/my-experiment/run-<id>/prov.json")   # or a parsed dict, or a run folder
    list_metrics(doc)                        # key, context, source, count, file
    get_metric(doc, "loss", context="training")   # step, timestamp, value, epoch
    get_metric(json.load(f), "Loss_Context.TRAINING", time_in_sec=True)   # yProv4ML's way

Every public function takes a *source*: a :class:`ProvenanceDocument`, a path to a PROV-JSON
file or run folder, or an already parsed dict (what yProv4ML's README passes; relative metric
file paths in a dict are resolved against ``base_dir``, default the working directory).

Supported documents (``ProvenanceDocument.generation``):

* ``mlflow-prov``: ``prov.json`` / ``experiment.prov.json`` written by this package; metric
  entities name their ``metrics.nc`` variable, ``metrics.zarr`` array or CSV file
  (``mlflowprov:file``/``variable``).
* ``yprov4ml-v0`` / ``yprov4ml-v1``: ``prov-ml:`` metrics with the series inline as strings
  (numpy-truncated with ``...`` past 1000 values; v1 also points at a full copy written as
  text, NetCDF or Zarr, read by its real format when the inline list is truncated).
* ``yprov4ml-v2``: ``context:`` activities, metrics in external ``.nc``, ``.zarr`` or text
  files (``epochs``/``values``/``timestamps``).
* ``yprov4ml-v3``: ``yprov:``/``provml:`` prefixes, metrics in CSV files
  (``epoch,value,timestep``).

A metric is found by its name (``loss``) with an optional context, or by the document's
entity id (``Loss_Context.TRAINING``, ``Loss//TRAINING``) or ``<name>_<context>``.

Nothing is ever evaluated: inline lists are tokenised and parsed as numbers, including the
reprs numpy 2 writes for its scalars (``np.float64(0.04)``, ``np.int64(3)``), ``nan`` and
``inf``. Only two things raise :class:`ProvenanceReadError` for a series: an inline list
truncated with ``...`` whose full copy is absent, and a metric file that is missing (or a
broken document or file, naming it and the reason), never a guess.

Columns: ``epoch`` (yProv4ML's name for the step), ``timestamp`` (integer milliseconds since
the Unix epoch in every generation; seconds as float with ``time_in_sec=True``), ``value``
and ``step``. ``value`` is float64, except for metrics whose per-step value is itself a list
(yProv4ML logged e.g. per-sample correctness ``[False, True, ...]`` as one value): those come
back as Python lists in an object column, because flattening would invent steps and
averaging would invent values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from exporters import layout

MLFLOW_PROV_NS = "https://w3id.org/mlflow-prov/ns#"
RECORD_SECTIONS = ("entity", "activity", "agent")
# PROV-JSON relation -> (subject attribute, object attribute), read generically for lineage.
RELATIONS: dict[str, tuple[str, str]] = {
    "used": ("prov:activity", "prov:entity"),
    "wasGeneratedBy": ("prov:entity", "prov:activity"),
    "wasDerivedFrom": ("prov:generatedEntity", "prov:usedEntity"),
    "wasInformedBy": ("prov:informed", "prov:informant"),
    "wasAssociatedWith": ("prov:activity", "prov:agent"),
    "wasAttributedTo": ("prov:entity", "prov:agent"),
    "actedOnBehalfOf": ("prov:delegate", "prov:responsible"),
    "wasStartedBy": ("prov:activity", "prov:trigger"),
    "wasEndedBy": ("prov:activity", "prov:trigger"),
    "wasInvalidatedBy": ("prov:entity", "prov:activity"),
    "hadMember": ("prov:collection", "prov:entity"),
    "specializationOf": ("prov:specificEntity", "prov:generalEntity"),
    "alternateOf": ("prov:alternate1", "prov:alternate2"),
    "wasInfluencedBy": ("prov:influencee", "prov:influencer"),
}
METRIC_COLUMNS = ["key", "context", "source", "count", "file"]
SERIES_COLUMNS = ["step", "timestamp", "value", "epoch"]


class ProvenanceReadError(Exception):
    """A provenance document, or a metric file it points at, cannot be read exactly."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class MetricRef:
    """One metric series as a document describes it, and where its points are.

    ``storage`` is ``netcdf-variable`` / ``zarr-variable`` / ``csv`` (our layouts),
    ``yprov4ml-file`` (a yProv4ML metric file, read by its real format: ``.nc``, ``.zarr`` or
    text), ``inline`` or ``none`` (the series stayed in MLflow). ``entity_id`` is the
    document's id for the metric entity.
    """

    run_id: str | None
    key: str
    context: str | None
    source: str | None
    count: int | None
    storage: str
    file: Path | None = None
    variable: str | None = None
    inline: tuple[str, str, str] | None = None  # (steps, values, timestamps) as written
    entity_id: str | None = None


@dataclass(frozen=True)
class ProvenanceDocument:
    """A loaded document, reduced to what the getters return."""

    path: Path
    generation: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[MetricRef] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)


# What every getter accepts: a loaded document, a file or run folder, or parsed PROV-JSON.
Source = ProvenanceDocument | str | Path | Mapping[str, Any]


@dataclass(frozen=True)
class _Record:
    """One PROV record (an id may carry several: yProv4ML writes lists)."""

    section: str
    identifier: str
    attributes: dict[str, Any]
    bundle: str | None


# --- public API -----------------------------------------------------------------------------

def load(source: Source,
         base_dir: str | Path | None = None) -> ProvenanceDocument:
    """Read a PROV-JSON document of any known generation.

    ``source`` is a file, a run folder holding ``prov.json``, a dict already parsed from
    PROV-JSON (metric files it names are looked up under ``base_dir``, default the working
    directory, as yProv4ML wrote paths relative to where training ran), or a document
    loaded before (returned as it is).
    """
    if isinstance(source, ProvenanceDocument):
        return source
    if isinstance(source, Mapping):
        path = Path(base_dir or Path.cwd()) / "(parsed document)"
        data = _check_prov(path, dict(source))
    else:
        path = Path(source)
        if path.is_dir():
            path = path / layout.PROV_JSON[0]
        data = _read_json(path)
    generation = detect_generation(data)
    if generation is None:
        raise ProvenanceReadError(path, "PROV-JSON, but neither mlflow-prov's nor yProv4ML's "
                                        "(no known namespace prefix)")
    doc = ProvenanceDocument(path=path, generation=generation, lineage=list(_lineage(data)))
    _READERS[generation](doc, list(_records(data)))
    return doc


def list_runs(source: Source) -> pd.DataFrame:
    """One row per run: run_id, name, status, start_time, end_time, user."""
    columns = ["run_id", "name", "status", "start_time", "end_time", "user"]
    return pd.DataFrame(load(source).runs, columns=columns)


def list_metrics(source: Source) -> pd.DataFrame:
    """One row per series: key, context, source, count (None if unknown), file, run_id,
    entity_id (the document's id for it, which :func:`get_metric` also accepts)."""
    rows = [{"key": m.key, "context": m.context, "source": m.source, "count": m.count,
             "file": str(m.file) if m.file else None, "run_id": m.run_id,
             "entity_id": m.entity_id} for m in load(source).metrics]
    return pd.DataFrame(rows, columns=[*METRIC_COLUMNS, "run_id", "entity_id"])


def get_metrics(source: Source,
                keyword: str | None = None) -> list[str]:
    """yProv4ML's ``get_metrics``: the metric entity ids, those containing ``keyword`` if given.

    Each id can be passed back to :func:`get_metric` unchanged.
    """
    ids = [m.entity_id or m.key for m in load(source).metrics]
    return [i for i in ids if keyword is None or keyword in i]


def get_metric(source: Source, key: str,
               context: str | None = None, run_id: str | None = None, *,
               time_in_sec: bool = False, time_incremental: bool = False,
               sort_by: str | None = None, start_at: int | None = None,
               end_at: int | None = None) -> pd.DataFrame:
    """The full series of ``key``: columns step, timestamp (ms), value, epoch.

    ``key`` is a metric name (``loss``) or an entity id (``Loss_Context.TRAINING``).
    ``context`` matches case-insensitively and without yProv4ML's ``Context.`` prefix, so
    ``"training"`` finds ``Context.TRAINING``. yProv4ML's keyword arguments keep their
    meaning: ``time_in_sec`` gives timestamp in seconds (float), ``time_incremental`` the
    time since the previous point (0 for the first), ``sort_by`` sorts by a column, and
    ``start_at``/``end_at`` keep rows ``start_at:end_at`` by position (after sorting).
    Raises KeyError for an unknown or ambiguous key, ProvenanceReadError when the points
    cannot be read exactly.
    """
    doc = load(source)
    if not isinstance(context, str):
        context = None  # list_metrics gives NaN/None for "no context"
    ref = _find_metric(doc, key, context, run_id)
    frame = _SERIES_READERS[ref.storage](doc, ref)
    frame["epoch"] = frame["step"]
    frame = frame[SERIES_COLUMNS]
    if time_in_sec:
        frame["timestamp"] = frame["timestamp"] / 1000.0
    if time_incremental:
        frame["timestamp"] = frame["timestamp"].diff().fillna(0)
    if sort_by is not None:
        if sort_by not in frame.columns:
            raise KeyError(f"sort_by={sort_by!r}: not a column; use one of {SERIES_COLUMNS}")
        frame = frame.sort_values(sort_by, kind="stable")
    return frame.iloc[start_at:end_at].reset_index(drop=True)


def get_avg_metric(source: Source, key: str,
                   context: str | None = None, **kwargs: Any) -> float:
    """Mean of the series' values (yProv4ML's ``get_avg_metric``)."""
    return float(_numeric_values(get_metric(source, key, context, **kwargs), key).mean())


def get_sum_metric(source: Source, key: str,
                   context: str | None = None, **kwargs: Any) -> float:
    """Sum of the series' values (yProv4ML's ``get_sum_metric``)."""
    return float(_numeric_values(get_metric(source, key, context, **kwargs), key).sum())


def get_metric_time(source: Source, key: str,
                    context: str | None = None, time_in_sec: bool = False,
                    **kwargs: Any) -> float:
    """Time from the series' first to its last point, in ms (seconds with ``time_in_sec``)."""
    times = get_metric(source, key, context, time_in_sec=time_in_sec, **kwargs)["timestamp"]
    return float(times.max() - times.min()) if len(times) else 0.0


def get_params(source: Source,
               name: str | None = None) -> pd.DataFrame | list[Any]:
    """One row per parameter: run_id, name, value, context.

    With ``name`` it behaves as yProv4ML's ``get_params(data, name)``: the values of every
    parameter whose name contains ``name``, in document order.
    """
    params = load(source).params
    if name is not None:
        return [p["value"] for p in params if name in str(p["name"])]
    return pd.DataFrame(params, columns=["run_id", "name", "value", "context"])


def get_param(source: Source, name: str,
              context: str | None = None) -> Any:
    """The value of parameter ``name`` (yProv4ML's ``get_param``); KeyError if absent or
    set differently in several contexts and ``context`` does not pick one."""
    matches = [p for p in load(source).params if p["name"] == name
               and (context is None or _normalise_context(p["context"])
                    == _normalise_context(context))]
    values = {str(p["value"]) for p in matches}
    if not matches:
        raise KeyError(f"no parameter {name!r}" + (f" in context {context!r}" if context else ""))
    if len(values) > 1:
        contexts = sorted({str(p["context"]) for p in matches})
        raise KeyError(f"parameter {name!r} differs between contexts; pass one of {contexts}")
    return matches[0]["value"]


def get_artifacts(source: Source) -> pd.DataFrame:
    """One row per artifact or model file: run_id, path, size, sha256, uri, kind.

    yProv4ML v0/v1 describe one file in several records; the first description wins."""
    frame = pd.DataFrame(load(source).artifacts,
                         columns=["run_id", "path", "size", "sha256", "uri", "kind"])
    return frame.drop_duplicates(subset=["run_id", "path"]).reset_index(drop=True)


def get_lineage(source: Source) -> pd.DataFrame:
    """Every PROV relation as an edge: relation, subject, object, bundle."""
    return pd.DataFrame(load(source).lineage,
                        columns=["relation", "subject", "object", "bundle"])


# --- reading the JSON -----------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProvenanceReadError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProvenanceReadError(path, f"not readable as JSON ({exc})") from exc
    return _check_prov(path, data)


def _check_prov(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not any(s in data for s in (*RECORD_SECTIONS, "bundle")):
        raise ProvenanceReadError(path, "not a PROV-JSON document (no entity, activity, "
                                        "agent or bundle section)")
    return data


def detect_generation(data: dict[str, Any]) -> str | None:
    """Which writer made the document, from its namespace prefixes and record shapes."""
    prefixes = {**data.get("prefix", {})}
    for bundle in (data.get("bundle") or {}).values():
        prefixes.update(bundle.get("prefix", {}))
    if MLFLOW_PROV_NS in prefixes.values():
        return "mlflow-prov"
    if "yprov" in prefixes:
        return "yprov4ml-v3"
    if "yProv4ML" in prefixes:
        return "yprov4ml-v2"
    if "prov-ml" in prefixes:
        metrics = [a for r in _records(data) if r.section == "entity"
                   for a in [r.attributes] if _plain(a.get("prov-ml:type")) == "Metric"]
        return "yprov4ml-v1" if any("prov-ml:artifact_uri" in m for m in metrics) \
            else "yprov4ml-v0"
    return None


def _records(data: dict[str, Any], bundle: str | None = None) -> Iterator[_Record]:
    for section in RECORD_SECTIONS:
        for identifier, value in (data.get(section) or {}).items():
            for attributes in value if isinstance(value, list) else [value]:
                yield _Record(section, identifier, attributes or {}, bundle)
    for name, content in (data.get("bundle") or {}).items():
        yield from _records(content, name)


# PROV-JSON writes wasRevisionOf, wasQuotedFrom and hadPrimarySource as wasDerivedFrom with a
# prov:type; the lineage table names them as PROV-N does.
DERIVATION_SUBTYPES: dict[str, str] = {
    "prov:Revision": "wasRevisionOf",
    "prov:Quotation": "wasQuotedFrom",
    "prov:PrimarySource": "hadPrimarySource",
}


def _lineage(data: dict[str, Any], bundle: str | None = None) -> Iterator[dict[str, Any]]:
    for relation, (subject, obj) in RELATIONS.items():
        for value in (data.get(relation) or {}).values():
            for attributes in value if isinstance(value, list) else [value]:
                name = relation
                if relation == "wasDerivedFrom":
                    name = DERIVATION_SUBTYPES.get(_plain(attributes.get("prov:type")), relation)
                yield {"relation": name, "subject": attributes.get(subject),
                       "object": attributes.get(obj), "bundle": bundle}
    for name, content in (data.get("bundle") or {}).items():
        yield from _lineage(content, name)


def _plain(value: Any) -> Any:
    """A PROV-JSON value without its typing: ``{"$": "3", "type": "xsd:int"}`` -> ``"3"``."""
    if isinstance(value, dict) and "$" in value:
        return value["$"]
    return value


def _types(attributes: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("prov:type", "prov-ml:type"):
        value = attributes.get(name)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                found.add(str(_plain(item)))
    return found


def _int_or_none(value: Any) -> int | None:
    try:
        return int(_plain(value))
    except (TypeError, ValueError):
        return None


def _epoch_seconds(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(_plain(value)), tz=UTC)
    except (TypeError, ValueError):
        return None


def _iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime; yProv4ML v3 writes local UTC without offset."""
    try:
        parsed = datetime.fromisoformat(str(_plain(value)))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _resolve(doc_path: Path, reference: str, *prefixes: str) -> Path:
    """The file a document's relative path names, as it was copied next to the document.

    yProv4ML records paths relative to the directory the training ran in
    (``prov/demo_0/metrics_GR0/x.csv``) while the file sits next to the JSON
    (``metrics_GR0/x.csv``): try the path, then ever shorter tails of it. The first
    candidate is returned when none exists, so the error can name it.
    """
    path = Path(reference)
    if path.is_absolute():
        return path
    base = doc_path.parent
    parts = path.parts
    candidates = [base / prefix / path for prefix in prefixes]
    candidates += [base.joinpath(*parts[i:]) for i in range(len(parts))]
    return next((c for c in candidates if c.exists()), candidates[0])


# --- our own documents ----------------------------------------------------------------------

def _read_mlflow_prov(doc: ProvenanceDocument, records: list[_Record]) -> None:
    runs = [r for r in records
            if r.section == "activity" and "mlflowprov:Run" in _types(r.attributes)]
    run_ids = {r.bundle: _plain(r.attributes.get("mlflowprov:runId")) for r in runs}
    only_run = next(iter(run_ids.values())) if len(run_ids) == 1 else None
    people = {r.bundle: _plain(r.attributes.get("prov:label")) for r in records
              if r.section == "agent" and "prov:Person" in _types(r.attributes)}
    doc.runs.extend({"run_id": _plain(r.attributes.get("mlflowprov:runId")),
                     "name": _plain(r.attributes.get("prov:label")),
                     "status": _plain(r.attributes.get("mlflowprov:status")),
                     "start_time": _iso_time(r.attributes.get("prov:startTime")),
                     "end_time": _iso_time(r.attributes.get("prov:endTime")),
                     "user": people.get(r.bundle)} for r in runs)
    for record in records:
        run_id = run_ids.get(record.bundle, only_run)
        kinds, attrs = _types(record.attributes), record.attributes
        if record.section != "entity":
            continue
        if "provml:Metric" in kinds:
            doc.metrics.append(_our_metric(doc.path, run_id, record.identifier, attrs))
        elif "provml:HyperParameter" in kinds:
            doc.params.append({"run_id": run_id, "name": _plain(attrs.get("mlflowprov:key")),
                               "value": _plain(attrs.get("prov:value")), "context": None})
        elif kinds & {"mlflowprov:Artifact", "mlflowprov:ModelFile"}:
            doc.artifacts.append({
                "run_id": run_id, "path": _plain(attrs.get("mlflowprov:path")),
                "size": _int_or_none(attrs.get("mlflowprov:size")),
                "sha256": _plain(attrs.get("mlflowprov:sha256")),
                "uri": _plain(attrs.get("prov:location")),
                "kind": "model-file" if "mlflowprov:ModelFile" in kinds else "artifact"})


def _our_metric(path: Path, run_id: str | None, identifier: str,
                attrs: dict[str, Any]) -> MetricRef:
    file_name = _plain(attrs.get("mlflowprov:file"))
    variable = _plain(attrs.get("mlflowprov:variable"))
    file = _resolve(path, file_name, layout.run_dir_name(run_id or "")) if file_name else None
    storage = "none" if file is None else {".nc": "netcdf-variable",
                                           ".zarr": "zarr-variable"}.get(file.suffix, "csv")
    return MetricRef(run_id=run_id, key=_plain(attrs.get("mlflowprov:key")),
                     context=_plain(attrs.get("mlflowprov:context")),
                     source=_plain(attrs.get("mlflowprov:source")),
                     count=_int_or_none(attrs.get("mlflowprov:count")),
                     storage=storage, file=file, variable=variable, entity_id=identifier)


# --- yProv4ML documents ---------------------------------------------------------------------

def _read_yprov4ml_inline(doc: ProvenanceDocument, records: list[_Record]) -> None:
    """v0/v1: ``prov-ml:type`` on entities, metric lists inline."""
    stage = next((r.attributes for r in records if _types(r.attributes) == {"LearningStage"}), {})
    run_id = _plain(stage.get("prov-ml:run_id"))
    experiment = next((_plain(r.attributes.get("prov-ml:experiment_name")) for r in records
                       if "Experiment" in _types(r.attributes)), None)
    values = {r.identifier: _plain(r.attributes.get("prov-ml:parameter_value"))
              for r in records if "Parameter" in _types(r.attributes)}
    doc.runs.append({"run_id": run_id, "name": experiment, "status": None,
                     "start_time": _epoch_seconds(values.get("execution_start_time")),
                     "end_time": _epoch_seconds(values.get("execution_end_time")),
                     "user": _plain(stage.get("prov-ml:user_id"))})
    doc.params.extend({"run_id": run_id, "name": name, "value": value, "context": None}
                      for name, value in values.items())
    for record in records:
        attrs = record.attributes
        if "Metric" in _types(attrs):
            doc.metrics.append(_inline_metric(doc.path, run_id, record.identifier, attrs))
        elif "prov-ml:artifact_path" in attrs or "ModelVersion" in _types(attrs):
            reference = _plain(attrs.get("prov-ml:artifact_path")
                               or attrs.get("prov-ml:artifact_uri"))
            doc.artifacts.append({"run_id": run_id, "path": reference, "size": None,
                                  "sha256": None, "uri": reference,
                                  "kind": "model" if "ModelVersion" in _types(attrs)
                                  else "artifact"})


def _inline_metric(path: Path, run_id: str | None, identifier: str,
                   attrs: dict[str, Any]) -> MetricRef:
    steps, values, stamps = (str(_plain(attrs.get(f"prov-ml:metric_{part}_list", "")))
                             for part in ("epoch", "value", "timestamp"))
    inline = (steps, values, stamps)
    external = _plain(attrs.get("prov-ml:artifact_uri"))
    try:
        items = parse_list(inline[1])
        count = None if _contains_ellipsis(items) else len(items)
    except ValueError:
        count = None  # get_metric says why when asked for the series
    return MetricRef(run_id=run_id, key=_plain(attrs.get("prov-ml:name")),
                     context=_plain(attrs.get("prov-ml:context")),
                     source=_plain(attrs.get("prov-ml:source")) or None, count=count,
                     storage="inline", file=_resolve(path, external) if external else None,
                     inline=inline, entity_id=identifier)


def _read_yprov4ml_v2(doc: ProvenanceDocument, records: list[_Record]) -> None:
    """v2: ``context:`` activities with ``yProv4ML:level``; metrics in ``.nc``, ``.zarr``
    or text files."""
    top = next((r.attributes for r in records if r.section == "activity"
                and _int_or_none(r.attributes.get("yProv4ML:level")) == 0), {})
    run_id = str(_plain(top.get("yProv4ML:run_id")))
    doc.runs.append({"run_id": run_id, "name": _plain(top.get("yProv4ML:experiment_name")),
                     "status": None, "start_time": _epoch_seconds(top.get("execution_start_time")),
                     "end_time": _epoch_seconds(top.get("execution_end_time")), "user": None})
    for record in records:
        attrs = record.attributes
        if record.section == "activity":
            doc.params.extend({"run_id": run_id, "name": name, "value": _plain(value),
                               "context": record.identifier.removeprefix("context:")}
                              for name, value in attrs.items() if ":" not in name
                              and not name.startswith("execution_"))
        elif "yProv4ML:context" in attrs:
            file = _resolve(doc.path, _plain(attrs.get("yProv4ML:path")))
            doc.metrics.append(MetricRef(
                run_id=run_id, key=_plain(attrs.get("yProv4ML:label")),
                context=_plain(attrs.get("yProv4ML:context")),
                source=_plain(attrs.get("yProv4ML:source")), count=None,
                storage="yprov4ml-file", file=file, entity_id=record.identifier))
        elif _plain(attrs.get("yProv4ML:role")) == "output":
            reference = _plain(attrs.get("yProv4ML:path"))
            doc.artifacts.append({"run_id": run_id, "path": reference, "size": None,
                                  "sha256": None, "uri": reference, "kind": "artifact"})


def _read_yprov4ml_v3(doc: ProvenanceDocument, records: list[_Record]) -> None:
    """v3: ``yprov:``/``provml:`` prefixes, ``//``-joined ids, metrics in CSV files."""
    top = next((r for r in records if r.section == "activity"
                and "yprov:run_id" in r.attributes), None)
    attrs_top = top.attributes if top else {}
    run_id = _plain(attrs_top.get("yprov:run_id"))
    doc.runs.append({"run_id": run_id, "name": _plain(attrs_top.get("yprov:experiment_name")),
                     "status": None, "start_time": _iso_time(attrs_top.get("prov:startedAtTime")),
                     "end_time": _iso_time(attrs_top.get("prov:endedAtTime")), "user": None})
    for record in records:
        attrs, kinds = record.attributes, _types(record.attributes)
        if record.section != "entity":
            continue
        context = record.identifier.rsplit("//", 1)[-1] if "//" in record.identifier else None
        if "provml:Metric" in kinds:
            doc.metrics.append(MetricRef(
                run_id=run_id, key=_plain(attrs.get("prov:label")),
                context=_plain(attrs.get("yprov:context")),
                source=_plain(attrs.get("yprov:source")), count=None, storage="yprov4ml-file",
                file=_resolve(doc.path, _plain(attrs.get("dcterms:identifier"))),
                entity_id=record.identifier))
        elif "provml:HyperParameter" in kinds:
            doc.params.append({"run_id": run_id, "name": _plain(attrs.get("prov:label")),
                               "value": _plain(attrs.get("prov:value")), "context": context})
        elif "yprov:file_size" in attrs and not _plain(attrs.get("prov:label", "")).startswith(
                "Original_"):
            reference = _plain(attrs.get("dcterms:identifier"))
            doc.artifacts.append({"run_id": run_id, "path": reference,
                                  "size": _int_or_none(attrs.get("yprov:file_size")),
                                  "sha256": None, "uri": reference,
                                  "kind": "model" if "provml:Model" in kinds else "artifact"})


_READERS = {"mlflow-prov": _read_mlflow_prov, "yprov4ml-v0": _read_yprov4ml_inline,
            "yprov4ml-v1": _read_yprov4ml_inline, "yprov4ml-v2": _read_yprov4ml_v2,
            "yprov4ml-v3": _read_yprov4ml_v3}


# --- series ---------------------------------------------------------------------------------

def _normalise_context(context: str | None) -> str | None:
    return str(context).lower().removeprefix("context.") if context else None


def _names(ref: MetricRef) -> set[str]:
    """Every name a user may pass for ``ref``: its key, its entity id, ``<key>_<context>``,
    and for our keys with a context prefix (``val/loss``) the key without it (``loss``), the
    name a prov4ml script logged."""
    names = {ref.key}
    if ref.entity_id:
        names.add(ref.entity_id)
    if ref.context:
        names.add(f"{ref.key}_{ref.context}")
        if "/" in ref.key:
            names.add(ref.key.split("/", 1)[1])
    return names


def _find_metric(doc: ProvenanceDocument, key: str, context: str | None,
                 run_id: str | None) -> MetricRef:
    matches = [m for m in doc.metrics if key in _names(m)
               and (context is None or _normalise_context(m.context) == _normalise_context(context))
               and (run_id is None or m.run_id == run_id)]
    if len(matches) > 1:  # an exact entity id beats a name shared by several contexts
        matches = [m for m in matches if m.entity_id == key] or matches
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise KeyError(f"{doc.path}: no metric {key!r}"
                       + (f" in context {context!r}" if context else ""))
    choices = sorted({f"context={m.context!r} run_id={m.run_id!r}" for m in matches})
    raise KeyError(f"{doc.path}: metric {key!r} is ambiguous; pass one of: {'; '.join(choices)}")


def _numeric_values(frame: pd.DataFrame, key: str) -> pd.Series:
    if frame["value"].dtype == object:
        raise ValueError(f"metric {key!r} holds a list per step; aggregate the lists with "
                         "get_metric(...)['value'] as you need")
    return frame["value"]


def _require_file(ref: MetricRef) -> Path:
    if ref.file is None or not ref.file.exists():
        raise ProvenanceReadError(ref.file or "(no file)",
                                  f"metric file of {ref.key!r} ({ref.context}) is missing")
    return ref.file


def _value_column(values: Any) -> np.ndarray:
    """float64, or an object column of lists when any per-step value is a list."""
    items = list(values)
    if not any(isinstance(item, list) for item in items):
        return np.asarray(items, dtype=np.float64)
    column = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        column[index] = item
    return column


def _frame(path: Path, steps: Any, timestamps: Any, values: Any) -> pd.DataFrame:
    steps, timestamps, values = list(steps), list(timestamps), list(values)
    if not len(steps) == len(timestamps) == len(values):
        raise ProvenanceReadError(path, f"metric columns do not line up ({len(steps)} steps, "
                                        f"{len(values)} values, {len(timestamps)} timestamps)")
    try:
        return pd.DataFrame({"step": np.asarray(steps, dtype=np.int64),
                             "timestamp": np.rint(np.asarray(timestamps, dtype=np.float64))
                             .astype(np.int64),
                             "value": _value_column(values)})
    except (TypeError, ValueError) as exc:
        raise ProvenanceReadError(path, f"metric columns are not numbers ({exc})") from exc


# --- parsing lists as yProv4ML wrote them (str() of a list or numpy array), never eval -----

_SEPARATORS = " \t\r\n,"
_TOKEN = re.compile(r"(?:np|numpy)\.\w+\([^()]*\)|[^\s,\[\]]+")
_NUMPY_SCALAR = re.compile(r"(?:np|numpy)\.\w+\((.*)\)")
_NUMPY_BOOLS = {"np.True_": True, "np.False_": False, "True": True, "False": False}


def parse_list(text: str) -> list[Any]:
    """The items of a list written as text, parsed without evaluating anything.

    Accepts Python's and numpy's spellings (``[1, 2]``, ``[1 2]``, ``[[0 1]\\n [1 0]]``),
    numpy 2 scalar reprs (``np.float64(0.5)``), ``nan``/``inf``, ``None`` (read as NaN:
    nothing was measured), booleans, nested lists and
    quoted lists (``['[False, True]', ...]``, how per-step lists were stored). numpy's
    truncation ``...`` becomes ``Ellipsis``. Raises ValueError for anything else.
    """
    start = _skip(text, 0)
    if not text[start:start + 1] == "[":
        raise ValueError(f"not a list: {text[:40]!r}")
    value, end = _parse_value(text, start)
    if _skip(text, end) != len(text):
        raise ValueError(f"text after the list: {text[end:end + 40]!r}")
    return value


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SEPARATORS:
        index += 1
    return index


def _parse_value(text: str, index: int) -> tuple[Any, int]:
    char = text[index]
    if char == "[":
        items: list[Any] = []
        index = _skip(text, index + 1)
        while index < len(text) and text[index] != "]":
            item, index = _parse_value(text, index)
            items.append(item)
            index = _skip(text, index)
        if index >= len(text):
            raise ValueError("unclosed '['")
        return items, index + 1
    if char in "'\"":
        end = text.find(char, index + 1)
        if end < 0:
            raise ValueError("unclosed quote")
        return _parse_cell(text[index + 1:end]), end + 1
    match = _TOKEN.match(text, index)
    if match is None:
        raise ValueError(f"unexpected {text[index:index + 20]!r}")
    return _atom(match.group()), match.end()


def _parse_cell(text: str) -> Any:
    """One value as written in a list item or a text file cell: a number or a list."""
    stripped = text.strip()
    return parse_list(stripped) if stripped.startswith("[") else _atom(stripped)


def _atom(token: str) -> Any:
    if token == "...":
        return ...
    if token in _NUMPY_BOOLS:
        return _NUMPY_BOOLS[token]
    if token == "None":  # yProv4ML v3 logs None when there was nothing to measure (no GPU)
        return float("nan")
    scalar = _NUMPY_SCALAR.fullmatch(token)
    if scalar:
        return _atom(scalar.group(1).strip())
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            raise ValueError(f"non-number {token[:40]!r}") from None


def _contains_ellipsis(items: list[Any]) -> bool:
    return any(item is ... or (isinstance(item, list) and _contains_ellipsis(item))
               for item in items)


# --- readers, one per storage ---------------------------------------------------------------

def _netcdf(path: Path) -> Any:
    import netCDF4

    try:
        dataset = netCDF4.Dataset(path)
    except OSError as exc:
        raise ProvenanceReadError(path, f"not a readable NetCDF file ({exc})") from exc
    dataset.set_auto_mask(False)
    return dataset


def _zarr(path: Path) -> Any:
    import zarr

    try:
        return zarr.open_group(str(path), mode="r")
    except (OSError, ValueError, KeyError) as exc:
        raise ProvenanceReadError(path, f"not a readable Zarr store ({exc})") from exc


def _read_our_netcdf(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    path = _require_file(ref)
    with _netcdf(path) as dataset:
        if ref.variable not in dataset.variables:
            raise ProvenanceReadError(path, f"has no variable {ref.variable!r}")
        variable = dataset[ref.variable]
        time_name, step_name = getattr(variable, "coordinates",
                                       f"{ref.variable}_time {ref.variable}_step").split()
        seconds = dataset[time_name][:]
        return _frame(path, dataset[step_name][:], seconds * 1000, variable[:])


def _read_our_zarr(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    """Our Zarr store: the same arrays and attributes as ``metrics.nc`` (writers/zarr.py)."""
    path = _require_file(ref)
    group = _zarr(path)
    if ref.variable not in group:
        raise ProvenanceReadError(path, f"has no array {ref.variable!r}")
    variable = group[ref.variable]
    time_name, step_name = str(variable.attrs.get(
        "coordinates", f"{ref.variable}_time {ref.variable}_step")).split()
    return _frame(path, group[step_name][:], group[time_name][:] * 1000, variable[:])


def _read_our_csv(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    path = _require_file(ref)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ProvenanceReadError(path, f"not a readable CSV file ({exc})") from exc
    missing = [name for name in ("step", "timestamp", "value") if name not in frame.columns]
    if missing:
        raise ProvenanceReadError(path, f"missing column(s) {missing}")
    return _frame(path, frame["step"], frame["timestamp"], frame["value"])


def _read_yprov4ml_file(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    """A yProv4ML metric file by its real format: NetCDF, Zarr, or text (CSV/TXT)."""
    path = _require_file(ref)
    if path.suffix == ".nc":
        with _netcdf(path) as dataset:
            return _yprov4ml_arrays(path, dataset.variables, lambda name: dataset[name][:])
    if path.suffix == ".zarr":
        group = _zarr(path)
        return _yprov4ml_arrays(path, group, lambda name: group[name][:])
    return _read_yprov4ml_text(path)


def _yprov4ml_arrays(path: Path, names: Any, read: Any) -> pd.DataFrame:
    """yProv4ML's NetCDF and Zarr layout: arrays ``epochs``, ``values``, ``timestamps`` (ms)."""
    missing = [v for v in ("epochs", "values", "timestamps") if v not in names]
    if missing:
        raise ProvenanceReadError(path, f"not a yProv4ML metric file (no {missing})")
    return _frame(path, read("epochs"), read("timestamps"), read("values"))


def _read_yprov4ml_text(path: Path) -> pd.DataFrame:
    """yProv4ML's text files, in both layouts it wrote.

    v1/v2 (``.txt``, or ``.csv`` from ``MetricsType.CSV``): a ``name,context,source`` line, then
    ``epoch,value,timestamp`` rows; v3: an ``epoch,value,timestep`` header, then rows. The
    separator is whatever ``csv_separator`` was (detected on the first line). A value may
    be a list holding the separator, so a row is split as first field, last field, middle.
    """
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvenanceReadError(path, f"not a readable text file ({exc})") from exc
    if not lines:
        raise ProvenanceReadError(path, "empty metric file (not even its header line)")
    separator = next((s for s in (",", ";", "\t", "|") if lines[0].count(s) == 2), ",")
    steps, values, timestamps = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(separator)
        if len(fields) < 3:
            raise ProvenanceReadError(path, f"line {number}: expected epoch{separator}value"
                                            f"{separator}timestamp, got {line[:60]!r}")
        try:
            steps.append(_atom(fields[0].strip()))
            timestamps.append(_atom(fields[-1].strip()))
            values.append(_parse_cell(separator.join(fields[1:-1])))
        except ValueError as exc:
            raise ProvenanceReadError(path, f"line {number}: {exc}") from exc
    return _frame(path, steps, timestamps, values)


def _read_inline(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    """v0/v1 inline lists; a truncated one is read from its full copy when present."""
    steps, values, timestamps = ref.inline or ("", "", "")
    if any("..." in text for text in (steps, values, timestamps)):
        if ref.file is not None and ref.file.exists():
            return _read_yprov4ml_file(doc, ref)
        where = f"; its full copy {ref.file} is missing" if ref.file else " and has no full copy"
        raise ProvenanceReadError(doc.path, f"inline list of metric {ref.key!r} "
                                            f"({ref.context}) is truncated ('...'){where}")
    try:
        parsed = [parse_list(text) for text in (steps, timestamps, values)]
    except ValueError as exc:
        raise ProvenanceReadError(doc.path, f"inline list of metric {ref.key!r} is not a list "
                                            f"of numbers ({exc})") from exc
    return _frame(doc.path, *parsed)


def _not_exported(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    raise ProvenanceReadError(doc.path, f"no metric file was exported for {ref.key!r}; its "
                                        "series is in MLflow (export with --metrics-format "
                                        "netcdf, zarr or csv)")


_SERIES_READERS = {
    "netcdf-variable": _read_our_netcdf, "zarr-variable": _read_our_zarr, "csv": _read_our_csv,
    "inline": _read_inline, "yprov4ml-file": _read_yprov4ml_file, "none": _not_exported,
}
