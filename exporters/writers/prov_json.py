"""W3C PROV-JSON: ``prov.json`` per run, ``experiment.prov.json`` per experiment."""

from __future__ import annotations

import io

from prov.model import ProvDocument
from prov.serializers.provjson import ProvJSONSerializer

from exporters.layout import PROV_JSON
from exporters.options import WriterContext
from exporters.writers.text import TextDocumentWriter


class ProvJsonWriter(TextDocumentWriter):
    """prov's own PROV-JSON serializer (W3C PROV-JSON member submission), indented so diffs
    of two exports are readable.

    The serializer class is used directly: ``doc.serialize(format="json")`` first loads
    prov's whole serializer registry, importing rdflib and scanning every installed package's
    entry points, about a second and a half of each export that asks only for JSON."""

    run_file, experiment_file = PROV_JSON

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        buffer = io.StringIO()
        ProvJSONSerializer(doc).serialize(buffer, indent=1)
        return buffer.getvalue()
