"""``mlflow-prov log``: a thin click layer over :mod:`exporters.journal_log`."""

from __future__ import annotations

import click

from exporters.commands.common import one_line, tracking_uri_option

LOG_EXAMPLES = """
\b
Examples:
  mlflow-prov log --tracking-uri prov:///data/runs --experiment mnist
  mlflow-prov log --run 1a2b3c4d... --kind run.tags_set --key stage   # who changed "stage"
  mlflow-prov log --experiment mnist --kind run.updated --since 7d    # status changes
  mlflow-prov log --kind model_version --since 2026-01-31             # registry history
  mlflow-prov log --experiment 3 --json | jq .changes                 # one JSON object a line
  mlflow-prov log --tracking-uri http://127.0.0.1:5000 --experiment mnist  # --app-name prov

\b
--kind takes a kind (run.tags_set) or a prefix (run, experiment, logged_model,
registered_model, model_version); --since an ISO date/time, epoch ms or an age (30m, 2h, 7d).
"""


@click.command("log", epilog=LOG_EXAMPLES)
@tracking_uri_option
@click.option("--experiment", help="Experiment name or id (its own events and its runs').")
@click.option("--run", "run_id", help="Only this run's events.")
@click.option("--kind", "kinds", multiple=True, help="Event kind or prefix (repeatable).")
@click.option("--key", "keys", multiple=True,
              help="Only events about this tag, param or metric key (repeatable).")
@click.option("--since", help="Only events at or after this time or age.")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=1),
              help="Show at most this many events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event and line.")
@click.option("--redact", "redact", multiple=True, metavar="KEY_OR_REGEX",
              help="Also redact the values of this tag/param key, or of every key the regular "
                   "expression matches as a whole (repeatable), as export --redact does.")
def log_command(tracking_uri: str | None, experiment: str | None, run_id: str | None,
                kinds: tuple[str, ...], keys: tuple[str, ...], since: str | None,
                limit: int | None, as_json: bool, redact: tuple[str, ...]) -> None:
    """Show the provenance journal, oldest first: when, who, what kind, what changed.
    Secrets are redacted as in exports (secret-named keys, credential-shaped values and
    names, URL user info)."""
    from exporters.errors import ExportError
    from exporters.guards import compile_redactions
    from exporters.journal_log import LogFilters, LogPrinter, log_output, parse_kinds, parse_since

    try:
        patterns = compile_redactions(redact)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        uri = tracking_uri or _default_uri()
        filters = LogFilters(experiment_id=_experiment_id(uri, experiment), run_id=run_id,
                             kinds=parse_kinds(kinds), keys=keys,
                             since_us=parse_since(since) if since else None, limit=limit)
        for piece in log_output(uri, filters, LogPrinter(patterns, as_json)):
            click.echo(piece, nl=False)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc


def _experiment_id(tracking_uri: str, experiment: str | None) -> str | None:
    """An id as it is; a name looked up through MLflow (only then is MLflow imported)."""
    if experiment is None or experiment.isdigit():
        return experiment
    from exporters.collect import find_experiment, open_client

    return find_experiment(open_client(tracking_uri), experiment).experiment_id


def _default_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()
