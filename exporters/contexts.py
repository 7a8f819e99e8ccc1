"""Which context (training, validation, testing, ...) a dataset or metric belongs to.

Three sources, in order of authority: the context a run gave ``mlflow.log_input``; for a
metric, the dataset it was logged against (MLflow 3 ``log_metric(..., dataset=...)``); the
metric key's prefix (``train/loss``). Names are normalised so that ``train``, ``training`` and
``train/`` all land in one ``training`` context activity.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporters.records import DatasetRecord, MetricSource

SYNONYMS: dict[str, str] = {
    "train": "training",
    "val": "validation",
    "valid": "validation",
    "test": "testing",
    "eval": "evaluation",
}
SYSTEM_PREFIX = "system/"
CARBON_PREFIXES = ("carbon/", "codecarbon/")


def normalise_context(name: str | None) -> str | None:
    """Lower-case, strip, and map common abbreviations to one spelling; empty -> None."""
    if name is None or not name.strip():
        return None
    cleaned = name.strip().lower()
    return SYNONYMS.get(cleaned, cleaned)


def context_from_key(key: str, prefixes: Mapping[str, str]) -> str | None:
    """The context named by the key's prefix (the longest configured prefix wins)."""
    lowered = key.lower()
    matches = [p for p in prefixes if lowered.startswith(p.lower())]
    if not matches:
        return None
    return normalise_context(prefixes[max(matches, key=len)])


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
    return parts[0] == "system" and "carbon" in parts[1:3]
