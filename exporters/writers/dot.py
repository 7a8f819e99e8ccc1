"""Graphviz DOT: ``graph.dot`` per run, ``experiment.dot`` per experiment: the ML view by
default, the full PROV graph with ``--graph-detail full`` (see :mod:`exporters.graph`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.graph import experiment_graph, run_graph
from exporters.layout import DOT
from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord


class DotWriter:
    """Writes the DOT source; needs no Graphviz installation."""

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        source = run_graph(ctx.options, run, doc, ctx.lineage).to_string()
        return [_write(run_dir / DOT[0], source)]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        dot = experiment_graph(ctx.options, experiment, runs, doc)
        return [_write(exp_dir / DOT[1], dot.to_string())]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
