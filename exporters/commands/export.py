"""``mlflow-prov export``: a thin click layer over :func:`exporters.pipeline.export`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from exporters.compress import compress_run_folders
from exporters.errors import ExportError, ExportInterrupted
from exporters.guards import DEFAULT_TIMEOUT, OMITTABLE, compile_redactions
from exporters.options import (
    DEFAULT_FORMATS,
    DEFAULT_GIT_DEPTH,
    DEFAULT_GRAPH_DETAIL,
    DEFAULT_MAX_NODES,
    GRAPH_DETAILS,
    ExportOptions,
)
from exporters.writers import FORMAT_NAMES, METRIC_FORMATS

EXPORT_EXAMPLES = """
\b
Examples:
  mlflow-prov export --tracking-uri prov:///data/runs --experiment mnist --out prov-out
  mlflow-prov export --experiment 3 --run 1a2b... --run 3c4d... --out out --format prov-json,svg
  mlflow-prov export --experiment mnist --out out --format html      # open graph.html offline
  mlflow-prov export --tracking-uri http://127.0.0.1:5000 --experiment mnist \\
      --filter "metrics.accuracy > 0.9" --out out --format prov-json,provn,dot,svg --pseudonymize
  mlflow-prov export --experiment mnist --out out --format prov-json,netcdf,rocrate

\b
Layout: OUT/<experiment>/run-<run_id>/{prov.json,prov.provn,graph.dot,graph.svg,graph.html}
        OUT/<experiment>/{experiment.prov.json,experiment.provn,experiment.dot,experiment.svg,
                          experiment.html}
"""


def parse_formats(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """``prov-json,dot`` -> ('prov-json', 'dot'), each checked against the writer registry."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMAT_NAMES]
    if unknown or not names:
        raise click.BadParameter(f"unknown format(s) {', '.join(unknown) or '(none)'}; "
                                 f"choose from {', '.join(FORMAT_NAMES)}")
    return names


def parse_prefixes(ctx: click.Context, param: click.Parameter,
                   value: tuple[str, ...]) -> dict[str, str] | None:
    """``--context-prefix train/=training`` pairs; none given -> the defaults."""
    if not value:
        return None
    pairs = {}
    for item in value:
        prefix, sep, context = item.partition("=")
        if not sep or not prefix or not context:
            raise click.BadParameter(f"{item!r} is not PREFIX=CONTEXT (e.g. train/=training)")
        pairs[prefix] = context
    return pairs


def parse_redactions(ctx: click.Context, param: click.Parameter,
                     value: tuple[str, ...]) -> tuple[str, ...]:
    """``--redact`` values, each checked to compile as a regular expression."""
    try:
        compile_redactions(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def parse_omit(ctx: click.Context, param: click.Parameter,
               value: tuple[str, ...]) -> frozenset[str]:
    """``--omit tags --omit params`` or ``--omit tags,params``, each a part the export has."""
    parts = frozenset(p.strip() for item in value for p in item.split(",") if p.strip())
    unknown = sorted(parts - set(OMITTABLE))
    if unknown:
        raise click.BadParameter(f"cannot omit {', '.join(unknown)}; choose from "
                                 f"{', '.join(OMITTABLE)}")
    return parts


def parse_git_repo(ctx: click.Context, param: click.Parameter,
                   value: Path | None) -> Path | None:
    """``--git``: checked to be a repository before anything is read."""
    if value is not None:
        from exporters.git_history import open_repository

        try:
            open_repository(value)
        except ExportError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@click.command("export", epilog=EXPORT_EXAMPLES)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
              help="MLflow tracking URI (prov:///dir, sqlite:///x.db, http://host:port, ...).")
@click.option("--experiment", "experiment", required=True, help="Experiment name or id.")
@click.option("--run", "run_ids", multiple=True, help="Export only this run (repeatable).")
@click.option("--filter", "filter_string", help='MLflow search filter, e.g. "params.lr = \'0.1\'".')
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder.")
@click.option("--format", "formats", default=",".join(DEFAULT_FORMATS), show_default=True,
              callback=parse_formats,
              help=f"Comma-separated formats: {', '.join(FORMAT_NAMES)}.")
@click.option("--metrics-format", type=click.Choice(METRIC_FORMATS),
              help="Write full metric series in this format (netcdf, csv or zarr).")
@click.option("--crate-as-folder", is_flag=True, help="Write the RO-Crate as a folder, not a zip.")
@click.option("--compress", is_flag=True,
              help="Also zip each run folder to run-<id>.zip beside it (yProv4ML's "
                   "use_compressor).")
@click.option("--max-artifact-bytes", type=click.IntRange(min=0),
              help="RO-Crates reference artifacts larger than this many bytes by URI "
                   "instead of copying them (they are still sized and sha256-hashed).")
