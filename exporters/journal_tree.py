"""The journal as a transparency log: a Merkle tree over its events, and proofs from it.

Leaves: every journal event, of every chain, in ``seq`` order; leaf ``i`` is the ``i``-th
event (0-based), whatever gaps its ``seq`` numbers have. A leaf's bytes are the event's
stored SHA-256 hash (32 bytes): that hash covers the event's whole content and its
predecessor's hash (:func:`mlflow_prov.journal.event_hash`), so a leaf commits to the event
and to its chain up to it, and the tree is built from the hash column alone, never the
payloads. ``verify`` still recomputes each hash from its content; the tree adds that the
history as a whole cannot be rewritten, hashes and all, without the root changing.

The log's origin (the name witnesses know it by, and its key's name) is
``mlflow-prov/<first 16 hex digits of the first event's hash>``: stable for one journal
wherever its database moves, different for every other journal.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from exporters.merkle import MerkleTree, ProofError, leaf_hash
from exporters.signed_note import Checkpoint
from mlflow_prov.journal import read_event_hashes, read_events

ORIGIN_PREFIX = "mlflow-prov/"


def leaf_of(event_hash: str) -> bytes:
    """The leaf hash of an event: ``SHA-256(0x00 || the event's 32 hash bytes)``."""
    return leaf_hash(bytes.fromhex(event_hash))


@dataclass(frozen=True)
class JournalTree:
    """The Merkle tree of one journal, with each leaf's ``seq``."""

    seqs: list[int]
    tree: MerkleTree
    origin: str

    @property
    def size(self) -> int:
        return self.tree.size

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """The (unsigned) checkpoint of the tree's first ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        return Checkpoint(self.origin, size, self.tree.root(size))

    def index_of(self, seq: int) -> int | None:
        """Event ``seq``'s leaf index; ``None`` for an event the tree was built without (one
        committed while it was read)."""
        index = bisect.bisect_left(self.seqs, seq)
        return index if index < len(self.seqs) and self.seqs[index] == seq else None


def journal_tree(tracking_uri: str) -> JournalTree:
    """Read every event's hash, in ``seq`` order, and build the tree (O(n) hashes)."""
    seqs, hashes = read_event_hashes(tracking_uri)
    origin = f"{ORIGIN_PREFIX}{hashes[0][:16]}" if hashes else f"{ORIGIN_PREFIX}empty"
    return JournalTree(seqs, MerkleTree([leaf_of(digest) for digest in hashes]), origin)


def extends(tree: JournalTree, checkpoint: Checkpoint) -> str | None:
    """``None`` when the journal's tree extends ``checkpoint``'s, shown by an RFC 9162
    consistency proof from its size to now; else the one line that says how it does not."""
    from exporters.merkle import verify_consistency

    if checkpoint.origin != tree.origin:
        return (f"the checkpoint is of log {checkpoint.origin}, this journal is "
                f"{tree.origin} (its first event was rewritten, or this is another store)")
    if checkpoint.size > tree.size:
        return (f"the journal has {tree.size} events, fewer than the {checkpoint.size} "
                "checkpointed (events deleted since)")
    try:
        verify_consistency(checkpoint.size, tree.size, checkpoint.root, tree.tree.root(),
                           tree.tree.consistency_proof(checkpoint.size))
    except ProofError:
        return (f"the journal's first {checkpoint.size} events no longer hash to the "
                "checkpointed root: history rewritten since the checkpoint")
    return None


def run_inclusion(tracking_uri: str, tree: JournalTree, run_id: str,
                  size: int | None = None) -> dict[str, Any]:
    """Each of a run's events (every chain that names the run) with its leaf index and its
    inclusion proof in the tree of ``size`` leaves; events written after that are counted
    in ``later_events``, without a proof."""
    size = tree.size if size is None else size
    proved, later = [], 0
    for event in read_events(tracking_uri, run_id=run_id):
        index = tree.index_of(event.seq)
        if index is None or index >= size:
            later += 1
            continue
        proved.append({"seq": event.seq, "chain": event.chain, "leaf_index": index,
                       "hash": event.hash,
                       "proof": [node.hex() for node in tree.tree.inclusion_proof(index, size)]})
    return {"run_id": run_id, "tree_size": size, "events": proved, "later_events": later}
