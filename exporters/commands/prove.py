"""``mlflow-prov prove RUN``: a run's events with their inclusion proofs in the journal's
Merkle tree (:mod:`exporters.journal_tree`), against a signed checkpoint or the tree now."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from exporters.commands.common import one_line, tracking_uri_option

if TYPE_CHECKING:
    from exporters.signed_note import Checkpoint

PROVE_EXAMPLES = """
\b
Examples:
  mlflow-prov prove 1a2b3c4d5e6f... --tracking-uri prov:///data/runs
  mlflow-prov prove 1a2b3c4d5e6f... --checkpoint /safe/place/journal.checkpoint --json

\b
Each event is a leaf (its stored hash) of an RFC 6962 Merkle tree over the whole journal in
write order; its proof is the RFC 9162 inclusion proof (hex, bottom up) against the root.
"""


@click.command("prove", epilog=PROVE_EXAMPLES)
@tracking_uri_option
@click.argument("run_id")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Prove against this signed checkpoint (`verify --checkpoint` wrote it) "
                   "instead of the tree as it is now.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ed25519 key that signed the checkpoint (default "
                   "~/.config/mlflow-prov/checkpoint-ed25519.pem): its signature is checked "
                   "when the key file exists, else the output says it was not.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the form crates carry).")
def prove_command(tracking_uri: str | None, run_id: str, checkpoint: Path | None,
                  key_path: Path | None, as_json: bool) -> None:
    """Print the inclusion proof of each of RUN_ID's journal events."""
    from exporters.checkpoint import CheckpointError
    from exporters.journal_tree import extends, journal_tree, run_inclusion
    from exporters.signed_note import NoteError
    from mlflow_prov.journal import JournalUnavailableError, require_existing_store

    if not tracking_uri:
        raise click.UsageError("no store: pass --tracking-uri prov:///dir "
                               "or set MLFLOW_TRACKING_URI")
    try:
        require_existing_store(tracking_uri)
        tree = journal_tree(tracking_uri)
        note = checkpoint.read_text(encoding="utf-8") if checkpoint else None
        signed, checked = (_open(checkpoint, key_path) if checkpoint
                           else (tree.checkpoint(), ""))
        problem = extends(tree, signed)
        if problem:
            raise click.ClickException(f"the store does not extend {checkpoint}: {problem}")
        document = run_inclusion(tracking_uri, tree, run_id, signed.size)
    except (JournalUnavailableError, NoteError, CheckpointError, OSError,
            UnicodeDecodeError) as error:
        raise click.ClickException(one_line(str(error))) from error
    if not document["events"] and not document["later_events"]:
        raise click.ClickException(f"run {run_id} has no events in the journal of "
                                   f"{tracking_uri}; check the run id")
    root = base64.b64encode(signed.root).decode("ascii")
    if as_json:
        click.echo(json.dumps({"origin": signed.origin, "root": root, "checkpoint": note,
                               "signature": checked or None, **document}, indent=1))
        return
    click.echo(f"run {run_id}: {len(document['events'])} event(s) in the tree of "
               f"{signed.origin}, size {signed.size}, root {root}"
               + (f" (checkpoint {checkpoint}, {checked})" if checkpoint else " (now, unsigned)"))
    for event in document["events"]:
        click.echo(f"leaf {event['leaf_index']} (seq {event['seq']}, {event['chain']}): "
                   f"{event['hash']}")
        click.echo(f"  proof: {' '.join(event['proof']) or '(none: a one-event tree)'}")
    if document["later_events"]:
        click.echo(f"{document['later_events']} later event(s) not covered by the checkpoint: "
                   "run verify --checkpoint to advance it")


def _open(checkpoint: Path, key_path: Path | None) -> tuple[Checkpoint, str]:
    """The checkpoint, with its signature checked when the signing key is at hand (``--key``
    or the default key file); else read unchecked, and said so."""
    from exporters.checkpoint import DEFAULT_KEY, load_or_create_key, open_checkpoint
    from exporters.signed_note import Checkpoint

    key_path = key_path or DEFAULT_KEY
    if not key_path.exists():
        return (Checkpoint.unverified(checkpoint.read_text(encoding="utf-8")),
                f"signature not checked: no key at {key_path}; pass --key")
    return open_checkpoint(checkpoint, load_or_create_key(key_path)[0]), \
        f"signature checked with {key_path}"
