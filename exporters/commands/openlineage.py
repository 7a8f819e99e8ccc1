"""``mlflow-prov openlineage``: a thin click layer over :mod:`exporters.openlineage`."""

from __future__ import annotations

from pathlib import Path

import click

from exporters.commands.common import one_line, tracking_uri_option

OPENLINEAGE_EXAMPLES = """
\b
Examples:
  mlflow-prov openlineage --experiment training --url http://marquez:5000
  mlflow-prov openlineage --experiment 3 --file lineage.jsonl --namespace team-a

\b
Each run sends START, then COMPLETE, FAIL or ABORT once it ended (FINISHED, FAILED, KILLED).
The job is the experiment; a nested run names its parent (the parent facet). Inputs: the
run's datasets (digest as version, MLflow schema as schema facet) and the logged models it
used. Outputs: its logged models, registered model versions and artifacts (sha256 as
version). Params and metric summaries: the custom facets mlflowprov_params and
mlflowprov_metrics (schemas: https://w3id.org/mlflow-prov/openlineage/facets/1-0-0/).
"""


@click.command("openlineage", epilog=OPENLINEAGE_EXAMPLES)
@tracking_uri_option
@click.option("--experiment", required=True, help="Experiment name or id.")
@click.option("--url", help="OpenLineage endpoint's base URL (events are POSTed to "
              "URL/api/v1/lineage, or URL/ENDPOINT).")
@click.option("--endpoint", help="Path below URL to POST to (default api/v1/lineage).")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the events to FILE as JSON Lines instead (replaced whole).")
@click.option("--namespace", default="mlflow", show_default=True,
              help="OpenLineage namespace of the jobs and datasets.")
def openlineage_command(tracking_uri: str | None, experiment: str, url: str | None,
                        endpoint: str | None, file: Path | None, namespace: str) -> None:
    """Send an experiment's runs as OpenLineage run events."""
    from exporters.errors import ExportError
    from exporters.openlineage import Destination, experiment_events, send

    if (url is None) == (file is None):
        raise click.UsageError("give either --url URL or --file FILE")
    try:
        import mlflow

        events = experiment_events(tracking_uri or mlflow.get_tracking_uri(), experiment,
                                   namespace)
        send(events, Destination(url=url, endpoint=endpoint, file=file))
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    from exporters.privacy import redact_text

    click.echo(f"{len(events)} OpenLineage events sent to {file or redact_text(url or '')}")
