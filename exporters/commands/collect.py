"""``mlflow-prov collect``: a thin click layer over :func:`exporters.convert.collect`."""

from __future__ import annotations

from pathlib import Path

import click

from exporters.commands.common import one_line

COLLECT_EXAMPLES = """
\b
Examples:
  mlflow-prov collect out/mnist --out mnist-all.prov.json        # every run's prov.json
  mlflow-prov collect prov/rank0 prov/rank1 --out training.prov.json   # per-rank files
  mlflow-prov collect a/prov.json b/prov_demo_GR0_0.json --out both.json

\b
One bundle per file (collection:<folder>/<path inside it>, or the file name of a file
given directly), all members of the
prov:Collection collection:all; like yProv4ML's prov_collection.
"""


@click.command("collect", epilog=COLLECT_EXAMPLES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The merged PROV-JSON file.")
def collect_command(paths: tuple[Path, ...], out: Path) -> None:
    """Merge PROV-JSON files (found recursively under folders) into one document."""
    from exporters.convert import collect
    from exporters.errors import ExportError

    try:
        result = collect(paths, out)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"collected {len(result.files)} file(s) into {result.out}")
