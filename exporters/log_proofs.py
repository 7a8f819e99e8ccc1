"""Inclusion proofs that travel with an export, and their check with no store at all.

``mlflow-prov export --checkpoint FILE`` writes ``run-<id>/transparency-log.json`` for each
run (so every crate packs it): the signed checkpoint note that ``verify --checkpoint`` wrote,
and each of the run's events up to that checkpoint by leaf index and stored hash, with its
RFC 9162 inclusion proof. ``mlflow-prov verify --crate CRATE --public-key KEY`` then checks,
from the crate alone: the checkpoint's signature against the key, each event's inclusion in
the signed tree, and that the run's ``journalHead`` in the crate's metadata is one of them.

Payloads stay out of the file: a leaf is an event's hash, so the proofs add nothing that the
export's redaction (``--redact``, secret patterns) would have to hide.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from exporters.crate_heads import METADATA, crate_heads
from exporters.errors import ExportError
from exporters.journal_tree import extends, journal_tree, leaf_of, run_inclusion
from exporters.layout import LOG_PROOFS_FILE
from exporters.merkle import ProofError, verify_inclusion
from exporters.signed_note import Checkpoint, NoteError, VerifierKey, open_note

FORMAT = "mlflow-prov-inclusion/1"


def run_proofs(tracking_uri: str, checkpoint_path: Path,
               run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each run's proof document against the checkpoint at ``checkpoint_path``; the tree is
    built once for all runs. Raises :class:`ExportError` when the store no longer extends
    the checkpoint (nothing could be proved against it)."""
    from exporters.remote_journal import is_http

    if is_http(tracking_uri):
        raise ExportError("--checkpoint needs the store's database (a prov:// URI), not a "
                          "tracking server: inclusion proofs read every event's hash")
    try:
        note = checkpoint_path.read_text(encoding="utf-8")
        checkpoint = Checkpoint.unverified(note)
    except (OSError, UnicodeDecodeError, NoteError) as error:
        raise ExportError(f"cannot use the checkpoint {checkpoint_path}: {error}; pass the "
                          "file `mlflow-prov verify --checkpoint` wrote") from error
    tree = journal_tree(tracking_uri)
    problem = extends(tree, checkpoint)
    if problem:
        raise ExportError(f"the store does not extend the checkpoint {checkpoint_path}: "
                          f"{problem}; run mlflow-prov verify")
    return {run_id: {"format": FORMAT, "checkpoint": note,
                     **run_inclusion(tracking_uri, tree, run_id, checkpoint.size)}
            for run_id in run_ids}


def write_run_proofs(run_dir: Path, document: dict[str, Any]) -> Path:
    """The run's ``transparency-log.json``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / LOG_PROOFS_FILE
    target.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return target


def read_public_key(value: str) -> VerifierKey:
    """``--public-key``: a verifier key (``name+hash+base64``) or a file holding one (the
    ``.pub`` file written beside a checkpoint). Raises :class:`NoteError`."""
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else value
    except (OSError, UnicodeDecodeError) as error:
        raise NoteError(f"cannot read the public key {value}: {error}") from error
    return VerifierKey.parse(text)


def _proof_documents(crate: Path) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Every proof file in a crate (zip or folder), by its name in the crate, and the
    crate's recorded journal heads."""
    try:
        if crate.is_dir():
            texts = [(str(path.relative_to(crate)), path.read_text(encoding="utf-8"))
                     for path in sorted(crate.rglob(LOG_PROOFS_FILE))]
        else:
            with zipfile.ZipFile(crate) as archive:
                texts = [(name, archive.read(name).decode("utf-8"))
                         for name in archive.namelist() if Path(name).name == LOG_PROOFS_FILE]
        documents = [(name, json.loads(text)) for name, text in texts]
    except (OSError, UnicodeDecodeError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{crate}: cannot read its {LOG_PROOFS_FILE}: {error}") from error
    return documents, crate_heads(crate)


def check_crate_offline(crate: Path, verifier: VerifierKey) -> tuple[list[str], str]:
    """Problem lines (each naming the crate and the run) and a one-line summary, from the
    crate and the public key only. Every run whose ``journalHead`` the crate records must
    have a proof file, and that head must be one of its proved events: an unproved head
    proves nothing, whatever else the crate carries."""
    try:
        named, heads = _proof_documents(crate)
    except ValueError as error:
        return [str(error)], ""
    if not named:
        return [f"{crate}: carries no {LOG_PROOFS_FILE} (export it with --checkpoint FILE, "
                f"the checkpoint `verify --checkpoint` wrote); {METADATA} alone proves "
                "nothing offline"], ""
    lines: list[str] = []
    events = 0
    documents: dict[str, dict[str, Any]] = {}
    for name, document in named:
        if not isinstance(document, dict):
            lines.append(f"{crate}: {name} is not a JSON object (re-export the crate with "
                         "--checkpoint FILE)")
            continue
        run_lines, proved = _check_document(name, document, verifier, heads)
        lines += [f"{crate}: {line}" for line in run_lines]
        events += proved
        documents[str(document.get("run_id"))] = document
    lines += [f"{crate}: run {run_id}: records a journal head but carries no {LOG_PROOFS_FILE} "
              "for it, so nothing proves that head (re-export it with --checkpoint FILE)"
              for run_id in sorted(heads) if run_id not in documents]
    return lines, (f"{crate}: {events} event(s) of {len(named)} run(s) proved in the "
                   f"tree signed by {verifier.name}")


def _check_document(name: str, document: dict[str, Any], verifier: VerifierKey,
                    heads: dict[str, str]) -> tuple[list[str], int]:
    run_id = str(document.get("run_id"))
    if document.get("format") != FORMAT:
        return [f"run {run_id}: {name} has format {document.get('format')!r}, "
                f"expected {FORMAT!r}"], 0
    try:
        checkpoint = Checkpoint.parse(open_note(str(document["checkpoint"]), verifier))
    except (KeyError, NoteError) as error:
        return [f"run {run_id}: the checkpoint does not verify with this public key: "
                f"{error}"], 0
    if document.get("tree_size") != checkpoint.size:
        return [f"run {run_id}: proofs are for a tree of {document.get('tree_size')} events, "
                f"the signed checkpoint has {checkpoint.size}"], 0
    events = document.get("events", [])
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        return [f"run {run_id}: {name}: 'events' must be a list of objects (leaf_index, "
                "hash, proof); re-export the crate with --checkpoint FILE"], 0
    lines, proved = [], set()
    for event in events:
        try:
            verify_inclusion(int(event["leaf_index"]), checkpoint.size, leaf_of(event["hash"]),
                             [bytes.fromhex(node) for node in event["proof"]], checkpoint.root)
        except (KeyError, TypeError, ValueError, ProofError) as error:
            lines.append(f"run {run_id}: event {event.get('seq')} is not proved in the signed "
                         f"tree ({error})")
        else:
            proved.add(event["hash"])
    head = heads.get(run_id, "").partition(":")[2]
    if head and head not in proved:
        lines.append(f"run {run_id}: the crate's journal head {head[:12]}… is not among the "
                     "events proved in the signed tree"
                     + ("; it was written after the checkpoint: advance the checkpoint "
                        "(verify --checkpoint) and re-export" if document.get("later_events")
                        else ""))
    return lines, len(proved)
