"""The shared shape of the text document writers (PROV-JSON, PROV-N, DOT).

Each writes one file per run and one per experiment; only the file names and the way the
document is rendered to text differ, so those are all a subclass states.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord


class TextDocumentWriter(ABC):
    """Renders the document to text and writes it, UTF-8, under a fixed file name."""

    run_file: str
    experiment_file: str

    @abstractmethod
    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        """The document as this format's text."""

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        return [self._write(doc, ctx, run_dir / self.run_file)]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        return [self._write(doc, ctx, exp_dir / self.experiment_file)]

    def _write(self, doc: ProvDocument, ctx: WriterContext, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(doc, ctx), encoding="utf-8")
        return path
