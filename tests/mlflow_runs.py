"""Real MLflow runs in a ``sqlite:///`` store, read back into export records.

Writers are tested against what MLflow really stores (NaN as a flag, +/-inf clamped to
+/-1.7976931348623157e308), not against hand-made arrays. ``run_record`` and ``metric_series``
stand in for the exporter's collector where a test exercises one writer on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from store_templates import sqlite_store

from exporters.records import ArtifactRecord, MetricSeries, MetricSummary, RunRecord

BATCH = 1000
BASE_TIME_MS = 1_722_514_379_399


def client_for(tmp_path: Path) -> MlflowClient:
    """A client on a fresh sqlite store with artifacts under ``tmp_path``."""
    return MlflowClient(tracking_uri=sqlite_store(tmp_path / "mlflow.db"))


def new_run(client: MlflowClient, experiment: str, tmp_path: Path,
            params: Mapping[str, str] | None = None, run_name: str = "r") -> str:
    """Create a run in ``experiment`` (created if needed, artifacts in tmp_path)."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment_id, run_name=run_name,
                            tags={"mlflow.source.name": "train.py",
                                  "mlflow.source.git.commit": "0123abcd",
                                  "mlflow.source.git.repoURL": "https://example.org/ml/train",
                                  "mlflow.user": "alice"})
    if params:
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    return run.info.run_id


def log_series(client: MlflowClient, run_id: str, key: str, values: Sequence[float],
               steps: Sequence[int] | None = None) -> None:
    """Log a whole series with ``log_batch`` in chunks of 1000 (MLflow's batch limit)."""
    steps = list(range(len(values))) if steps is None else list(steps)
    metrics = [Metric(key, float(v), BASE_TIME_MS + 7 * i, int(s))
               for i, (v, s) in enumerate(zip(values, steps, strict=True))]
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + BATCH])


def source_of(key: str) -> str:
    if key.startswith("system/carbon/"):
        return "carbon"
    return "system" if key.startswith("system/") else "user"


def metric_series(client: MlflowClient, run_id: str) -> Iterator[MetricSeries]:
    """Each metric of the run as one series, in ``get_metric_history`` order."""
    for key in sorted(client.get_run(run_id).data.metrics):
        history = client.get_metric_history(run_id, key)
        yield MetricSeries(
            run_id=run_id, key=key, context=None, source=source_of(key),
            steps=np.fromiter((m.step for m in history), np.int64, len(history)),
            timestamps_ms=np.fromiter((m.timestamp for m in history), np.int64, len(history)),
            values=np.fromiter((m.value for m in history), np.float64, len(history)))


def summary(series: MetricSeries) -> MetricSummary:
    """What the PROV side would record about a series (used for RO-Crate resourceUsage)."""
    finite = series.values[np.isfinite(series.values)]
    return MetricSummary(
        key=series.key, context=series.context, source=series.source,
        count=len(series.values), first_step=int(series.steps[0]),
        last_step=int(series.steps[-1]),
        first_time=datetime.fromtimestamp(series.timestamps_ms[0] / 1000, UTC),
        last_time=datetime.fromtimestamp(series.timestamps_ms[-1] / 1000, UTC),
        min=float(finite.min()) if finite.size else math.nan,
        max=float(finite.max()) if finite.size else math.nan,
        last=float(series.values[-1]))


def artifacts_of(client: MlflowClient, run_id: str) -> tuple[ArtifactRecord, ...]:
    """The run's artifact files (local store), hashed like the collector does."""
    import hashlib

    root = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    records = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        records.append(ArtifactRecord(path=path.relative_to(root).as_posix(), size=len(data),
                                      sha256=hashlib.sha256(data).hexdigest(),
                                      uri=path.as_uri()))
    return tuple(records)


def run_record(client: MlflowClient, run_id: str,
               metrics: Sequence[MetricSummary] = ()) -> RunRecord:
    """The RunRecord the collector would build, from stock MLflow calls."""
    run = client.get_run(run_id)
    info, tags = run.info, run.data.tags
    return RunRecord(
        run_id=run_id, name=info.run_name, experiment_id=info.experiment_id,
        status=info.status, lifecycle_stage=info.lifecycle_stage,
        start_time=datetime.fromtimestamp(info.start_time / 1000, UTC),
        end_time=datetime.fromtimestamp(info.end_time / 1000, UTC) if info.end_time else None,
        user=tags.get("mlflow.user"), artifact_uri=info.artifact_uri,
        source_name=tags.get("mlflow.source.name"),
        git_commit=tags.get("mlflow.source.git.commit"),
        git_repo_url=tags.get("mlflow.source.git.repoURL"),
        params=dict(run.data.params), tags=dict(tags),
        metric_keys=tuple(sorted(run.data.metrics)),
        artifacts=artifacts_of(client, run_id), metrics=tuple(metrics))


def log_dataset(client: MlflowClient, run_id: str, dataset: object, context: str) -> None:
    """``mlflow.log_input(dataset, context)`` through the client, not the fluent API: whatever
    experiment an earlier test left active, the input goes to ``run_id``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    fields = dataset.to_dict()  # type: ignore[attr-defined]
    entity = Dataset(name=fields["name"], digest=fields["digest"],
                     source_type=fields["source_type"], source=fields["source"],
                     schema=fields.get("schema"), profile=fields.get("profile"))
    client.log_inputs(run_id, [DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, context)])])
