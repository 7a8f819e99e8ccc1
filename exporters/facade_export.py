"""The export the capture room's ``prov4ml.end_run`` calls, found through an entry point.

Capture never imports exporters (tests/unit/test_architecture.py), yet ``end_run`` must write
the files yProv4ML users expect. So the dependency is inverted: this function is registered
in setup.cfg under the entry-point group ``mlflow_prov.exporter`` (name ``default``) and the
facade looks it up with ``importlib.metadata`` when the run ends. Installing mlflow-prov
installs both; an environment without the exporters gets a clear message from the facade.
"""

from __future__ import annotations

import os
from pathlib import Path

from exporters.compress import compress_run_folders
from exporters.options import ExportOptions
from exporters.pipeline import export


def export_run(run_id: str, tracking_uri: str, out_dir: str | os.PathLike[str], *,
               create_graph: bool = False, create_svg: bool = False,
               create_rocrate: bool = False, metrics_format: str | None = "zarr",
               compress: bool = False) -> list[Path]:
    """Export one run to ``out_dir/<experiment>/run-<id>/``; returns the files written.

    PROV-JSON always, plus DOT, SVG and the RO-Crate as asked, and the full metric series in
    ``metrics_format`` (``zarr``, ``netcdf`` or ``csv``); ``compress`` also zips the folder.
    """
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri).get_run(run_id)
    wanted = {"dot": create_graph, "svg": create_svg, "rocrate": create_rocrate}
    formats = ("prov-json", *(name for name, on in wanted.items() if on))
    result = export(run.info.experiment_id, out_dir, tracking_uri=tracking_uri,
                    run_ids=[run_id],
                    options=ExportOptions(formats=formats, metrics_format=metrics_format))
    files = list(result.files)
    if compress:
        files += compress_run_folders(result.experiment_dir, result.files)
    return files
