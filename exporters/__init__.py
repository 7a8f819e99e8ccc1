"""Exporters: turn MLflow experiments into W3C PROV (JSON, PROV-N, DOT, SVG) and more.

Reads MLflow through its public client API only (plus the provenance journal's read API for
``prov`` stores), so any tracking URI works. :func:`export` is the typed entry point; the
``mlflow-prov`` CLI is a thin layer over it.
"""

from exporters.errors import ExportError, ReaderError, WriterError
from exporters.options import ExportOptions
from exporters.pipeline import ExportResult, export

__all__ = ["ExportError", "ExportOptions", "ExportResult", "ReaderError", "WriterError", "export"]
