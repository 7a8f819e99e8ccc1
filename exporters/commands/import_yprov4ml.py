"""``mlflow-prov import-yprov4ml``: old yProv4ML runs into an MLflow store, once each."""

from __future__ import annotations

import time
from pathlib import Path

import click

IMPORT_EXAMPLES = """
\b
Examples:
  mlflow-prov import-yprov4ml prov/ --tracking-uri prov:///data/runs
  mlflow-prov import-yprov4ml run_0.json run_1.json --experiment old-mnist

\b
Folders are searched for *.json; files that are not yProv4ML provenance are skipped.
Importing a file again does nothing (its sha256 is a tag of the run it made).
"""


@click.command("import-yprov4ml", epilog=IMPORT_EXAMPLES)
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
              help="MLflow tracking URI to import into (prov:///dir, sqlite:///x.db, ...).")
@click.option("--experiment", help="Experiment for every imported run (default: each "
                                   "document's experiment name).")
def import_yprov4ml_command(paths: tuple[Path, ...], tracking_uri: str | None,
                            experiment: str | None) -> None:
    """Import yProv4ML PROV-JSON files (generations v0 to v3) as MLflow runs."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from exporters.yprov4ml_import import Importer, find_documents

    uri = tracking_uri or mlflow.get_tracking_uri()
    try:
        importer = Importer(uri, experiment)
    except MlflowException as exc:
        first = (str(exc).strip().splitlines() or ["unusable"])[0]
        raise click.ClickException(f"--tracking-uri {uri!r}: {first}") from exc
    started = time.perf_counter()
    imported = points = ignored = 0
    for path, explicit in find_documents(paths):
        result = importer.import_file(path)
        if result.skipped and result.not_provenance and not explicit:
            ignored += 1  # some other JSON in a folder: not worth a line each
            continue
        if result.skipped:
            click.echo(f"skipped {path}: {result.skipped}")
            continue
        imported += 1
        points += result.points
        click.echo(f"imported {path} as run {result.run_id}: {result.params} params, "
                   f"{result.metrics} metrics, {result.points} points"
                   + (f"; {len(result.refused)} series left out" if result.refused else ""))
        for reason in result.refused:
            click.echo(f"  left out {reason}")
    seconds = time.perf_counter() - started
    click.echo(f"imported {imported} run(s), {points} points in {seconds:.1f} s "
               f"({points / seconds if seconds else 0:.0f} points/s)"
               + (f"; ignored {ignored} other JSON file(s)" if ignored else ""))
