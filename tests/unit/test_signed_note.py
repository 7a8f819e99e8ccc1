"""C2SP signed notes and checkpoints (:mod:`exporters.signed_note`) against the published Go
``golang.org/x/mod/sumdb/note`` example: Ed25519 is deterministic, so signing its text with
its key must give its signature byte for byte, and opening its note with its verifier key
must give its text back."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exporters.signed_note import Checkpoint, NoteError, VerifierKey, open_note, sign

# golang.org/x/mod/sumdb/note, note.go package documentation (the PeterNeumann example).
SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = ("If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n")
NOTE = (TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
        "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def _go_signer() -> Ed25519PrivateKey:
    seed = base64.b64decode(SIGNER.split("+", 4)[4])[1:]
    return Ed25519PrivateKey.from_private_bytes(seed)


def test_signing_reproduces_the_go_example():
    key = _go_signer()
    assert VerifierKey.of("PeterNeumann", key).text() == VERIFIER
    assert sign(TEXT, "PeterNeumann", key) == NOTE


def test_opening_checks_the_signature():
    verifier = VerifierKey.parse(VERIFIER)
    assert open_note(NOTE, verifier) == TEXT
    with pytest.raises(NoteError, match="does not verify"):
        open_note(NOTE.replace("cryptography", "cryptographY"), verifier)
    other = VerifierKey.of("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="no signature by PeterNeumann"):
        open_note(NOTE, other)


def test_a_witness_cosignature_is_left_alone():
    witness = sign(TEXT, "witness.example", Ed25519PrivateKey.generate())
    cosigned = NOTE + witness.split("\n\n")[1]
    assert open_note(cosigned, VerifierKey.parse(VERIFIER)) == TEXT


def test_a_mangled_verifier_key_is_refused():
    for bad in (VERIFIER.replace("c74f20a3", "c74f20a4"), VERIFIER.replace("+ARpc", "+AhKc"),
                "PeterNeumann", "Peter Neumann+c74f20a3+" + VERIFIER.split("+", 2)[2]):
        with pytest.raises(NoteError):
            VerifierKey.parse(bad)


def test_a_checkpoint_round_trips_and_rejects_what_is_not_one():
    checkpoint = Checkpoint("example.com/log", 5, bytes(range(32)))
    assert checkpoint.text() == "example.com/log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert Checkpoint.parse(checkpoint.text() + "extension line\n") == checkpoint
    for bad in ("example.com/log\n05\nAAEC\n", "example.com/log\nfive\n\n", "\n5\n\n"):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)


def test_a_tree_size_of_non_ascii_digits_is_a_note_error():
    """``"²".isdigit()`` is true but ``int("²")`` raises: a superscript size must be refused
    as not a checkpoint, not escape as a bare ValueError."""
    root = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    for size in ("²", "٣"):
        with pytest.raises(NoteError, match="not a tlog checkpoint"):
            Checkpoint.parse(f"example.com/log\n{size}\n{root}\n")
