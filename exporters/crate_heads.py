"""Check an exported RO-Crate against its store: ``mlflow-prov verify --crate CRATE``.

Each run's ``CreateAction`` in a crate records the head of the run's journal chain at export
time (``journalHead``: ``"<length>:<last hash>"``). The store's chain must still pass through
that hash at that length: later events are fine, a different hash means the store's history
was rewritten after the export (or the crate comes from another store).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from exporters.records import RunRecord
from mlflow_prov.journal import chain_hash_at, chain_head
from mlflow_prov.vocabulary import JOURNAL_HEAD_ATTRIBUTE, JOURNAL_HEAD_IRI, run_chain

METADATA = "ro-crate-metadata.json"


def format_head(length: int, last_hash: str | None) -> str | None:
    """The ``journalHead`` value of a chain head, ``None`` for an empty chain."""
    return f"{length}:{last_hash}" if length and last_hash else None


def crate_heads(crate: Path) -> dict[str, str]:
    """Run id -> recorded journal head, for each CreateAction of a crate (zip or folder)."""
    try:
        if crate.is_dir():
            text = (crate / METADATA).read_text(encoding="utf-8")
        else:
            with zipfile.ZipFile(crate) as archive:
                text = archive.read(METADATA).decode("utf-8")
        graph = json.loads(text)["@graph"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{crate} is not an RO-Crate with a readable {METADATA}: {error}")\
            from error
    heads = {}
    for entity in graph:
        types = entity.get("@type")
        types = types if isinstance(types, list) else [types]
        head = entity.get(JOURNAL_HEAD_ATTRIBUTE) or entity.get(JOURNAL_HEAD_IRI)
        if "CreateAction" in types and head and entity.get("identifier"):
            heads[str(entity["identifier"])] = str(head)
    return heads


def check_crate(tracking_uri: str, crate: Path) -> list[str]:
    """One line per run whose recorded head the store's chain no longer passes through."""
    try:
        heads = crate_heads(crate)
    except ValueError as error:
        return [str(error)]
    if not heads:
        return ["no run in the crate records a journal head (exported from a store without a "
                "journal, or by an mlflow-prov that did not record heads)"]
    return [line for run_id, head in sorted(heads.items())
            if (line := _check_head(tracking_uri, run_id, head))]


def _check_head(tracking_uri: str, run_id: str, head: Any) -> str | None:
    length_text, _, recorded = head.partition(":")
    if not length_text.isdigit() or not recorded:
        return f"run {run_id}: journal head {head!r} is not <length>:<hash>"
    length = int(length_text)
    now = chain_hash_at(tracking_uri, run_chain(run_id), length)
    if now is None:
        return (f"run {run_id}: the store's chain has fewer than the {length} events the "
                "crate recorded (truncated or deleted since the export)")
    if now != recorded:
        return (f"run {run_id}: event {length} of the store's chain no longer hashes to "
                f"{recorded[:12]}… (rewritten since the export, or another store)")
    return None


def with_journal_head(record: RunRecord, tracking_uri: str) -> RunRecord:
    """The run record with its chain's head as it is now, for the export to embed (from a
    server's ``/prov/api/head`` when the export reads over HTTP)."""
    from exporters.remote_journal import is_http, remote_chain_head

    head = (remote_chain_head(tracking_uri, record.run_id) if is_http(tracking_uri)
            else chain_head(tracking_uri, run_chain(record.run_id)))
    return replace(record, journal_head=format_head(*head) if head else None)
