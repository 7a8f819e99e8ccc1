"""Render a :class:`~exporters.viewer.model.ViewGraph` as self-contained interactive HTML.

Everything the reader needs (the graph as JSON, the viewer script and its CSS, and the
layered-layout library dagre, all in :mod:`exporters.viewer.static`) is inlined, so a file
opens from disk with no network and the ``/prov/`` pages need no static route. The script
lays the graph out in the browser, so expanding a group re-lays it without a round trip.

dagre is ``@dagrejs/dagre`` 3.1.3 from npm, its ``dist/dagre.min.js`` as published (sha256
``54a503e3…bbb578``), MIT-licensed: ``static/dagre-LICENSE.txt`` is its licence, and every
page that inlines it carries that licence as a comment.
"""

from __future__ import annotations

import html
import itertools
import json
from dataclasses import asdict
from functools import cache
from importlib import resources
from typing import Any

from exporters.sanitize import TEXT_NOTE, xml_safe_text, xml_unsafe
from exporters.viewer.model import LOOSE_EDGE_LABELS, ViewGraph

DAGRE_VERSION = "3.1.3"
TIMELINE_KEYS = ("time", "kind", "what", "old", "new", "writer", "span", "keys")
_counter = itertools.count(1)


@cache
def _static(name: str) -> str:
    """A vendored file of the package (read once per process)."""
    return resources.files("exporters.viewer").joinpath("static", name).read_text("utf-8")


@cache
def _dagre() -> str:
    """dagre's build behind its licence; its source-map comment goes (the map is not
    shipped, and a page offline must not name files it cannot have)."""
    code = _static("dagre.min.js").replace("//# sourceMappingURL=dagre.min.js.map", "")
    return (f"/*! @dagrejs/dagre {DAGRE_VERSION} (MIT licence)\n{_static('dagre-LICENSE.txt')}"
            f"*/\n{code}")


def _json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>`` or ``<!--`` can close it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_fragment(graph: ViewGraph, timeline: list[dict] | None = None) -> str:
    """An HTML fragment (``<div>`` with inline CSS and JS) showing ``graph`` interactively.

    ``timeline`` rows are dicts with string values under ``time``, ``kind``, ``what``,
    ``writer`` and, for a change of value, ``old`` and ``new`` (shown as old → new); a folded
    stretch of metric events (:func:`exporters.viewer.ml_view.timeline`) adds its ``span``
    and ``keys`` (one row each when the reader expands it). Several fragments may share one
    page; the script initialises each once.
    """
    data = asdict(graph)
    data["loose"] = list(LOOSE_EDGE_LABELS)
    data["timeline"] = [{k: row[k] for k in TIMELINE_KEYS if row.get(k) is not None}
                        for row in timeline or []]
    element_id = f"mlprov-viewer-{next(_counter)}"
    return (f'<style>{_static("viewer.css")}</style>\n'
            f'<div class="mlprov-viewer" id="{element_id}">'
            f'<script type="application/json" class="mv-data">{_json_for_script(data)}</script>'
            f"</div>\n"
            f"<script>{_dagre()}</script>\n"
            f"<script>{_static('viewer.js')}</script>\n")


def render_page(graph: ViewGraph, title: str, timeline: list[dict] | None = None) -> str:
    """A complete HTML document around :func:`render_fragment`, openable from disk.

    HTML parsers replace NUL and other control characters in text: the title gets the
    ``\\uXXXX`` escapes of :func:`~exporters.sanitize.xml_safe_text` and a
    ``mlflowprov:sanitized`` meta element saying so (the graph's JSON escapes them itself)."""
    sanitized = (f'<meta name="mlflowprov:sanitized" content="title: {TEXT_NOTE}">\n'
                 if xml_unsafe(title) else "")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"{sanitized}<title>{html.escape(xml_safe_text(title))}</title>\n"
            "<style>body{margin:12px 16px;background:#fff}</style>\n"
            "</head>\n<body>\n"
            f"{render_fragment(graph, timeline)}"
            "</body>\n</html>\n")
