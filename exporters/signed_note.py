"""C2SP signed notes and transparency-log checkpoints, with Ed25519 keys.

Why this format: a checkpoint written as a C2SP ``tlog-checkpoint`` inside a C2SP
``signed-note`` is what existing witness tooling reads, checks for consistency and cosigns,
so a journal's checkpoints can be watched by parties that do not trust whoever runs the
database. The rules (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint):

- a note is UTF-8 text ending in a newline, then a blank line, then one line per signature:
  ``— <key name> <base64(4-byte key hash || signature)>`` (an em dash and a space first);
- for an Ed25519 key the key hash is the first 4 bytes of
  ``SHA-256(<key name> || "\\n" || 0x01 || <32-byte public key>)``, and the verifier key is
  written ``<key name>+<key hash, 8 hex digits>+<base64(0x01 || public key)>``;
- a checkpoint's text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` (extension lines
  may follow), signed by a key whose name is the origin.

``tests/unit/test_signed_note.py`` checks signing and opening against the published Go
``sumdb/note`` example, which every implementation reproduces byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ED25519 = b"\x01"
SIGNATURE_DASH = "\u2014 "
SIGNATURE_SPLIT = "\n\n"


class NoteError(ValueError):
    """A note, checkpoint or verifier key that is malformed or does not verify."""


class SignatureError(NoteError):
    """A well-formed note that the given key did not sign (or not over this text)."""


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key: who may sign a note, as witnesses name it."""

    name: str
    public_key: bytes

    @classmethod
    def of(cls, name: str, key: Ed25519PrivateKey) -> VerifierKey:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        return cls(_check_name(name), raw)

    @property
    def key_hash(self) -> bytes:
        material = self.name.encode("utf-8") + b"\n" + ED25519 + self.public_key
        return hashlib.sha256(material).digest()[:4]

    def text(self) -> str:
        """``<name>+<hash hex>+<base64(0x01 || public key)>``."""
        encoded = base64.b64encode(ED25519 + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """A verifier key from its text form; :class:`NoteError` when it is not one."""
        name, _, rest = text.strip().partition("+")
        key_hash, _, encoded = rest.partition("+")
        try:
            material = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise NoteError(f"verifier key {text.strip()!r}: key is not base64") from error
        if material[:1] != ED25519 or len(material) != 33:
            raise NoteError(f"verifier key {text.strip()!r} is not an Ed25519 key "
                            "(<name>+<hash>+<base64 of 0x01 and 32 key bytes>)")
        key = cls(_check_name(name), material[1:])
        if key.key_hash.hex() != key_hash.lower():
            raise NoteError(f"verifier key {text.strip()!r}: its key hash does not match its "
                            "name and key")
        return key


def sign(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note of ``text`` (which must end with a newline) by ``key`` named ``name``."""
    if not text.endswith("\n") or SIGNATURE_SPLIT in text:
        raise NoteError("a note's text must end with a newline and hold no blank line")
    signature = key.sign(text.encode("utf-8"))
    blob = base64.b64encode(VerifierKey.of(name, key).key_hash + signature).decode("ascii")
    return f"{text}\n{SIGNATURE_DASH}{name} {blob}\n"


def open_note(note: str, verifier: VerifierKey) -> str:
    """The text of ``note`` once ``verifier``'s signature on it checks; other signatures
    (a witness's cosignature) are left alone. :class:`NoteError` otherwise."""
    split = note.rfind(SIGNATURE_SPLIT)
    if split < 0 or not note.endswith("\n"):
        raise NoteError("not a signed note (no blank line before signature lines)")
    text, signatures = note[:split + 1], note[split + 2:]
    public_key = Ed25519PublicKey.from_public_bytes(verifier.public_key)
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_DASH):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, encoded = line[len(SIGNATURE_DASH):].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise NoteError(f"malformed signature line {line!r}") from error
        if name != verifier.name or blob[:4] != verifier.key_hash:
            continue
        try:
            public_key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature as error:
            raise SignatureError(f"the signature of {name} does not verify (the note was edited, "
                            "or signed with another key)") from error
        return text
    raise SignatureError(f"no signature by {verifier.name} with key hash "
                    f"{verifier.key_hash.hex()} (signed with another key)")


@dataclass(frozen=True)
class Checkpoint:
    """A transparency log's size and root hash, named by its origin."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint in a note's text (extension lines after the root are allowed)."""
        lines = text.split("\n")
        try:
            origin, size, root = lines[0], lines[1], base64.b64decode(lines[2], validate=True)
        except (IndexError, binascii.Error) as error:
            raise NoteError("not a tlog checkpoint (origin, tree size, base64 root hash)")\
                from error
        decimal = size.isascii() and size.isdigit() and (size == "0" or size[0] != "0")
        if not origin or not decimal or len(root) != 32:
            raise NoteError("not a tlog checkpoint (origin, tree size, base64 root hash)")
        return cls(origin, int(size), root)

    @classmethod
    def unverified(cls, note: str) -> Checkpoint:
        """The checkpoint a signed note claims, before any signature is checked: its origin
        names the key to check it with."""
        split = note.rfind(SIGNATURE_SPLIT)
        if split < 0:
            raise NoteError("not a signed note (no blank line before signature lines)")
        return cls.parse(note[:split + 1])