@click.option("--max-nodes", type=click.IntRange(min=1), default=DEFAULT_MAX_NODES,
              show_default=True, help="Summarise graphs with more nodes than this.")
@click.option("--graph-detail", type=click.Choice(GRAPH_DETAILS), default=DEFAULT_GRAPH_DETAIL,
              show_default=True,
              help="dot/svg drawing: 'ml' shows runs, datasets, models and lineage by name "
                   "with params/metrics/tags as tables; 'full' the complete PROV graph.")
@click.option("--pseudonymize", is_flag=True, help="Replace user and host names by pseudonyms.")
@click.option("--context-prefix", "context_prefixes", multiple=True, callback=parse_prefixes,
              help="Metric-key prefix to context, e.g. 'train/=training' (repeatable; "
                   "replaces the defaults train/ val/ valid/ validation/ test/ eval/).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars (default: only on a terminal).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="Longest wait on a tracking server or database before giving up.")
@click.option("--redact", "redact", multiple=True, callback=parse_redactions,
              metavar="KEY_OR_REGEX",
              help="Also redact the values of this param/tag key, or of every key the regular "
                   "expression matches as a whole (repeatable). Pattern matching cannot know "
                   "a secret written as free text under an innocent key: name such keys here.")
@click.option("--verify-metrics", "verify_metric_rows", is_flag=True,
              help="Rehash every metric row for journalIntact, as `mlflow-prov verify` does "
                   "(reads every point). Default: only series whose stored count or change "
                   "mark disagrees with the journal are read.")
@click.option("--omit", "omit", multiple=True, callback=parse_omit, metavar="PART",
              help=f"Leave a part out of the export (repeatable or comma-separated): "
                   f"{', '.join(OMITTABLE)}.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A checkpoint `mlflow-prov verify --checkpoint` signed: each run folder "
                   "(and crate) gets transparency-log.json, its events' inclusion proofs "
                   "against it, checkable offline with `verify --crate --public-key`.")
@click.option("--git", "git_repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              metavar="REPO", callback=parse_git_repo,
              help="A clone of the runs' repository: adds the commit history behind each "
                   "run's commit as PROV (commits, file revisions, authors).")
@click.option("--git-depth", type=click.IntRange(min=1), default=DEFAULT_GIT_DEPTH,
              show_default=True, help="At most this many commits of history per run.")
def export_command(tracking_uri: str | None, experiment: str, run_ids: tuple[str, ...],
                   filter_string: str | None, out_dir: Path, formats: tuple[str, ...],
                   metrics_format: str | None, crate_as_folder: bool, compress: bool,
                   max_artifact_bytes: int | None, max_nodes: int, graph_detail: str,
                   pseudonymize: bool,
                   context_prefixes: dict[str, str] | None, progress: bool | None,
                   timeout: float, redact: tuple[str, ...], omit: frozenset[str],
                   verify_metric_rows: bool, checkpoint: Path | None,
                   git_repo: Path | None = None, git_depth: int = DEFAULT_GIT_DEPTH) -> None:
    """Export an MLflow experiment (or some of its runs) as W3C PROV and graphs."""
    from exporters.pipeline import export

    options = ExportOptions(formats=formats, metrics_format=metrics_format,
                            crate_as_folder=crate_as_folder,
                            max_artifact_bytes=max_artifact_bytes, max_nodes=max_nodes,
                            graph_detail=graph_detail,
                            pseudonymize=pseudonymize, show_progress=progress,
                            timeout=timeout, redact=redact, omit=omit,
                            verify_metric_rows=verify_metric_rows, checkpoint=checkpoint,
                            git_repo=git_repo, git_depth=git_depth,
                            **({"context_prefixes": context_prefixes} if context_prefixes else {}))
    try:
        result = export(experiment, out_dir, tracking_uri=tracking_uri or None,
                        run_ids=run_ids, filter_string=filter_string, options=options)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    except ExportInterrupted as exc:
        click.echo(f"Error: export {exc}; nothing was written to {os.fspath(out_dir)}",
                   err=True)
        sys.exit(128 + exc.signum)
    if result.run_count == 0:
        click.echo(f"warning: experiment {experiment!r} has no runs"
                   f"{' matching the selection' if run_ids or filter_string else ''}; "
                   "exported the experiment alone", err=True)
    zips = compress_run_folders(result.experiment_dir, result.files) if compress else []
    click.echo(f"exported {result.run_count} run(s), {len(result.files) + len(zips)} file(s) "
               f"to {os.fspath(result.experiment_dir)}")


def one_line(message: str) -> str:
    """Errors are reported on one line (the first line of the reason)."""
    return message.strip().splitlines()[0] if message.strip() else "export failed"
