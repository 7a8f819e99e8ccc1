"""Turn any PROV-JSON file into another format, and merge many into one (``convert``,
``collect``).

Why: provenance files outlive the tools that wrote them. yProv4ML's users have PROV-JSON of
four generations and only its ``prov2dot``/``dot2svg``/``prov_collection`` scripts to read
them; our own exports are PROV-JSON too. These functions need no MLflow store: they read the
file with prov's own deserializer and write with prov's serializers (or Graphviz, or the HTML
viewer).

Foreign files are read as they are. Names RDF cannot hold (yProv4ML binds ``prov-ml`` to a
non-URI and writes spaces in ids) are made absolute for the RDF formats only (see
:mod:`exporters.writers.linked_data`); each such repair is reported in ``notes``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from prov.identifier import Namespace
from prov.model import (
    PROV,
    PROV_N_MAP,
    ProvDocument,
    ProvElement,
    ProvFutureRejectionWarning,
    ProvRelation,
    ProvWarning,
)

from exporters.errors import ExportError

CONVERT_FORMATS: tuple[str, ...] = ("dot", "svg", "provn", "html", "provo-ttl", "prov-xml",
                                    "jsonld", "prov-json")
# Graphviz lays out a few hundred PROV nodes in seconds, but slows superlinearly with their
# edges (826 nodes with 5,559 edges: over 5 minutes on 2 loaded cores): convert draws smaller
# graphs than an export does, and element attributes (one extra node each) only on small ones.
DEFAULT_MAX_NODES = 500
ATTRIBUTE_NODES_MAX = 150
COLLECTION_NS = Namespace("collection", "urn:mlflow-prov:collection:")
PROV_SECTIONS = ("entity", "activity", "agent", "bundle", "used", "wasGeneratedBy")


class ConvertError(ExportError):
    """A file cannot be read as PROV-JSON, or cannot be written in the format asked for."""


@dataclass
class ConvertResult:
    """What was written, and what was changed on the way (repaired names, summaries)."""

    source: Path
    out: Path
    format: str
    records: int
    notes: list[str] = field(default_factory=list)


def load_document(path: Path) -> tuple[ProvDocument, list[str]]:
    """Deserialize a PROV-JSON file of any origin; notes say what prov had to accept."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConvertError(f"{path}: no such file; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConvertError(f"{path}: cannot read it ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConvertError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); "
                           "convert reads PROV-JSON files") from exc
    if not isinstance(data, dict) or not any(k in data for k in PROV_SECTIONS):
        raise ConvertError(f"{path}: JSON, but not PROV-JSON (no entity, activity, agent or "
                           "bundle section)")
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        # yProv4ML writes ids with spaces; prov accepts them with a warning (an error in a
        # future prov), and the RDF writers percent-encode them.
        warnings.simplefilter("always", ProvFutureRejectionWarning)
        try:
            doc = ProvDocument.deserialize(content=text, format="json")
        except Exception as exc:  # prov raises bare Exceptions on malformed records
            raise ConvertError(f"{path}: prov cannot read it as PROV-JSON "
                               f"({type(exc).__name__}: {exc})") from exc
    odd = sum(1 for w in caught if issubclass(w.category, ProvFutureRejectionWarning))
    if odd:
        notes.append(f"{odd} name(s) hold characters PROV-N cannot write (spaces); "
                     "kept in PROV-JSON and PROV-XML, percent-encoded in PROV-N and RDF")
    return doc, notes


def record_count(doc: ProvDocument) -> int:
    return len(doc.flattened().records)


