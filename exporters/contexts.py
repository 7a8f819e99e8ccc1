"""Which context (training, validation, testing, ...) a dataset or metric belongs to.

Three sources, in order of authority: the context a run gave ``mlflow.log_input``; for a
metric, the dataset it was logged against (MLflow 3 ``log_metric(..., dataset=...)``); the
metric key's prefix (``train/loss``, or ``tuning/loss`` for a free-form context the run
declared in :data:`~mlflow_prov.vocabulary.CONTEXTS_TAG`). Names are normalised so that
``train``, ``training`` and ``train/`` all land in one ``training`` context activity. The
words themselves (synonyms, prefixes) are :mod:`mlflow_prov.vocabulary`'s, shared with capture.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporters.records import DatasetRecord, MetricSource
from mlflow_prov.vocabulary import (
    CARBON_PREFIXES,
    CARBON_SEGMENT,
    CONTEXTS_TAG,
    SYSTEM_PREFIX,
    context_from_key,
    context_key_prefix,
    declared_contexts,
    normalise_context,
)

__all__ = ["context_from_key", "metric_context", "metric_source", "normalise_context",
           "run_context_prefixes"]


def run_context_prefixes(prefixes: Mapping[str, str], tags: Mapping[str, str],
                         datasets: tuple[DatasetRecord, ...]) -> dict[str, str]:
    """The export's prefixes plus ``<context>/`` for each context this run declared
    (capture's free-form ``tuning/loss``) or logged a dataset in. Configured prefixes win."""
    named = declared_contexts(tags.get(CONTEXTS_TAG))
    named += [d.context for d in datasets if d.context]
    return {context_key_prefix(name): name for name in named} | dict(prefixes)


def metric_context(key: str, dataset_digest: str | None, datasets: tuple[DatasetRecord, ...],
                   prefixes: Mapping[str, str]) -> str | None:
    """The context of one metric point: its dataset's log_input context, else the key prefix."""
    if dataset_digest:
        for dataset in datasets:
            if dataset.digest == dataset_digest and dataset.context:
                return dataset.context
    return context_from_key(key, prefixes)


def metric_source(key: str) -> MetricSource:
    """``carbon`` for energy and emissions, ``system`` for the other system metrics, else
    ``user``. Carbon keys live under ``system/``, so they are checked first."""
    if key.startswith(CARBON_PREFIXES) or _is_system_carbon(key):
        return "carbon"
    if key.startswith(SYSTEM_PREFIX):
        return "system"
    return "user"


def _is_system_carbon(key: str) -> bool:
    """``system/carbon/...`` or, with MLflow's node ids, ``system/<node>/carbon/...``."""
    parts = key.split("/")
    return parts[0] == SYSTEM_PREFIX.rstrip("/") and CARBON_SEGMENT in parts[1:3]
