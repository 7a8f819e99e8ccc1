"""``mlflow-prov convert``: a thin click layer over :func:`exporters.convert.convert`."""

from __future__ import annotations

from pathlib import Path

import click

from exporters.commands.common import one_line
from exporters.convert import CONVERT_FORMATS, DEFAULT_MAX_NODES

CONVERT_EXAMPLES = """
\b
Examples:
  mlflow-prov convert out/mnist/run-1a2b.../prov.json --to svg --out graph.svg
  mlflow-prov convert prov_demo_GR0_0.json --to html --out demo.html   # a yProv4ML file
  mlflow-prov convert experiment.prov.json --to provo-ttl --out experiment.ttl
  mlflow-prov convert prov.json --to jsonld --out prov.jsonld
  mlflow-prov convert prov.json --to prov-xml --out prov.xml

\b
Reads PROV-JSON of any origin: mlflow-prov's, yProv4ML's (every generation), others.
"""


@click.command("convert", epilog=CONVERT_EXAMPLES)
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "fmt", required=True, type=click.Choice(CONVERT_FORMATS),
              help="Output format.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=DEFAULT_MAX_NODES,
              show_default=True, help="dot, svg, html: summarise graphs with more nodes.")
def convert_command(source: Path, fmt: str, out: Path, max_nodes: int) -> None:
    """Convert the PROV-JSON file SOURCE to another format."""
    from exporters.convert import convert
    from exporters.errors import ExportError

    try:
        result = convert(source, fmt, out, max_nodes=max_nodes)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {result.out} ({fmt}, {result.records} records)")
