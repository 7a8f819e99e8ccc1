"""Exporters: turn MLflow experiments into W3C PROV (JSON, PROV-N, DOT, SVG) and more.

Reads MLflow through its public client API only (plus the provenance journal's read API for
``prov`` stores), so any tracking URI works. :func:`export` is the typed entry point; the
``mlflow-prov`` CLI is a thin layer over it.

The names below load on first use (PEP 562): importing the package, as ``mlflow-prov --help``
does, must not import MLflow (seconds of start-up) just to print a list of commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporters.errors import ExportError, ReaderError, WriterError
    from exporters.options import ExportOptions
    from exporters.pipeline import ExportResult, export

__all__ = ["ExportError", "ExportOptions", "ExportResult", "ReaderError", "WriterError", "export"]

_HOMES = {"ExportError": "exporters.errors", "ReaderError": "exporters.errors",
          "WriterError": "exporters.errors", "ExportOptions": "exporters.options",
          "ExportResult": "exporters.pipeline", "export": "exporters.pipeline"}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'exporters' has no attribute {name!r}")
