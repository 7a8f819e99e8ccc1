"""OpenLineage run events for MLflow runs, built from plain facts about one run.

Why here, in capture: the live emitter (:mod:`mlflow_prov.openlineage_emitter`) runs inside
MLflow and may not import ``exporters``, and ``mlflow-prov openlineage`` must send the very
same events for the same run; so both turn what they read into a :class:`RunFacts` and call
:func:`run_events`. The ``openlineage-python`` client is imported only when an event is
built (the ``openlineage`` extra), never when capture loads.

Mapping (docs/export.md): an MLflow experiment is an OpenLineage job, a run is a run of it
(its id as a UUID), a nested run carries the ``parent`` facet; datasets logged with
``log_input`` are inputs (``version`` = MLflow's digest, ``schema`` = its column spec);
logged models, registered model versions and artifacts are outputs; params and metric
summaries travel in the custom facets ``mlflowprov_params`` and ``mlflowprov_metrics``,
whose JSON schemas ship in ``mlflow_prov/openlineage_facets/`` and are named by
:data:`PARAMS_SCHEMA_URL` and :data:`METRICS_SCHEMA_URL`.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlflow_prov.vocabulary import REDACTED, is_secret_key, looks_like_credential, redact_text

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

PRODUCER = "https://w3id.org/mlflow-prov/openlineage"
FACETS_BASE_URL = "https://w3id.org/mlflow-prov/openlineage/facets/1-0-0/"
PARAMS_FACET = "mlflowprov_params"
METRICS_FACET = "mlflowprov_metrics"
PARAMS_SCHEMA_URL = FACETS_BASE_URL + "MlflowParamsRunFacet.json#/$defs/MlflowParamsRunFacet"
METRICS_SCHEMA_URL = FACETS_BASE_URL + "MlflowMetricsRunFacet.json#/$defs/MlflowMetricsRunFacet"
DEFAULT_NAMESPACE = "mlflow"
# MLflow run status -> OpenLineage event type of the run's last transition
TERMINAL_EVENTS = {"FINISHED": "COMPLETE", "FAILED": "FAIL", "KILLED": "ABORT"}
# a random namespace, fixed for good: the UUID of a run id that is not 32 hex digits
_RUN_ID_NAMESPACE = uuid.UUID("6a0f7d8e-3c1b-4f5e-9a2d-8b7c6e5f4a31")


@dataclass(frozen=True)
class LineageDataset:
    """One input or output: its OpenLineage name, and what identifies its content."""

    name: str
    version: str | None = None  # MLflow's dataset digest, a file's sha256, a model id
    fields: tuple[tuple[str, str], ...] = ()  # (column, type) from MLflow's schema


@dataclass(frozen=True)
class MetricFacts:
    """One metric key: its latest value, and, where the reader counted them, the series'
    count, minimum, maximum and step range (``None`` where unknown)."""

    key: str
    last: float
    count: int | None = None
    min: float | None = None
    max: float | None = None
    first_step: int | None = None
    last_step: int | None = None


@dataclass(frozen=True)
class RunFacts:
    """What the events of one run say, read by the emitter or by the exporter."""

    run_id: str
    experiment_name: str
    status: str
    start_ms: int | None
    end_ms: int | None = None
    parent_run_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: tuple[MetricFacts, ...] = ()
    inputs: tuple[LineageDataset, ...] = ()
    outputs: tuple[LineageDataset, ...] = ()


def openlineage_run_id(run_id: str) -> str:
    """An MLflow run id as the UUID OpenLineage requires: the same 128 bits for MLflow's
    32 hex digits, a name-based UUID for any other id."""
    try:
        return str(uuid.UUID(hex=run_id))
    except ValueError:
        return str(uuid.uuid5(_RUN_ID_NAMESPACE, run_id))


def run_events(facts: RunFacts, namespace: str = DEFAULT_NAMESPACE) -> list[RunEvent]:
    """The run's START and, once it ended, its COMPLETE, FAIL or ABORT event."""
    events = [run_event(facts, "START", facts.start_ms, namespace)]
    if facts.status in TERMINAL_EVENTS:
        events.append(run_event(facts, TERMINAL_EVENTS[facts.status],
                                facts.end_ms or facts.start_ms, namespace))
    return events


