"""``mlflow-prov plot``: a thin click layer over :func:`exporters.plots.plot_experiment`."""

from __future__ import annotations

from pathlib import Path

import click

from exporters.commands.common import one_line, tracking_uri_option

PLOT_EXAMPLES = """
\b
Examples:
  mlflow-prov plot --tracking-uri prov:///data/runs --experiment mnist --out plots
  mlflow-prov plot --experiment mnist --run 1a2b... --run 3c4d... --out plots
  mlflow-prov plot --experiment mnist --metric loss --metric "val/*" --out plots
  mlflow-prov plot --experiment sweep --out plots --per-run     # figures for all 100 runs

\b
Writes OUT/metrics/<key>.png (one line per run), OUT/runs/<run>.png (a run's metrics) and
OUT/system/<run>.png (GPU/CPU utilisation with the loss, power, energy, emissions rate).
"""


@click.command("plot", epilog=PLOT_EXAMPLES)
@tracking_uri_option
@click.option("--experiment", required=True, help="Experiment name or id.")
@click.option("--run", "run_ids", multiple=True, help="Only this run (repeatable).")
@click.option("--metric", "patterns", multiple=True,
              help="Metric key or shell pattern such as 'train/*' (repeatable).")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--per-run/--no-per-run", default=None,
              help="Per-run and system figures (default: when at most 10 runs).")
def plot_command(tracking_uri: str | None, experiment: str, run_ids: tuple[str, ...],
                 patterns: tuple[str, ...], out_dir: Path, per_run: bool | None) -> None:
    """Plot an experiment's metrics as PNG files."""
    from exporters.errors import ExportError
    from exporters.plots import plot_experiment

    try:
        result = plot_experiment(tracking_uri or _default_uri(), experiment, out_dir,
                                 run_ids, patterns, per_run)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {len(result.files)} plot(s) of {result.runs} run(s) to {out_dir}")


def _default_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()
