"""``mlflow-prov lineage``: a thin click layer over :mod:`exporters.lineage`."""

from __future__ import annotations

import json

import click

from exporters.commands.common import one_line, tracking_uri_option

LINEAGE_EXAMPLES = """
\b
Examples:
  mlflow-prov lineage 1a2b3c4d                     # a run (a unique prefix is enough)
  mlflow-prov lineage models:/m-0f1e... --upstream # a logged model back to its data
  mlflow-prov lineage models:/classifier/3 --upstream --depth 3
  mlflow-prov lineage models:/classifier@champion --json
  mlflow-prov lineage runs:/1a2b.../data/train.csv --downstream
  mlflow-prov lineage 3f2a9c1b                     # a dataset, by (a prefix of) its digest

\b
Nodes: runs, datasets, run artifacts named by a dataset or model version, logged models,
registered model versions; across every experiment of the store.
"""


@click.command("lineage", epilog=LINEAGE_EXAMPLES)
@tracking_uri_option
@click.argument("node")
@click.option("--upstream", "direction", flag_value="upstream",
              help="Only what NODE came from.")
@click.option("--downstream", "direction", flag_value="downstream",
              help="Only what was made from NODE.")
@click.option("--depth", type=click.IntRange(min=1), default=10, show_default=True,
              help="Follow at most this many relations.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a text tree.")
def lineage_command(tracking_uri: str | None, node: str, direction: str | None, depth: int,
                    as_json: bool) -> None:
    """Show the lineage of NODE: a run id (or a unique prefix), models:/<model_id>,
    models:/<name>/<version>, models:/<name>@<alias>, runs:/<run_id>/<path> or a dataset
    digest."""
    from exporters.errors import ExportError
    from exporters.lineage import DIRECTIONS, lineage_trees, render_text

    directions = tuple(d for d in DIRECTIONS if d == direction) if direction else DIRECTIONS
    try:
        trees = lineage_trees(tracking_uri or _default_uri(), node, directions, depth)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    if as_json:
        click.echo(json.dumps({d: t.to_dict() for d, t in trees.items()}, indent=1))
        return
    click.echo("\n\n".join(f"{d} of {render_text(t)}" for d, t in trees.items()))


def _default_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()
