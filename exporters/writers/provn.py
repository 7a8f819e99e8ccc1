"""W3C PROV-N: ``prov.provn`` per run, ``experiment.provn`` per experiment."""

from __future__ import annotations

from prov.model import ProvDocument

from exporters.layout import PROVN
from exporters.options import WriterContext
from exporters.writers.text import TextDocumentWriter


class ProvNWriter(TextDocumentWriter):
    """prov's PROV-N serializer; prov >= 3 parses the result back (checked in the tests)."""

    run_file, experiment_file = PROVN

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        return doc.get_provn()