def convert(source: str | Path, fmt: str, out: str | Path,
            max_nodes: int = DEFAULT_MAX_NODES) -> ConvertResult:
    """Write the PROV-JSON file ``source`` as ``fmt`` to ``out``."""
    source, out = Path(source), Path(out)
    if fmt not in CONVERT_FORMATS:
        raise ConvertError(f"unknown format {fmt!r}; choose from {', '.join(CONVERT_FORMATS)}")
    doc, notes = load_document(source)
    text = render(doc, fmt, max_nodes, notes, title=source.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConvertError(f"cannot write {out}: {exc.strerror}; choose another --out") from exc
    return ConvertResult(source, out, fmt, record_count(doc), notes)


def render(doc: ProvDocument, fmt: str, max_nodes: int, notes: list[str],
           title: str = "provenance") -> str:
    """``doc`` as text in ``fmt``; appends to ``notes`` what was repaired or summarised."""
    from exporters.graph import summarise

    if fmt == "prov-json":
        return str(doc.serialize(format="json", indent=1))
    if fmt == "provn":
        with warnings.catch_warnings():  # load_document's note already names these
            warnings.simplefilter("ignore", ProvFutureRejectionWarning)
            warnings.simplefilter("ignore", ProvWarning)
            return doc.get_provn()
    if fmt in ("provo-ttl", "jsonld", "prov-xml"):
        from exporters.writers.linked_data import serialize, with_absolute_iris

        if fmt != "prov-xml":
            changed = with_absolute_iris(doc)[1]
            if changed:
                notes.append(f"{changed} name(s) made absolute IRIs for RDF "
                             "(urn:mlflow-prov:local:…, spaces percent-encoded)")
        return serialize(doc, fmt)
    graph_doc, summary = summarise(doc, max_nodes)
    if summary:
        notes.append(summary)
    if fmt in ("dot", "svg"):
        from exporters.graph import count_nodes

        drawn = count_nodes(graph_doc)
        if drawn > max_nodes:
            raise ConvertError(f"the graph has {drawn} nodes even summarised, over --max-nodes "
                               f"{max_nodes} (Graphviz slows sharply beyond a few hundred); "
                               "raise --max-nodes, convert one run's prov.json, or use --to html")
        dot = _dot(graph_doc, summary)
        return dot if fmt == "dot" else _svg(dot)
    from exporters.viewer.html import render_page

    return render_page(view_of(graph_doc, title), title)


def _dot(graph_doc: ProvDocument, summary: str | None) -> str:
    from prov.dot import prov_to_dot

    from exporters.graph import count_nodes

    small = count_nodes(graph_doc) <= ATTRIBUTE_NODES_MAX
    dot = prov_to_dot(graph_doc, use_labels=True, show_element_attributes=small)
    if summary:
        dot.set("label", summary)
        dot.set("labelloc", "t")
    return dot.to_string()


def _svg(dot_source: str) -> str:
    import subprocess

    from exporters.writers.svg import RENDER_TIMEOUT_S, find_dot

    try:
        result = subprocess.run([find_dot(), "-Tsvg"], input=dot_source.encode("utf-8"),
                                capture_output=True, timeout=RENDER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConvertError(f"Graphviz dot took over {RENDER_TIMEOUT_S} s; lower --max-nodes") \
            from exc
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConvertError(f"Graphviz dot failed: {reason[-1] if reason else result.returncode}")
    return result.stdout.decode("utf-8")


# --- a generic view for the HTML viewer -------------------------------------------------------

_KINDS = (("Dataset", "dataset"), ("Model", "model"), ("Metric", "metrics"),
          ("HyperParameter", "params"), ("Parameter", "params"), ("Context", "context"),
          ("Collection", "experiment"))


def view_of(doc: ProvDocument, title: str):  # -> exporters.viewer.model.ViewGraph
    """Any PROV document as the viewer's graph: elements as nodes (kind from their PROV
    class and ``prov:type``), relations as labelled edges."""
    from exporters.viewer.model import ViewEdge, ViewGraph, ViewNode

    flat = doc.flattened()
    graph = ViewGraph(title=title)
    seen: set[str] = set()
    for element in flat.get_records(ProvElement):
        node_id = str(element.identifier)
        if node_id in seen:
            continue
        seen.add(node_id)
        types = " ".join(str(t) for t in element.get_asserted_types())
        kind = {"entity": "artifact", "activity": "run", "agent": "agent"}[
            element.get_type().localpart.lower()]
        kind = next((k for word, k in _KINDS if word in types), kind)
        labels = element.get_attribute(PROV["label"])
        identifier = element.identifier
        label = (str(next(iter(labels))) if labels
                 else identifier.localpart if identifier is not None else node_id)
        attributes = {str(k): str(v) for k, v in element.attributes
                      if k != PROV["label"]}
        graph.nodes.append(ViewNode(node_id, label, kind, attributes=attributes))
    for relation in flat.get_records(ProvRelation):
        ends = [v for _, v in relation.formal_attributes if v is not None][:2]
        if len(ends) == 2 and str(ends[0]) in seen and str(ends[1]) in seen:
            graph.edges.append(ViewEdge(str(ends[0]), str(ends[1]),
                                        PROV_N_MAP.get(relation.get_type(),
                                                       relation.get_type().localpart)))
    return graph


# --- collect ------------------------------------------------------------------------------

@dataclass
class CollectResult:
    out: Path
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def find_prov_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str]]:
    """(file, name) of the PROV-JSON files named, or found recursively (``*.json``) under
    the folders given; a found file is named by its path from the folder, folder included
    (``mnist/run-1a2b/prov.json``), a named file by its file name."""
    for path in map(Path, paths):
        if path.is_dir():
            base = path.resolve()
            for candidate in sorted(base.rglob("*.json")):
                if candidate.is_file() and _looks_like_prov(candidate):
                    yield candidate, f"{base.name}/{candidate.relative_to(base).as_posix()}"
        elif path.is_file():
            yield path.resolve(), path.name
        else:
            raise ConvertError(f"{path}: no such file or folder; check the path")


