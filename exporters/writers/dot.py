"""Graphviz DOT: ``graph.dot`` per run, ``experiment.dot`` per experiment (summarised above
``--max-nodes``, see :mod:`exporters.graph`)."""

from __future__ import annotations

from prov.model import ProvDocument

from exporters.graph import to_dot
from exporters.options import WriterContext
from exporters.writers.text import TextDocumentWriter


class DotWriter(TextDocumentWriter):
    """Writes the DOT source; needs no Graphviz installation."""

    run_file = "graph.dot"
    experiment_file = "experiment.dot"

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        return to_dot(doc, ctx.options.max_nodes).to_string()
