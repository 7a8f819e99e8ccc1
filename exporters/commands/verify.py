"""``mlflow-prov verify``: a thin click layer over :func:`exporters.verify.verify_store` and
the signed checkpoints of :mod:`exporters.checkpoint`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from exporters.journal_tree import JournalTree

VERIFY_EXAMPLES = """
\b
Examples:
  mlflow-prov verify --tracking-uri prov:///data/runs
  mlflow-prov verify --tracking-uri prov:///data/runs --experiment mnist --json
  mlflow-prov verify --tracking-uri prov:///data/runs --artifacts
  mlflow-prov verify --tracking-uri prov:///data/runs --checkpoint /safe/place/journal.checkpoint
  mlflow-prov verify --tracking-uri prov:///data/runs --crate out/mnist/run-1a2b.crate.zip
  mlflow-prov verify --crate out/mnist/run-1a2b.crate.zip \\
      --public-key /safe/place/journal.checkpoint.pub

\b
Exit status: 0 when nothing is wrong; 1 when a problem was found (one line each, naming the
chain and event seq, or the MLflow row: run, key, step); 2 for bad input.
"""


@click.command("verify", epilog=VERIFY_EXAMPLES)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
              help="A prov store: prov:///dir, prov+sqlite://, prov+postgresql://, ...")
@click.option("--experiment", help="Only this experiment (name or id) and its runs.")
@click.option("--run", "run_ids", multiple=True, help="Only this run (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="A signed checkpoint of the journal's Merkle tree (C2SP tlog-checkpoint): "
                   "when the file exists, the store must extend it (a consistency proof); "
                   "then, when nothing is wrong, it is written anew, with its verifier key "
                   "in FILE.pub.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ed25519 key that signs checkpoints (created, mode 0600, on first use; "
                   "default ~/.config/mlflow-prov/checkpoint-ed25519.pem). Keep it outside "
                   "the database's reach.")
@click.option("--crate", "crates", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Check an exported RO-Crate (zip or folder) against the store: each run's "
                   "recorded journal head must still be in its chain (repeatable). With "
                   "--public-key, check its inclusion proofs instead, with no store.")
@click.option("--public-key", "public_key",
              help="Verifier key of the checkpoint signer (name+hash+base64, or the .pub file "
                   "written beside a checkpoint): check each --crate offline, reading no "
                   "store.")
@click.option("--artifacts", "check_files", is_flag=True,
              help="Also rehash every artifact file of the runs and LoggedModels in scope and "
                   "name each one changed, added or removed since the journal recorded it.")
@click.option("--artifact-server", metavar="URL",
              help="With --artifacts: the mlflow server (http://HOST:PORT) that serves "
                   "mlflow-artifacts: roots, for stores written through one.")
def verify_command(tracking_uri: str | None, experiment: str | None, run_ids: tuple[str, ...],
                   as_json: bool, checkpoint: Path | None, key_path: Path | None,
                   crates: tuple[Path, ...], public_key: str | None,
                   check_files: bool = False, artifact_server: str | None = None) -> None:
    """Check every journal chain and reconcile MLflow's rows with the journal."""
    from exporters.checkpoint import DEFAULT_KEY, CheckpointError
    from exporters.journal_tree import journal_tree
    from exporters.privacy import redact
    from exporters.verify import verify_store
    from mlflow_prov.journal import JournalUnavailableError, require_existing_store
    from mlflow_prov.stored_rows import UnknownSchemaError

    if public_key is not None:
        _verify_offline(crates, public_key, as_json)
        return
    if not tracking_uri:
        raise click.UsageError("no store to verify: pass --tracking-uri prov:///dir "
                               "or set MLFLOW_TRACKING_URI")
    started = time.perf_counter()
    messages: list[str] = []
    try:
        require_existing_store(tracking_uri)
        experiment_id = _experiment_id(tracking_uri, experiment) if experiment else None
        # the tree to sign is read before the check, so every event in it was checked;
        # events committed meanwhile wait for the next checkpoint
        tree = journal_tree(tracking_uri) if checkpoint is not None else None
        report = verify_store(tracking_uri, experiment_id, run_ids)
        lines = [str(problem) for problem in report.problems]
        if checkpoint is not None and tree is not None:
            lines += _checkpoint(tracking_uri, checkpoint, key_path or DEFAULT_KEY, report,
                                 tree, scoped=bool(experiment or run_ids), messages=messages)
        for crate in crates:
            lines += _check_crate(tracking_uri, crate)
        if check_files:
            lines += _check_artifacts(tracking_uri, experiment_id, run_ids, artifact_server,
                                      report.notes)
    except (JournalUnavailableError, UnknownSchemaError, CheckpointError) as error:
        raise click.ClickException(redact(str(error).strip().splitlines()[0])) from error
    seconds = time.perf_counter() - started
    # a problem names a registered model's chain by the model's name, a note a URI
    lines, notes, messages = redact(lines), redact(list(report.notes)), redact(messages)
    if as_json:
        click.echo(json.dumps({
            "ok": not lines, "chains": report.chains, "runs": report.runs,
            "metric_rows": report.metric_rows, "seconds": round(seconds, 3),
            "problems": lines, "notes": notes, "messages": messages}, indent=1))
    else:
        for line in [*lines, *(f"note: {note}" for note in notes), *messages]:
            click.echo(line)
        click.echo(f"{'FAILED' if lines else 'ok'}: {report.chains} chain(s), {report.runs} "
                   f"run(s), {report.metric_rows} metric row(s) checked in {seconds:.2f} s; "
                   f"{len(lines)} problem(s)")
    if lines:
        raise SystemExit(1)