def _looks_like_prov(path: Path) -> bool:
    """A cheap check on the first bytes, so that metric or config JSON is skipped."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    return any(f'"{section}"'.encode() in head for section in ("prefix", *PROV_SECTIONS))


def collect(paths: Iterable[str | Path], out: str | Path) -> CollectResult:
    """Merge PROV-JSON files into one PROV-JSON document with one bundle per file.

    Each bundle is named ``collection:<name>`` (see :func:`find_prov_files`) and holds the
    file's records (its own bundles flattened into it: PROV bundles do not nest); a
    ``prov:Collection`` entity ``collection:all`` has every bundle as a member, with the file
    it came from as ``prov:location``.
    """
    out = Path(out)
    found: dict[Path, str] = {}
    for file, name in find_prov_files(paths):
        if file != out.resolve():
            found.setdefault(file, name)
    if not found:
        raise ConvertError("no PROV-JSON files found; give folders or files holding them")
    merged = ProvDocument()
    merged.add_namespace(COLLECTION_NS)
    collection = merged.entity(COLLECTION_NS["all"], [(PROV["type"], PROV["Collection"])])
    notes: list[str] = []
    names: set[str] = set()
    for file, name in found.items():
        unique, n = name, 1
        while unique in names:  # two arguments may hold files of the same relative name
            n += 1
            unique = f"{name}~{n}"
        names.add(unique)
        doc, file_notes = load_document(file)
        notes.extend(f"{file.name}: {n}" for n in file_notes)
        bundle_id = COLLECTION_NS[quote(unique, safe="-_./~")]
        bundle = merged.bundle(bundle_id)
        flat = doc.flattened()
        for namespace in flat.namespaces:
            bundle.add_namespace(namespace)
        for record in flat.records:
            bundle.add_record(record)
        merged.entity(bundle_id, [(PROV["type"], PROV["Bundle"]),
                                  (PROV["location"], str(file))])
        merged.hadMember(collection, bundle_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(str(merged.serialize(format="json", indent=1)), encoding="utf-8")
    return CollectResult(out, list(found), notes)
