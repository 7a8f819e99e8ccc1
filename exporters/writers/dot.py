"""Graphviz DOT: ``graph.dot`` per run, ``experiment.dot`` per experiment (summarised above
``--max-nodes``, see :mod:`exporters.graph`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.graph import to_dot
from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord


class DotWriter:
    """Writes the DOT source; needs no Graphviz installation."""

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        return [write_dot(doc, run_dir / "graph.dot", ctx.options.max_nodes)]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        return [write_dot(doc, exp_dir / "experiment.dot", ctx.options.max_nodes)]


def write_dot(doc: ProvDocument, path: Path, max_nodes: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_dot(doc, max_nodes).to_string(), encoding="utf-8")
    return path
