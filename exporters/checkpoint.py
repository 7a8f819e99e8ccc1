"""Signed checkpoints of the journal's chain heads, against a rewrite of a whole chain.

Why: the chain's hashes catch an edited or removed event, but someone with write access to
the database can recompute every hash after an edit, head row included, and the chain reads
intact again. A checkpoint records each chain's length and last hash, signed with an Ed25519
key kept *outside* the database; a later verify checks that each chain still passes through
the recorded hash at the recorded length. Rewriting anything before a checkpoint then shows,
unless the attacker also holds the key file.

The key is a PEM file (PKCS#8, unencrypted, mode 0600), created on first use at
:data:`DEFAULT_KEY` or where ``--key`` says. Keep it, or a copy of the checkpoint, where the
database's writers cannot reach.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlflow_prov.journal import chain_hash_at

FORMAT = "mlflow-prov-checkpoint/1"
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


def _without_credentials(uri: str) -> str:
    """The store's URI for people reading the file, without a database password in it."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    return parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl()


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def read_heads(path: Path, key: Ed25519PrivateKey) -> tuple[dict[str, list[Any]], str]:
    """The chain heads a checkpoint recorded and when, after checking its signature."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        body = {name: document[name] for name in ("format", "created", "store", "heads")}
        signature = base64.b64decode(document["signature"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is not a readable mlflow-prov checkpoint: {error}")\
            from error
    if body["format"] != FORMAT:
        raise CheckpointError(f"{path} has format {body['format']!r}, expected {FORMAT!r}")
    try:
        key.public_key().verify(signature, _signed_bytes(body))
    except InvalidSignature as error:
        raise CheckpointError(f"{path}: signature does not verify with this key (the "
                              "checkpoint was edited, or signed with another --key)") from error
    return body["heads"], body["created"]


def check(path: Path, key: Ed25519PrivateKey, tracking_uri: str,
          chains: set[str] | None = None) -> list[CheckpointFinding]:
    """Each recorded chain (of ``chains``, when given) must still pass through its recorded
    hash at its recorded length: longer is fine (new events), different is a rewrite."""
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


def write(path: Path, key: Ed25519PrivateKey, tracking_uri: str,
          heads: dict[str, tuple[int, str | None]]) -> None:
    """Sign and write the heads (merged over the checkpoint already at ``path``), atomically."""
    merged: dict[str, list[Any]] = {}
    if path.exists():
        merged.update(read_heads(path, key)[0])
    merged.update({chain: [length, last_hash] for chain, (length, last_hash) in heads.items()
                   if length})
    body = {"format": FORMAT, "created": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "store": _without_credentials(tracking_uri), "heads": merged}
    document = {**body, "public_key": _public_key_text(key),
                "signature": base64.b64encode(key.sign(_signed_bytes(body))).decode("ascii")}
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        raise CheckpointError(f"cannot write the checkpoint {path}: {error.strerror}") from error