def run_event(facts: RunFacts, event_type: str, time_ms: int | None,
              namespace: str = DEFAULT_NAMESPACE) -> RunEvent:
    """One event of the run. Inputs and params go in every event; outputs and metrics are
    known once the run ended, so they go in its last."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import job_type_job

    ended = event_type != "START"
    run_facets: dict[str, Any] = {PARAMS_FACET: _params_facet(facts.params)}
    if facts.parent_run_id:
        run_facets["parent"] = _parent_facet(facts.parent_run_id, facts.experiment_name,
                                             namespace)
    if ended:
        run_facets[METRICS_FACET] = _metrics_facet(facts.metrics)
    job_facets: dict[str, Any] = {"jobType": job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="MLFLOW", jobType="RUN", producer=PRODUCER)}
    return RunEvent(
        eventType=RunState(event_type), eventTime=_iso(time_ms), producer=PRODUCER,
        run=Run(runId=openlineage_run_id(facts.run_id), facets=run_facets),
        job=Job(namespace=namespace, name=redact_text(facts.experiment_name),
                facets=job_facets),
        inputs=[_input(d, namespace) for d in facts.inputs],
        outputs=[_output(d, namespace) for d in facts.outputs] if ended else [])


def schema_fields(mlflow_schema: str | None) -> tuple[tuple[str, str], ...]:
    """(column, type) pairs of an MLflow dataset schema (``{"mlflow_colspec": [...]}``,
    or a tensor spec); none for a schema MLflow did not record or cannot be read."""
    try:
        parsed = json.loads(mlflow_schema or "{}")
    except ValueError:
        return ()
    specs = parsed.get("mlflow_colspec") or parsed.get("mlflow_tensorspec") or []
    if not isinstance(specs, list):
        return ()
    return tuple((str(s.get("name", f"column_{i}")), _spec_type(s))
                 for i, s in enumerate(specs) if isinstance(s, dict))


def dataset_name(source: str | None, name: str) -> str:
    """An MLflow dataset's OpenLineage name: the producing run's artifact name when its
    source is a ``runs:/`` URI (so the two connect), else ``datasets/<name>``."""
    uri = _source_uri(source)
    if uri.startswith("runs:/"):
        run_id, _, path = uri.removeprefix("runs:/").partition("/")
        return artifact_name(run_id, path)
    return f"datasets/{name}"


def artifact_name(run_id: str, path: str) -> str:
    return f"runs/{run_id}/artifacts/{path}"


def logged_model_name(model_id: str) -> str:
    return f"models/{model_id}"


def model_version_name(name: str, version: int | str) -> str:
    return f"registered-models/{name}/{version}"


def safe_params(params: Mapping[str, str]) -> dict[str, str]:
    """Params as an event may carry them: a secret's value never leaves (its key says so, or
    it looks like a credential), and credentials inside other values are cut out."""
    return {key: REDACTED if is_secret_key(key) or looks_like_credential(str(value))
            else redact_text(str(value)) for key, value in params.items()}


# --- facets ----------------------------------------------------------------------------------

@functools.cache
def _custom_facets() -> tuple[type, type]:
    """The two custom run facet classes, defined once the client is imported."""
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class MlflowParamsRunFacet(RunFacet):
        params: dict[str, str] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return PARAMS_SCHEMA_URL

    @attr.define
    class MlflowMetricsRunFacet(RunFacet):
        metrics: dict[str, dict[str, Any]] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return METRICS_SCHEMA_URL

    return MlflowParamsRunFacet, MlflowMetricsRunFacet


def _params_facet(params: Mapping[str, str]) -> Any:
    return _custom_facets()[0](params=dict(sorted(safe_params(params).items())),
                               producer=PRODUCER)


def _metrics_facet(metrics: tuple[MetricFacts, ...]) -> Any:
    summaries = {m.key: _metric_summary(m) for m in sorted(metrics, key=lambda m: m.key)}
    return _custom_facets()[1](metrics=summaries, producer=PRODUCER)


def _metric_summary(metric: MetricFacts) -> dict[str, Any]:
    """JSON has no NaN or infinity: such a value is sent as its name (``"NaN"``, ...)."""
    summary = {"last": metric.last, "count": metric.count, "min": metric.min,
               "max": metric.max, "firstStep": metric.first_step, "lastStep": metric.last_step}
    return {k: _json_number(v) for k, v in summary.items() if v is not None}


def _json_number(value: float | int) -> float | int | str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _parent_facet(parent_run_id: str, experiment_name: str, namespace: str) -> Any:
    from openlineage.client.facet_v2 import parent_run

    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=openlineage_run_id(parent_run_id)),
        job=parent_run.Job(namespace=namespace, name=redact_text(experiment_name)),
        producer=PRODUCER)


def _dataset_facets(dataset: LineageDataset) -> dict[str, Any]:
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    facets: dict[str, Any] = {}
    if dataset.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=dataset.version, producer=PRODUCER)
    if dataset.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t)
                    for n, t in dataset.fields], producer=PRODUCER)
    return facets


def _input(dataset: LineageDataset, namespace: str) -> Any:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=namespace, name=redact_text(dataset.name),
                        facets=_dataset_facets(dataset))


def _output(dataset: LineageDataset, namespace: str) -> Any:
    from openlineage.client.event_v2 import OutputDataset

    return OutputDataset(namespace=namespace, name=redact_text(dataset.name),
                         facets=_dataset_facets(dataset))


def _spec_type(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "unknown")
    return str(kind.get("type", "object") if isinstance(kind, dict) else kind)


def _source_uri(source: str | None) -> str:
    try:
        parsed = json.loads(source or "{}")
    except ValueError:
        return ""
    uri = parsed.get("uri") if isinstance(parsed, dict) else None
    return uri if isinstance(uri, str) else ""


def _iso(time_ms: int | None) -> str:
    """Epoch milliseconds as the ISO 8601 time OpenLineage wants (now when unknown)."""
    moment = (datetime.now(UTC) if time_ms is None
              else datetime.fromtimestamp(time_ms / 1000, UTC))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
