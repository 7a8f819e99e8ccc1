"""Signed checkpoints of the journal, against a rewrite of its whole history.

Why: the chain's hashes catch an edited or removed event, but someone with write access to
the database can recompute every hash after an edit, head row included, and the chain reads
intact again. A checkpoint records the size and root hash of the journal's Merkle tree
(:mod:`exporters.journal_tree`), signed with an Ed25519 key kept *outside* the database; a
later verify checks, with an RFC 9162 consistency proof, that today's tree extends it
unchanged. Rewriting anything before a checkpoint then shows, unless the attacker also holds
the key file.

A checkpoint is a C2SP ``tlog-checkpoint`` in a C2SP signed note (:mod:`exporters.signed_note`),
so transparency-log witnesses can check and cosign it; the key's verifier form, which they
and ``verify --crate --public-key`` need, is written beside it (``<checkpoint>.pub``).
Checkpoints of earlier versions (signed JSON of each chain's head, :data:`LEGACY_FORMAT`)
are still checked chain by chain, then replaced by a tree checkpoint.

The key is a PEM file (PKCS#8, unencrypted, mode 0600), created on first use at
:data:`DEFAULT_KEY` or where ``--key`` says. Keep it, or a copy of the checkpoint, where the
database's writers cannot reach.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exporters.journal_tree import JournalTree, extends
from exporters.signed_note import (
    Checkpoint,
    NoteError,
    SignatureError,
    VerifierKey,
    open_note,
    sign,
)
from mlflow_prov.journal import chain_hash_at

LEGACY_FORMAT = "mlflow-prov-checkpoint/1"
PUBLIC_KEY_SUFFIX = ".pub"
DEFAULT_KEY = (Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
               / "mlflow-prov" / "checkpoint-ed25519.pem")


class CheckpointError(RuntimeError):
    """A checkpoint or key file that cannot be used (unreadable, not ours, bad JSON)."""


@dataclass(frozen=True)
class CheckpointFinding:
    where: str
    what: str


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The signing key at ``path``; a new one (file mode 0600) when there is none yet.
    Returns the key and whether it was created."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as error:
            raise CheckpointError(f"cannot read the checkpoint key {path}: {error}; pass "
                                  "--key with the key file the checkpoint was signed with")\
                from error
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path} is not an Ed25519 private key")
        return key, False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
    except OSError as error:
        raise CheckpointError(f"cannot create the checkpoint key {path}: {error.strerror}; "
                              "pass --key with a writable path") from error
    return key, True


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def read_heads(path: Path, key: Ed25519PrivateKey) -> tuple[dict[str, list[Any]], str]:
    """The chain heads a checkpoint of an earlier version recorded and when, after checking
    its signature."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        body = {name: document[name] for name in ("format", "created", "store", "heads")}
        signature = base64.b64decode(document["signature"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is not a readable mlflow-prov checkpoint: {error}")\
            from error
    if body["format"] != LEGACY_FORMAT:
        raise CheckpointError(f"{path} has format {body['format']!r}, expected "
                              f"{LEGACY_FORMAT!r}")
    try:
        key.public_key().verify(signature, _signed_bytes(body))
    except InvalidSignature as error:
        raise CheckpointError(f"{path}: signature does not verify with this key (the "
                              "checkpoint was edited, or signed with another --key)") from error
    return body["heads"], body["created"]


def check_heads(path: Path, key: Ed25519PrivateKey, tracking_uri: str,
                chains: set[str] | None = None) -> list[CheckpointFinding]:
    """A checkpoint of an earlier version: each recorded chain (of ``chains``, when given)
    must still pass through its recorded hash at its recorded length: longer is fine (new
    events), different is a rewrite."""
    heads, created = read_heads(path, key)
    findings = []
    for chain, (length, last_hash) in sorted(heads.items()):
        if length == 0 or (chains is not None and chain not in chains):
            continue
        now = chain_hash_at(tracking_uri, chain, length)
        if now is None:
            findings.append(CheckpointFinding(
                f"chain {chain}", f"has fewer than the {length} events checkpointed at "
                f"{created} (truncated or deleted)"))
        elif now != last_hash:
            findings.append(CheckpointFinding(
                f"chain {chain}", f"event {length} no longer hashes to {last_hash[:12]}… "
                f"checkpointed at {created} (rewritten since)"))
    return findings


def is_legacy(path: Path) -> bool:
    """Whether ``path`` holds a checkpoint of an earlier version (signed JSON heads)."""
    try:
        return path.read_text(encoding="utf-8").lstrip().startswith("{")
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from error


def open_checkpoint(path: Path, key: Ed25519PrivateKey) -> Checkpoint:
    """The tree checkpoint at ``path``, after checking that ``key`` signed it."""
    try:
        note = path.read_text(encoding="utf-8")
        claimed = Checkpoint.unverified(note)
        return Checkpoint.parse(open_note(note, VerifierKey.of(claimed.origin, key)))
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from error
    except SignatureError as error:
        raise CheckpointError(f"{path}: signature does not verify with this key (the "
                              "checkpoint was edited, or signed with another --key)") from error
    except NoteError as error:
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error


def check_tree(path: Path, key: Ed25519PrivateKey, tree: JournalTree) -> list[CheckpointFinding]:
    """The journal's tree must extend the checkpointed one (a consistency proof, no rehash)."""
    checkpoint = open_checkpoint(path, key)
    problem = extends(tree, checkpoint)
    return [CheckpointFinding(f"checkpoint {path}", problem)] if problem else []


def write_tree(path: Path, key: Ed25519PrivateKey, tree: JournalTree) -> Path:
    """Sign and write the tree's checkpoint atomically, and its verifier key beside it;
    returns the verifier key's file."""
    note = sign(tree.checkpoint().text(), tree.origin, key)
    public = path.with_name(path.name + PUBLIC_KEY_SUFFIX)
    for target, text in ((path, note), (public, VerifierKey.of(tree.origin, key).text() + "\n")):
        temporary = target.with_name(target.name + ".tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(target)
        except OSError as error:
            raise CheckpointError(f"cannot write the checkpoint {target}: "
                                  f"{error.strerror}") from error
    return public