def _experiment_id(tracking_uri: str, experiment: str) -> str:
    from mlflow import MlflowClient

    from exporters.privacy import redact_text

    if experiment.isdigit():
        return experiment
    found = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    if found is None:
        raise click.BadParameter(f"no experiment named {experiment!r} in "
                                 f"{redact_text(tracking_uri)}",
                                 param_hint="--experiment")
    return str(found.experiment_id)


def _checkpoint(tracking_uri: str, path: Path, key_path: Path, report: Any,
                tree: JournalTree, *, scoped: bool, messages: list[str]) -> list[str]:
    """Check the store against the checkpoint when it exists (a consistency proof, or chain
    by chain for an earlier version's file); sign ``tree`` (read before the store was
    checked) when all is well."""
    from exporters import checkpoint

    key, created = checkpoint.load_or_create_key(key_path)
    if created:
        messages.append(f"created the checkpoint signing key {key_path} (mode 0600); keep "
                        "it where the database's writers cannot reach")
    findings = []
    legacy = path.exists() and checkpoint.is_legacy(path)
    if legacy:
        in_scope = set(report.heads) if scoped else None
        findings = checkpoint.check_heads(path, key, tracking_uri, in_scope)
    elif path.exists():
        findings = checkpoint.check_tree(path, key, tree)
    lines = [f"{finding.where}: {finding.what}" for finding in findings]
    if lines or report.problems:
        messages.append(f"checkpoint {path} not updated: fix or explain the problems first")
    elif scoped:
        messages.append(f"checkpoint {path} not updated: it covers the whole journal, so "
                        "only a verify without --experiment/--run advances it")
    elif tree.size == 0:
        messages.append(f"checkpoint {path} not written: the journal has no events yet")
    else:
        public = checkpoint.write_tree(path, key, tree)
        messages.append(f"checkpoint {path} written: {tree.origin}, {tree.size} event(s); "
                        f"verifier key in {public}"
                        + (" (replaces the chain-head checkpoint of an earlier version)"
                           if legacy else ""))
    return lines


def _check_artifacts(tracking_uri: str, experiment_id: str | None, run_ids: tuple[str, ...],
                     artifact_server: str | None, notes: list[str]) -> list[str]:
    """``--artifacts``: problem lines; the runs with no artifact record join the notes."""
    from exporters.verify_artifacts import check_artifacts

    found = check_artifacts(tracking_uri, experiment_id, run_ids, artifact_server)
    notes += found.notes
    return [str(problem) for problem in found.problems]


def _check_crate(tracking_uri: str, crate: Path) -> list[str]:
    from exporters.crate_heads import check_crate

    return [f"{crate}: {line}" for line in check_crate(tracking_uri, crate)]


def _verify_offline(crates: tuple[Path, ...], public_key: str, as_json: bool) -> None:
    """``--crate CRATE --public-key KEY``: each crate's proofs against the signed checkpoint
    it carries, with no store."""
    from exporters.log_proofs import check_crate_offline, read_public_key
    from exporters.signed_note import NoteError

    if not crates:
        raise click.UsageError("--public-key checks crates offline: pass --crate CRATE")
    try:
        verifier = read_public_key(public_key)
    except NoteError as error:
        raise click.BadParameter(str(error), param_hint="--public-key") from error
    lines, summaries = [], []
    for crate in crates:
        problems, summary = check_crate_offline(crate, verifier)
        lines += problems
        summaries += [summary] if summary and not problems else []
    if as_json:
        click.echo(json.dumps({"ok": not lines, "problems": lines, "messages": summaries},
                              indent=1))
    else:
        for line in [*lines, *summaries]:
            click.echo(line)
        click.echo(f"{'FAILED' if lines else 'ok'}: {len(crates)} crate(s) checked offline "
                   f"against {verifier.name}; {len(lines)} problem(s)")
    if lines:
        raise SystemExit(1)
