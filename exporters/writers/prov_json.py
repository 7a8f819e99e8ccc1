"""W3C PROV-JSON: ``prov.json`` per run, ``experiment.prov.json`` per experiment."""

from __future__ import annotations

from prov.model import ProvDocument

from exporters.layout import PROV_JSON
from exporters.options import WriterContext
from exporters.writers.text import TextDocumentWriter


class ProvJsonWriter(TextDocumentWriter):
    """prov's own PROV-JSON serializer (W3C PROV-JSON member submission), indented so diffs
    of two exports are readable."""

    run_file, experiment_file = PROV_JSON

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        return doc.serialize(format="json", indent=1)
