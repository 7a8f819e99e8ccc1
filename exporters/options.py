"""Options of one export, shared by the export loop and every writer.

A single frozen object rather than keyword arguments threaded through each writer: a writer
owned by another module reads the options it needs (``metrics_format``, ``crate_as_folder``,
``max_artifact_bytes``) without every signature changing when an option is added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_prov.vocabulary import DEFAULT_CONTEXT_PREFIXES

if TYPE_CHECKING:
    from exporters.artifacts import ArtifactCache
    from exporters.lineage.prov import ExportLineage

DEFAULT_FORMATS: tuple[str, ...] = ("prov-json", "dot")
DEFAULT_MAX_NODES = 2000
GRAPH_DETAILS: tuple[str, ...] = ("ml", "full")
DEFAULT_GRAPH_DETAIL = "ml"
DEFAULT_GIT_DEPTH = 50


@dataclass(frozen=True)
class ExportOptions:
    """What to write and how.

    ``formats``: registry names from ``exporters.writers.WRITERS``.
    ``metrics_format``: ``"netcdf"``, ``"csv"`` or ``"zarr"`` to write full metric series;
    ``None`` picks one from ``formats`` (netcdf for rocrate), or writes none and PROV points
    at MLflow.
    ``max_artifact_bytes``: crates reference artifacts above it by URI instead of copying
    them (they are still sized and hashed); ``None`` means no limit.
    ``context_prefixes``: metric-key prefix (``train/``) -> context name (``training``).
    ``graph_detail``: ``"ml"`` draws DOT/SVG as the readable ML view (exporters.viewer),
    ``"full"`` as the complete PROV graph.
    ``verify_metric_rows``: rehash every metric row for ``journalIntact``, as ``mlflow-prov
    verify`` does; otherwise only series whose stored summary says they changed are read.
    ``checkpoint``: a signed tree checkpoint (``verify --checkpoint``); each run folder, and
    so each crate, then carries its events' inclusion proofs against it
    (:mod:`exporters.log_proofs`).
    """

    formats: tuple[str, ...] = DEFAULT_FORMATS
    metrics_format: str | None = None
    crate_as_folder: bool = False
    max_artifact_bytes: int | None = None
    max_nodes: int = DEFAULT_MAX_NODES
    graph_detail: str = DEFAULT_GRAPH_DETAIL
    pseudonymize: bool = False
    context_prefixes: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_CONTEXT_PREFIXES))
    show_progress: bool | None = None
    # Hardening (issue 10): seconds any wait on a server may take (None: MLflow's defaults);
    # keys (or regular expressions over whole keys) whose values are redacted; parts left out.
    timeout: float | None = None
    redact: tuple[str, ...] = ()
    omit: frozenset[str] = frozenset()
    verify_metric_rows: bool = False
    checkpoint: Path | None = None
    # ``--git REPO``: the commit history behind each run's commit, at most ``git_depth``
    # commits per run (exporters/git_history.py)
    git_repo: Path | None = None
    git_depth: int = DEFAULT_GIT_DEPTH


@dataclass(frozen=True)
class WriterContext:
    """What a document writer gets besides the document: the options, where the export goes,
    the files already written for this run or experiment (the RO-Crate writer, run last,
    packs them) and the export's artifact cache (None: a writer fetches on its own).
    ``lineage`` indexes what every exported run produced, so a run's own graph can show the
    runs whose outputs it used (None: only the run itself is known)."""

    options: ExportOptions
    out_dir: Path
    tracking_uri: str
    written: tuple[Path, ...] = ()
    artifacts: ArtifactCache | None = None
    lineage: ExportLineage | None = None
