"""Linked data: PROV-O in Turtle (``provo-ttl``), JSON-LD (``jsonld``) and PROV-XML
(``prov-xml``), through prov's own serializers.

One module for the three because they share one problem: RDF needs absolute IRIs, and
documents from elsewhere (yProv4ML binds ``prov-ml`` to the string ``prov-ml`` and its
default namespace to a file name, and puts spaces in ids) do not have them.
:func:`with_absolute_iris` rewrites such names into ``urn:`` IRIs before an RDF serializer
sees them; our own documents use real namespace URIs and pass through unchanged.
"""

from __future__ import annotations

import re
from typing import cast
from urllib.parse import quote

from prov.identifier import Namespace, QualifiedName
from prov.model import ProvBundle, ProvDocument, ProvRecord

from exporters.errors import WriterError
from exporters.layout import JSONLD, PROV_XML, PROVO_TURTLE
from exporters.options import WriterContext
from exporters.prov_model import xml_safe_document
from exporters.writers.text import TextDocumentWriter

# A namespace URI is usable in RDF when it is absolute: it starts with a scheme.
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Characters an IRI may not hold unescaped (RFC 3987: space, <>"{}|\^`).
_IRI_UNSAFE = re.compile(r'[\s<>"{}|\\^`]')
LOCAL_NAMESPACE_ROOT = "urn:mlflow-prov:local:"


def needs_repair(namespace: Namespace) -> bool:
    return not _ABSOLUTE.match(namespace.uri)


def with_absolute_iris(doc: ProvDocument) -> tuple[ProvDocument, int]:
    """``doc`` with every name an RDF serializer would refuse made absolute, and how many
    names changed (0: the document itself is returned).

    A namespace URI without a scheme (``prov-ml``) becomes ``urn:mlflow-prov:local:prov-ml/``;
    characters an IRI cannot hold (spaces) in a local part are percent-encoded.
    """
    names: dict[QualifiedName, QualifiedName] = {}
    namespaces: dict[str, Namespace] = {}

    def fixed(value: object) -> object:
        if not isinstance(value, QualifiedName):
            return value
        if value in names:
            return names[value]
        namespace = value.namespace
        if needs_repair(namespace):
            namespace = namespaces.setdefault(namespace.uri, Namespace(
                namespace.prefix, LOCAL_NAMESPACE_ROOT + quote(namespace.uri, safe="") + "/"))
        local = value.localpart
        if _IRI_UNSAFE.search(local):
            local = _IRI_UNSAFE.sub(lambda m: quote(m.group(0)), local)
        names[value] = namespace[local] if (namespace, local) != (value.namespace,
                                                                  value.localpart) else value
        return names[value]

    for record in _all_records(doc):
        fixed(record.identifier)
        for key, value in record.attributes:
            fixed(key)
            fixed(value)
    changed = sum(1 for old, new in names.items() if old is not new)
    if not changed:
        return doc, 0
    repaired = ProvDocument()
    _copy(doc, repaired, fixed)
    for bundle in doc.bundles:
        _copy(bundle, repaired.bundle(cast(QualifiedName, fixed(bundle.identifier))), fixed)
    return repaired, changed


def _all_records(doc: ProvDocument) -> list[ProvRecord]:
    records = list(doc.get_records())
    for bundle in doc.bundles:
        records.extend(bundle.get_records())
    return records


def _copy(source: ProvBundle, target: ProvBundle, fixed) -> None:
    for namespace in source.namespaces:
        if not needs_repair(namespace):
            target.add_namespace(namespace)
    for record in source.get_records():
        attributes = [(fixed(k), fixed(v)) for k, v in record.attributes]
        target.new_record(record.get_type(), fixed(record.identifier), attributes)


def serialize(doc: ProvDocument, fmt: str) -> str:
    """The document as ``provo-ttl``, ``jsonld`` or ``prov-xml`` text."""
    try:
        if fmt == "provo-ttl":
            return str(with_absolute_iris(doc)[0].serialize(format="rdf", rdf_format="turtle"))
        if fmt == "jsonld":
            # the PROV-JSON-LD context inlined: the file parses offline, without a fetch
            return str(with_absolute_iris(doc)[0].serialize(format="jsonld", context="embed"))
        if fmt == "prov-xml":  # XML 1.0 cannot hold every character MLflow accepts
            return str(xml_safe_document(doc).serialize(format="xml"))
    except ImportError as exc:
        raise WriterError(f"format {fmt!r} needs rdflib ({exc}); install it with: "
                          'pip install "mlflow-prov"') from exc
    raise WriterError(f"unknown linked-data format {fmt!r}; choose provo-ttl, jsonld or prov-xml")


class ProvOTurtleWriter(TextDocumentWriter):
    """PROV-O (the W3C PROV ontology) as RDF Turtle."""

    run_file, experiment_file = PROVO_TURTLE

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        return serialize(doc, "provo-ttl")


class JsonLdWriter(TextDocumentWriter):
    """PROV-JSON-LD (W3C member submission), its context inlined: the same statements as
    the Turtle file, readable by any JSON-LD processor offline."""

    run_file, experiment_file = JSONLD

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        return serialize(doc, "jsonld")


class ProvXmlWriter(TextDocumentWriter):
    """W3C PROV-XML; prov reads it back (checked in the tests)."""

    run_file, experiment_file = PROV_XML

    def render(self, doc: ProvDocument, ctx: WriterContext) -> str:
        return serialize(doc, "prov-xml")
