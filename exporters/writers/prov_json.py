"""PROV-JSON files: ``prov.json`` per run, ``experiment.prov.json`` per experiment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord


class ProvJsonWriter:
    """Serialises with prov's own PROV-JSON serializer (W3C PROV-JSON member submission)."""

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        return [write_json(doc, run_dir / "prov.json")]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        return [write_json(doc, exp_dir / "experiment.prov.json")]


def write_json(doc: ProvDocument, path: Path) -> Path:
    """UTF-8, indented so diffs of two exports are readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc.serialize(format="json", indent=1), encoding="utf-8")
    return path
