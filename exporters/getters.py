"""Read provenance back into pandas: our PROV-JSON and yProv4ML's, generations v0 to v3.

    doc = load("out/my-experiment/run-<id>/prov.json")
    list_metrics(doc)                        # key, context, source, count, file
    get_metric(doc, "loss", context="training")   # step, timestamp, value, epoch

Supported documents (``ProvenanceDocument.generation``):

* ``mlflow-prov``: ``prov.json`` / ``experiment.prov.json`` written by this package; metric
  entities name their ``metrics.nc`` variable or CSV file (``mlflowprov:file``/``variable``).
* ``yprov4ml-v0`` / ``yprov4ml-v1``: ``prov-ml:`` metrics with the series inline as strings
  (numpy-truncated with ``...`` past 1000 values; v1 also points at an external text file).
* ``yprov4ml-v2``: ``context:`` activities, metrics in external ``.nc`` files
  (``epochs``/``values``/``timestamps``).
* ``yprov4ml-v3``: ``yprov:``/``provml:`` prefixes, metrics in CSV files
  (``epoch,value,timestep``).

Nothing is ever evaluated: inline lists are split and parsed as numbers. What cannot be read
exactly (a truncated inline list, a missing metric file, a broken document) raises
:class:`ProvenanceReadError` naming the file and the reason, never a guess.

``timestamp`` is integer milliseconds since the Unix epoch in every generation; ``epoch`` is
an alias of ``step`` for users of yProv4ML's getters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
_SPLIT = re.compile(r"[,\s]+")


class ProvenanceReadError(Exception):
    """A provenance document, or a metric file it points at, cannot be read exactly."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class MetricRef:
    """One metric series as a document describes it, and where its points are.

    ``storage`` is ``netcdf-variable`` (our layout), ``yprov4ml-netcdf``, ``csv`` (ours),
    ``yprov4ml-csv``, ``yprov4ml-txt``, ``inline`` or ``none`` (the series stayed in MLflow).
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


@dataclass(frozen=True)
class _Record:
    """One PROV record (an id may carry several: yProv4ML writes lists)."""

    section: str
    identifier: str
    attributes: dict[str, Any]
    bundle: str | None


# --- public API -----------------------------------------------------------------------------

def load(path: str | Path) -> ProvenanceDocument:
    """Read a PROV-JSON file (or a run folder holding ``prov.json``) of any known generation."""
    path = Path(path)
    if path.is_dir():
        path = path / "prov.json"
    data = _read_json(path)
    generation = detect_generation(data)
    if generation is None:
        raise ProvenanceReadError(path, "PROV-JSON, but neither mlflow-prov's nor yProv4ML's "
                                        "(no known namespace prefix)")
    doc = ProvenanceDocument(path=path, generation=generation, lineage=list(_lineage(data)))
    _READERS[generation](doc, list(_records(data)))
    return doc


def list_runs(doc: ProvenanceDocument) -> pd.DataFrame:
    """One row per run: run_id, name, status, start_time, end_time, user."""
    columns = ["run_id", "name", "status", "start_time", "end_time", "user"]
    return pd.DataFrame(doc.runs, columns=columns)


def list_metrics(doc: ProvenanceDocument) -> pd.DataFrame:
    """One row per series: key, context, source, count (None if unknown), file, run_id."""
    rows = [{"key": m.key, "context": m.context, "source": m.source, "count": m.count,
             "file": str(m.file) if m.file else None, "run_id": m.run_id} for m in doc.metrics]
    return pd.DataFrame(rows, columns=[*METRIC_COLUMNS, "run_id"])


def get_metric(doc: ProvenanceDocument, key: str, context: str | None = None,
               run_id: str | None = None) -> pd.DataFrame:
    """The full series of ``key``: columns step, timestamp (ms), value (float64), epoch.

    ``context`` matches case-insensitively and without yProv4ML's ``Context.`` prefix, so
    ``"training"`` finds ``Context.TRAINING``. Raises KeyError for an unknown or ambiguous
    key, ProvenanceReadError when the points cannot be read exactly.
    """
    if not isinstance(context, str):
        context = None  # list_metrics gives NaN/None for "no context"
    ref = _find_metric(doc, key, context, run_id)
    frame = _SERIES_READERS[ref.storage](doc, ref)
    frame["epoch"] = frame["step"]
    return frame[SERIES_COLUMNS]


def get_params(doc: ProvenanceDocument) -> pd.DataFrame:
    """One row per parameter: run_id, name, value, context."""
    return pd.DataFrame(doc.params, columns=["run_id", "name", "value", "context"])


def get_artifacts(doc: ProvenanceDocument) -> pd.DataFrame:
    """One row per artifact or model file: run_id, path, size, sha256, uri, kind.

    yProv4ML v0/v1 describe one file in several records; the first description wins."""
    frame = pd.DataFrame(doc.artifacts,
                         columns=["run_id", "path", "size", "sha256", "uri", "kind"])
    return frame.drop_duplicates(subset=["run_id", "path"]).reset_index(drop=True)


def get_lineage(doc: ProvenanceDocument) -> pd.DataFrame:
    """Every PROV relation as an edge: relation, subject, object, bundle."""
    return pd.DataFrame(doc.lineage, columns=["relation", "subject", "object", "bundle"])


# --- reading the JSON -----------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProvenanceReadError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProvenanceReadError(path, f"not readable as JSON ({exc})") from exc
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


def _lineage(data: dict[str, Any], bundle: str | None = None) -> Iterator[dict[str, Any]]:
    for relation, (subject, obj) in RELATIONS.items():
        for value in (data.get(relation) or {}).values():
            for attributes in value if isinstance(value, list) else [value]:
                yield {"relation": relation, "subject": attributes.get(subject),
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
    return next((c for c in candidates if c.is_file()), candidates[0])


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
            doc.metrics.append(_our_metric(doc.path, run_id, attrs))
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


def _our_metric(path: Path, run_id: str | None, attrs: dict[str, Any]) -> MetricRef:
    file_name = _plain(attrs.get("mlflowprov:file"))
    variable = _plain(attrs.get("mlflowprov:variable"))
    file = _resolve(path, file_name, f"run-{run_id}") if file_name else None
    storage = "none" if file is None else (
        "netcdf-variable" if file.suffix == ".nc" else "csv")
    return MetricRef(run_id=run_id, key=_plain(attrs.get("mlflowprov:key")),
                     context=_plain(attrs.get("mlflowprov:context")),
                     source=_plain(attrs.get("mlflowprov:source")),
                     count=_int_or_none(attrs.get("mlflowprov:count")),
                     storage=storage, file=file, variable=variable)


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
            doc.metrics.append(_inline_metric(doc.path, run_id, attrs))
        elif "prov-ml:artifact_path" in attrs or "ModelVersion" in _types(attrs):
            reference = _plain(attrs.get("prov-ml:artifact_path")
                               or attrs.get("prov-ml:artifact_uri"))
            doc.artifacts.append({"run_id": run_id, "path": reference, "size": None,
                                  "sha256": None, "uri": reference,
                                  "kind": "model" if "ModelVersion" in _types(attrs)
                                  else "artifact"})


def _inline_metric(path: Path, run_id: str | None, attrs: dict[str, Any]) -> MetricRef:
    inline = tuple(str(_plain(attrs.get(f"prov-ml:metric_{part}_list", "")))
                   for part in ("epoch", "value", "timestamp"))
    external = _plain(attrs.get("prov-ml:artifact_uri"))
    truncated = any("..." in text for text in inline)
    count = None if truncated else len(_split_list(path, inline[1]))
    return MetricRef(run_id=run_id, key=_plain(attrs.get("prov-ml:name")),
                     context=_plain(attrs.get("prov-ml:context")),
                     source=_plain(attrs.get("prov-ml:source")) or None, count=count,
                     storage="inline", file=_resolve(path, external) if external else None,
                     inline=inline)


def _read_yprov4ml_v2(doc: ProvenanceDocument, records: list[_Record]) -> None:
    """v2: ``context:`` activities with ``yProv4ML:level``; metrics in ``.nc`` files."""
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
                storage="yprov4ml-netcdf" if file.suffix == ".nc" else "yprov4ml-txt",
                file=file))
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
                source=_plain(attrs.get("yprov:source")), count=None, storage="yprov4ml-csv",
                file=_resolve(doc.path, _plain(attrs.get("dcterms:identifier")))))
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
    return context.lower().removeprefix("context.") if context else None


def _find_metric(doc: ProvenanceDocument, key: str, context: str | None,
                 run_id: str | None) -> MetricRef:
    matches = [m for m in doc.metrics if m.key == key
               and (context is None or _normalise_context(m.context) == _normalise_context(context))
               and (run_id is None or m.run_id == run_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise KeyError(f"{doc.path}: no metric {key!r}"
                       + (f" in context {context!r}" if context else ""))
    choices = sorted({f"context={m.context!r} run_id={m.run_id!r}" for m in matches})
    raise KeyError(f"{doc.path}: metric {key!r} is ambiguous; pass one of: {'; '.join(choices)}")


def _require_file(ref: MetricRef) -> Path:
    if ref.file is None or not ref.file.is_file():
        raise ProvenanceReadError(ref.file or "(no file)",
                                  f"metric file of {ref.key!r} ({ref.context}) is missing")
    return ref.file


def _frame(path: Path, steps: Any, timestamps: Any, values: Any) -> pd.DataFrame:
    try:
        return pd.DataFrame({"step": np.asarray(steps, dtype=np.int64),
                             "timestamp": np.asarray(timestamps, dtype=np.int64),
                             "value": np.asarray(values, dtype=np.float64)})
    except (TypeError, ValueError) as exc:
        raise ProvenanceReadError(path, f"metric columns do not line up ({exc})") from exc


def _netcdf(path: Path) -> Any:
    import netCDF4

    try:
        dataset = netCDF4.Dataset(path)
    except OSError as exc:
        raise ProvenanceReadError(path, f"not a readable NetCDF file ({exc})") from exc
    dataset.set_auto_mask(False)
    return dataset


def _read_our_netcdf(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    path = _require_file(ref)
    with _netcdf(path) as dataset:
        if ref.variable not in dataset.variables:
            raise ProvenanceReadError(path, f"has no variable {ref.variable!r}")
        variable = dataset[ref.variable]
        time_name, step_name = getattr(variable, "coordinates",
                                       f"{ref.variable}_time {ref.variable}_step").split()
        seconds = dataset[time_name][:]
        return _frame(path, dataset[step_name][:], np.rint(seconds * 1000), variable[:])


def _read_csv(path: Path, columns: dict[str, str | int], skiprows: int = 0,
              header: int | None = 0) -> pd.DataFrame:
    """Read a metric CSV; ``columns`` maps our names to the file's."""
    try:
        frame = pd.read_csv(path, skiprows=skiprows, header=header)
    except (OSError, ValueError) as exc:
        raise ProvenanceReadError(path, f"not a readable CSV file ({exc})") from exc
    missing = [name for name in columns.values() if name not in frame.columns]
    if missing:
        raise ProvenanceReadError(path, f"missing column(s) {missing}")
    return _frame(path, frame[columns["step"]], frame[columns["timestamp"]],
                  frame[columns["value"]])


