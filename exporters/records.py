"""Typed records: what the exporters know about an MLflow experiment, independent of MLflow.

Why records: every writer (PROV, NetCDF, CSV, RO-Crate) reads these frozen dataclasses
instead of MLflow entities, so MLflow API changes touch ``collect.py`` only, and writers can be
tested with hand-built records. Times are timezone-aware UTC datetimes; metric points stay in
numpy arrays inside one :class:`MetricSeries` and are never kept for a whole experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from exporters.git_history import GitCommit

MetricSource = Literal["user", "system", "carbon"]


@dataclass(frozen=True)
class HistoryEvent:
    """One journal event about a run or experiment (only prov stores have them).

    ``writer`` holds who wrote it (user, host, pid, rank, client_address), already
    pseudonymised when the export asks for it.
    """

    seq: int
    time: datetime
    kind: str
    payload: dict[str, Any]
    writer: dict[str, Any]


@dataclass(frozen=True)
class MetricLocation:
    """Where the full series of one metric lives: a file relative to the run folder and the
    variable (NetCDF) or column set (CSV) inside it."""

    file: str
    variable: str


@dataclass(frozen=True, eq=False)
class MetricSeries:
    """All points of one metric key in one context, in ``get_metric_history`` order.

    ``eq=False``: numpy arrays do not compare to a single bool, so identity equality is the
    only safe default for a frozen dataclass holding them.
    """

    run_id: str
    key: str
    context: str | None
    source: MetricSource
    steps: np.ndarray  # int64
    timestamps_ms: np.ndarray  # int64, milliseconds since the Unix epoch (UTC)
    values: np.ndarray  # float64, may hold NaN and +/-inf
    dataset_digest: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class MetricSummary:
    """What the PROV document says about one series: never the points themselves.

    ``min``/``max``/``last`` may be NaN or +/-inf; writers encode them explicitly.
    ``location`` is ``None`` when no metric file was written (the series stays in MLflow).
    """

    key: str
    context: str | None
    source: MetricSource
    count: int
    first_step: int
    last_step: int
    first_time: datetime
    last_time: datetime
    min: float
    max: float
    last: float
    location: MetricLocation | None = None
    dataset_digest: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset a run used (``mlflow.log_input``), with the context it was used in."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class ArtifactRecord:
    """One artifact file, sized and hashed at export whatever its size (``sha256``/``size``
    are ``None`` only for records built without reading the file); ``uri`` is absolute.
    ``skipped`` says why a file was not read (a symbolic link, unreadable): it is exported
    as ``mlflowprov:skipped`` and the rest of the run still exports."""

    path: str
    size: int | None
    sha256: str | None
    uri: str
    skipped: str | None = None


@dataclass(frozen=True)
class LoggedModelRecord:
    """An MLflow 3 LoggedModel, with its own params, tags, metrics and artifact files.

    ``step`` is the step at which a run declared it as an output (``log_outputs``), if any.
    """

    model_id: str
    name: str
    experiment_id: str
    source_run_id: str | None
    status: str
    model_type: str | None
    artifact_location: str
    creation_time: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: tuple[ArtifactRecord, ...] = ()
    step: int | None = None


@dataclass(frozen=True)
class ModelVersionRecord:
    """A model-registry version; versions of one registered model form a revision chain."""

    name: str
    version: int
    source: str | None
    run_id: str | None
    model_id: str | None
    status: str
    creation_time: datetime | None
    current_stage: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run and everything the export says about it.

    ``journal_intact`` is the journal's hash-chain check for the run and the reconciliation
    of MLflow's rows with it (``None``: no journal); ``metric_rows_rehashed`` says whether
    that check read every metric row or only the series marked changed;
    ``journal_head`` the chain's head at export time (``"<length>:<last hash>"``), so
    ``mlflow-prov verify --crate`` can later check the export against its store.
    ``source_*``/``git_*`` come from MLflow's ``mlflow.source.*`` tags; ``tags`` excludes
    nothing but is already redacted for secrets. ``metrics`` is filled while the metric series
    are streamed (see ``exporters.export``).
    """

    run_id: str
    name: str
    experiment_id: str
    status: str
    lifecycle_stage: str
    start_time: datetime | None
    end_time: datetime | None
    user: str | None
    artifact_uri: str
    source_name: str | None = None
    source_type: str | None = None
    entry_point: str | None = None
    git_commit: str | None = None
    git_repo_url: str | None = None
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_keys: tuple[str, ...] = ()
    datasets: tuple[DatasetRecord, ...] = ()
    artifacts: tuple[ArtifactRecord, ...] = ()
    logged_models: tuple[LoggedModelRecord, ...] = ()
    input_model_ids: tuple[str, ...] = ()
    model_versions: tuple[ModelVersionRecord, ...] = ()
    metrics: tuple[MetricSummary, ...] = ()
    history: tuple[HistoryEvent, ...] = ()
    journal_intact: bool | None = None
    metric_rows_rehashed: bool | None = None
    journal_head: str | None = None
    # ``export --git``: the commits behind the run's commit (exporters/git_history.py)
    git_history: tuple[GitCommit, ...] = ()
    # the exported artifact hashes equal the journal's record of them (None: none recorded)
    artifacts_verified: bool | None = None


@dataclass(frozen=True)
class ExperimentRecord:
    """One MLflow experiment. ``history_available`` is False for stores without a journal
    (plain ``sqlite:``, ``postgresql:``, ``http:``): documents then say history was unavailable.
    """

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]
    creation_time: datetime | None
    last_update_time: datetime | None
    tracking_uri: str
    history_available: bool
    history: tuple[HistoryEvent, ...] = ()
