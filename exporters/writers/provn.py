"""PROV-N text: ``prov.provn`` per run, ``experiment.provn`` per experiment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord


class ProvNWriter:
    """prov's PROV-N serializer; prov >= 3 parses the result back (checked in the tests)."""

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        return [write_provn(doc, run_dir / "prov.provn")]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        return [write_provn(doc, exp_dir / "experiment.provn")]


def write_provn(doc: ProvDocument, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc.get_provn(), encoding="utf-8")
    return path