def _read_our_csv(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    return _read_csv(_require_file(ref), {"step": "step", "timestamp": "timestamp",
                                          "value": "value"})


def _read_yprov4ml_csv(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    return _read_csv(_require_file(ref), {"step": "epoch", "timestamp": "timestep",
                                          "value": "value"})


def _read_yprov4ml_txt(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    """yProv4ML's text files: a ``name,context,source`` line, then ``epoch,value,timestamp``."""
    return _read_csv(_require_file(ref), {"step": 0, "timestamp": 2, "value": 1},
                     skiprows=1, header=None)


def _read_yprov4ml_netcdf(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    """yProv4ML's per-metric files: ``epochs``, ``values`` (float32), ``timestamps``."""
    path = _require_file(ref)
    with _netcdf(path) as dataset:
        missing = [v for v in ("epochs", "values", "timestamps") if v not in dataset.variables]
        if missing:
            raise ProvenanceReadError(path, f"not a yProv4ML metric file (no {missing})")
        return _frame(path, dataset["epochs"][:], dataset["timestamps"][:],
                      dataset["values"][:])


def _split_list(path: Path, text: str) -> list[str]:
    """The items of a list written as text (``[1, 2]`` or numpy's ``[1 2]``), unevaluated."""
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        raise ProvenanceReadError(path, f"inline metric list is not a list: {text[:40]!r}")
    inner = stripped[1:-1].strip()
    return [item for item in _SPLIT.split(inner) if item] if inner else []


def _read_inline(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    """v0/v1 inline lists; a truncated one is read from its external file when present."""
    steps, values, timestamps = ref.inline or ("", "", "")
    if any("..." in text for text in (steps, values, timestamps)):
        if ref.file is not None and ref.file.is_file():
            return _read_yprov4ml_txt(doc, ref)
        where = f"; its full copy {ref.file} is missing" if ref.file else ""
        raise ProvenanceReadError(doc.path, f"inline list of metric {ref.key!r} "
                                            f"({ref.context}) is truncated ('...'){where}")
    try:
        parsed = [[float(item) for item in _split_list(doc.path, text)]
                  for text in (steps, timestamps, values)]
    except ValueError as exc:
        raise ProvenanceReadError(doc.path, f"inline list of metric {ref.key!r} holds a "
                                            f"non-number ({exc})") from exc
    return _frame(doc.path, *parsed)


def _not_exported(doc: ProvenanceDocument, ref: MetricRef) -> pd.DataFrame:
    raise ProvenanceReadError(doc.path, f"no metric file was exported for {ref.key!r}; its "
                                        "series is in MLflow (export with --metrics-format "
                                        "netcdf or csv)")


_SERIES_READERS = {
    "netcdf-variable": _read_our_netcdf, "csv": _read_our_csv, "inline": _read_inline,
    "yprov4ml-netcdf": _read_yprov4ml_netcdf, "yprov4ml-csv": _read_yprov4ml_csv,
    "yprov4ml-txt": _read_yprov4ml_txt, "none": _not_exported,
}
