"""Output formats, registered by name; modules are imported only when their format is used.

Two kinds of writer:

* **Metric sinks** (``netcdf``, ``csv``, ``zarr``) receive the full series of a run's metrics,
  one at a time, while the export streams them out of MLflow. Created once per run.
* **Document writers** (``prov-json``, ``provn``, ``dot``, ``svg``, ``html``, the linked-data
  ``provo-ttl``, ``jsonld``, ``prov-xml``, the Markdown ``card``, and ``rocrate``)
  receive the finished PROV document of a run and of the whole experiment. They run in
  registry order; ``rocrate`` is last so it can pack the files the others wrote.

``WRITERS`` feeds ``click.Choice`` in the CLI. Loading a writer whose library is missing fails
with a :class:`~exporters.errors.WriterError` naming what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from exporters.errors import WriterError

if TYPE_CHECKING:  # the protocols' annotations only: numpy and prov load with a writer
    from prov.model import ProvDocument

    from exporters.options import WriterContext
    from exporters.records import ExperimentRecord, MetricLocation, MetricSeries, RunRecord

WriterKind = Literal["document", "metrics"]


@runtime_checkable
class MetricSink(Protocol):
    """Receives one run's metric series one at a time and writes them to files.

    Constructed as ``Sink(run, run_dir)``. ``add`` is called once per (key, context) series
    and must not keep the arrays after writing them (peak memory = the largest series);
    it returns where the series now lives, which the PROV metric entity references.
    ``close`` is called once all series were added (never after a failure: the staging folder
    goes whole), writes what is still pending and returns the files (paths under ``run_dir``).
    """

    def __init__(self, run: RunRecord, run_dir: Path) -> None: ...

    def add(self, series: MetricSeries) -> MetricLocation: ...

    def close(self) -> list[Path]: ...


@runtime_checkable
class DocumentWriter(Protocol):
    """Writes a PROV document (or something built from it) for a run and for an experiment.

    Constructed without arguments. ``ctx.written`` holds the files already written for the
    same run or experiment (metric files, earlier formats). Both methods return the files
    they wrote.
    """

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]: ...

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]: ...


@dataclass(frozen=True)
class WriterSpec:
    """A registry entry: where the writer class lives and what installing it takes."""

    name: str
    kind: WriterKind
    target: str  # "module:ClassName"
    description: str
    install_hint: str = 'pip install "mlflow-prov"'

    def load(self) -> type:
        """Import the writer's module now (not at registry import) and return its class."""
        module_name, _, class_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise WriterError(f"format {self.name!r} is unavailable ({exc}); "
                              f"install it with: {self.install_hint}") from exc
        try:
            return getattr(module, class_name)
        except AttributeError as exc:
            raise WriterError(f"format {self.name!r}: {module_name} has no {class_name}") from exc


WRITERS: dict[str, WriterSpec] = {
    spec.name: spec
    for spec in (
        WriterSpec("netcdf", "metrics", "exporters.writers.netcdf:NetCDFSink",
                   "full metric series as CF NetCDF (metrics.nc per run)"),
        WriterSpec("csv", "metrics", "exporters.writers.csv_metrics:CsvSink",
                   "full metric series as CSV files per run"),
        WriterSpec("zarr", "metrics", "exporters.writers.zarr_metrics:ZarrSink",
                   "full metric series as a Zarr v3 store (metrics.zarr per run, same "
                   "arrays and attributes as metrics.nc)"),
        WriterSpec("prov-json", "document", "exporters.writers.prov_json:ProvJsonWriter",
                   "W3C PROV-JSON (prov.json, experiment.prov.json)"),
        WriterSpec("provn", "document", "exporters.writers.provn:ProvNWriter",
                   "W3C PROV-N text (prov.provn, experiment.provn)"),
        WriterSpec("dot", "document", "exporters.writers.dot:DotWriter",
                   "Graphviz DOT graph (graph.dot, experiment.dot)"),
        WriterSpec("svg", "document", "exporters.writers.svg:SvgWriter",
                   "SVG picture of the graph, rendered by Graphviz dot",
                   install_hint="apt-get install graphviz (or your OS's graphviz package)"),
        WriterSpec("html", "document", "exporters.writers.html:HtmlWriter",
                   "interactive self-contained HTML view (graph.html, experiment.html)"),
        WriterSpec("provo-ttl", "document", "exporters.writers.linked_data:ProvOTurtleWriter",
                   "PROV-O as RDF Turtle (prov.ttl, experiment.ttl)"),
        WriterSpec("jsonld", "document", "exporters.writers.linked_data:JsonLdWriter",
                   "PROV-JSON-LD, context inlined (prov.jsonld, experiment.jsonld)"),
        WriterSpec("prov-xml", "document", "exporters.writers.linked_data:ProvXmlWriter",
                   "W3C PROV-XML (prov.xml, experiment.prov.xml)"),
        WriterSpec("card", "document", "exporters.writers.card:CardWriter",
                   "Markdown workflow card: purpose, inputs, params, metrics, artifacts, "
                   "environment, energy, lineage, integrity (card.md, experiment.card.md)"),
        WriterSpec("rocrate", "document", "exporters.writers.rocrate:RoCrateWriter",
                   "Workflow Run RO-Crate (Process Run Crate 0.5) packing the other files"),
    )
}

FORMAT_NAMES: tuple[str, ...] = tuple(WRITERS)
METRIC_FORMATS: tuple[str, ...] = tuple(n for n, s in WRITERS.items() if s.kind == "metrics")


def get_writer(name: str) -> WriterSpec:
    """The registry entry for ``name``, or a WriterError listing the known formats."""
    try:
        return WRITERS[name]
    except KeyError:
        raise WriterError(f"unknown format {name!r}; choose from {', '.join(FORMAT_NAMES)}") \
            from None


def document_formats(formats: Sequence[str]) -> list[str]:
    """The document formats among ``formats``, in registry order (rocrate last)."""
    wanted = set(formats)
    return [n for n, s in WRITERS.items() if s.kind == "document" and n in wanted]
