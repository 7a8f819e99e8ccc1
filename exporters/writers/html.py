"""Interactive HTML: ``graph.html`` per run and ``experiment.html`` per experiment.

Each file is self-contained (graph, script and style inlined; see :mod:`exporters.viewer.html`)
so it opens from disk, offline, and can be mailed or attached to a report. Run nodes in the
experiment view link to the run's own file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.layout import HTML
from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord
from exporters.viewer.html import render_page
from exporters.viewer.ml_view import experiment_view, run_node_id, run_view, timeline

RUN_FILE, EXPERIMENT_FILE = HTML


class HtmlWriter:
    """Writes the ML view with the journal timeline; needs nothing installed."""

    def __init__(self) -> None:
        self.run_pages: dict[str, Path] = {}

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        path = run_dir / RUN_FILE
        graph = run_view(run, ctx.lineage)
        _write(path, render_page(graph, graph.title, timeline(run.history)))
        self.run_pages[run.run_id] = path
        return [path]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        graph = experiment_view(experiment, runs, ctx.options.max_nodes)
        links = {run_node_id(run_id): Path(os.path.relpath(page, exp_dir)).as_posix()
                 for run_id, page in self.run_pages.items()}
        for node in _walk(graph.nodes):
            node.href = links.get(node.id, node.href)
        path = exp_dir / EXPERIMENT_FILE
        _write(path, render_page(graph, graph.title, timeline(experiment.history)))
        return [path]


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
