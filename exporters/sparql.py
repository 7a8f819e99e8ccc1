"""SPARQL over PROV-O: an embedded store, one query, its answer as a table, CSV or JSON.

Why pyoxigraph rather than rdflib (which the exporters already use to write RDF):
oxigraph implements all of SPARQL 1.1 Query (property paths, aggregates, subqueries,
``VALUES``, every built-in) and passes the W3C test suite; rdflib's evaluator is pure Python
and evaluates property paths such as ``(^prov:used|^prov:wasDerivedFrom)+`` node by node:
on the PROV-O of 40 chained runs (14,000 triples) ``benchmarks/bench_sparql.py`` measured
each named question 35 to 450 times slower on rdflib (1.5 to 6 s against 4 to 40 ms).
Oxigraph also reports a syntax error with its line and column (:func:`syntax_message`).
Results in CSV and the SPARQL 1.1 JSON results format are written by oxigraph's own
serializers.

Queries run over the union of the store's graphs: PROV-JSON-LD keeps each run's bundle in a
named graph of its own, Turtle holds one graph, and a question must mean the same over both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyoxigraph import (
    BlankNode,
    Literal,
    NamedNode,
    QueryBoolean,
    QueryResultsFormat,
    QuerySolutions,
    QueryTriples,
    RdfFormat,
    Store,
)

from exporters.errors import ExportError
from exporters.prov_model import NAMESPACES

OUTPUTS: tuple[str, ...] = ("table", "csv", "json")
# prefixes every query may use without declaring them
PREFIXES: dict[str, str] = {
    "prov": "http://www.w3.org/ns/prov#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    **{ns.prefix: ns.uri for ns in NAMESPACES},
}
_POSITION = re.compile(r"^error at (\d+):(\d+): (.*)$", re.DOTALL)
_QUOTED = re.compile(r'"[^"]*"')
_MAX_EXPECTED = 6
_NEAR_CHARS = 24
_PREFIXED_NAME = re.compile(r"([A-Za-z][\w.-]*)?:[\w.%-]*$")

QueryResult = QuerySolutions | QueryBoolean | QueryTriples


class SparqlError(ExportError):
    """A query oxigraph cannot parse or run; the message is one line naming the fix."""


def run_query(store: Store, sparql: str) -> QueryResult:
    """The answer to ``sparql`` over every graph of ``store``."""
    try:
        return store.query(sparql, prefixes=PREFIXES, use_default_graph_as_union=True)
    except SyntaxError as exc:
        raise SparqlError(syntax_message(str(exc), sparql)) from None
    except OSError as exc:  # oxigraph reports evaluation errors (SERVICE, limits) so
        raise SparqlError(f"the query failed: {_first_line(str(exc))}") from None


def syntax_message(error: str, sparql: str = "") -> str:
    """Oxigraph's parse error (``error at 3:14: expected one of …``, the list sometimes
    hundreds of character classes long) as one line: where, what was expected, the fix.

    Oxigraph reports the furthest point its parser reached, often the end of the query;
    rdflib's parser (already installed for the RDF writers) stops at the start of the clause
    it could not read, which is where a person looks, so its position is given when it has
    one."""
    match = _POSITION.match(error.strip())
    if match is None:
        return f"bad SPARQL: {_first_line(error)}; fix the query and run it again"
    line, column, detail = match.groups()
    if "Prefix not found" in detail:
        return _unknown_prefix(sparql, int(line), int(column))
    where = _clause_position(sparql) or f"bad SPARQL at line {line}, column {column}"
    expected = _expected(detail)
    what = f"expected {expected}" if expected else (
        "nothing valid can follow there" if detail.startswith("expected")
        else _first_line(detail))
    return f"{where}: {what}; fix the query there and run it again"


def _unknown_prefix(sparql: str, line: int, column: int) -> str:
    """Oxigraph stops just after the prefixed name whose prefix is undeclared: name it."""
    lines = sparql.splitlines() or [""]
    before = lines[min(line, len(lines)) - 1][:max(column - 1, 0)]
    found = _PREFIXED_NAME.search(before)
    name, column = (f"{found.group(1)}:", found.start() + 1) if found else ("", column)
    known = ", ".join(f"{p}:" for p in PREFIXES)
    return (f"bad SPARQL at line {line}, column {column}: unknown prefix {name}; declare it "
            f"with PREFIX {name or 'name:'} <iri> or use one of {known}")


def _clause_position(sparql: str) -> str | None:
    """``bad SPARQL at line L, column C, near '…'`` from rdflib's parser, if it fails too."""
    from pyparsing import ParseBaseException
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        parseQuery(sparql)
    except ParseBaseException as exc:
        near = exc.line[exc.col - 1:][:_NEAR_CHARS].strip()
        return f"bad SPARQL at line {exc.lineno}, column {exc.col}" + (
            f", near {near!r}" if near else ", at the end")
    except Exception:  # noqa: BLE001 - only a hint: oxigraph's own position stands
        return None
    return None


def _expected(detail: str) -> str:
    """The keywords and punctuation oxigraph expected, without its character classes."""
    if not detail.startswith("expected"):
        return ""
    items = detail.removeprefix("expected").removeprefix(" one of").strip().split(", ")
    tokens = [t for t in items if _QUOTED.fullmatch(t) or t.isalpha()]
    more = " …" if len(tokens) > _MAX_EXPECTED else ""
    return ("one of " if len(tokens) > 1 else "") + ", ".join(tokens[:_MAX_EXPECTED]) + more


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else "unknown error"


def render(result: QueryResult, output: str) -> str:
    """The answer as ``table`` (aligned columns, names shortened by :data:`PREFIXES`),
    ``csv`` (SPARQL 1.1 CSV results) or ``json`` (SPARQL 1.1 JSON results); a CONSTRUCT or
    DESCRIBE answer is a graph, written as Turtle whatever ``output`` says."""
    if output not in OUTPUTS:
        raise SparqlError(f"--output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    if isinstance(result, QueryTriples):
        return _text(result.serialize(format=RdfFormat.TURTLE))
    if output == "json":
        return _text(result.serialize(format=QueryResultsFormat.JSON))
    if output == "csv":
        return _text(result.serialize(format=QueryResultsFormat.CSV))
    if isinstance(result, QueryBoolean):
        return "true" if bool(result) else "false"
    names = [variable.value for variable in result.variables]
    rows = [[short(solution[name]) for name in names] for solution in result]
    return table(names, rows)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8")


def short(term: object) -> str:
    """A term as a person reads it: a literal's text, an IRI as ``prefix:local`` when one of
    :data:`PREFIXES` covers it, a blank node as ``_:id``, nothing for an unbound variable."""
    if term is None:
        return ""
    if isinstance(term, Literal):
        return term.value
    if isinstance(term, NamedNode):
        iri = term.value
        for prefix, base in PREFIXES.items():
            if iri.startswith(base) and len(iri) > len(base):
                return f"{prefix}:{iri[len(base):]}"
        return f"<{iri}>"
    if isinstance(term, BlankNode):
        return f"_:{term.value}"
    return str(term)


def table(names: list[str], rows: Iterable[list[str]]) -> str:
    """Columns padded to their widest cell under a header line; a cell's line breaks and
    tabs shown as spaces, so one solution stays one line."""
    rows = [[" ".join(cell.split()) if _needs_flattening(cell) else cell for cell in row]
            for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)


def _needs_flattening(cell: str) -> bool:
    return any(c in cell for c in "\n\r\t")
