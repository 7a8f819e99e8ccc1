"""Digests of what MLflow stored, so the journal can prove MLflow's rows without copying them.

Why digests: values stay in MLflow (a run's 100,000 metric points are not written twice), yet
``mlflow-prov verify`` must notice a metric value, a tag or a run's status edited in MLflow's
own tables. Each journal event therefore records digests of the rows its write stored; the
chain's hashes protect the digests, and the digests protect MLflow's rows.

- A metric row hashes as SHA-256 of its key followed by ``(is_nan, value, timestamp, step)``
  packed little-endian, each in the form every backend keeps (:func:`stored_float`,
  :func:`stored_integer`): the write hashes what it hands MLflow and verify what the
  database returns, and both must land on the same bytes. A set of rows digests as the
  *sum* of its row hashes modulo 2**256: order does not matter, so all of a run's metric
  events add up to the digest of all its metric rows, which :mod:`mlflow_prov.stored_rows`
  computes from one query.
- Tags and params digest the same way over canonical JSON ``[key, value]`` rows; a run row
  digests as the SHA-256 of its canonical column values.
- Values longer than MLflow keeps (:func:`stored_text`) are recorded as MLflow stored them,
  with the original's length and SHA-256.

Dependency-free apart from the standard library; both rooms may use it.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import struct
import sys
from collections.abc import Iterable
from typing import Any

MODULUS = 1 << 256
EMPTY_DIGEST = f"{0:064x}"
# One encoder, built once: ``json.dumps`` with options builds a new one per call, which was
# most of a digest's cost on the write path.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_sha256 = hashlib.sha256
# A metric row hashes as its key's UTF-8 bytes followed by this fixed 25-byte tail: read from
# the end, the encoding is unambiguous, and packing is cheaper than JSON on the write path.
_METRIC_TAIL = struct.Struct("<?dqq")  # is_nan, value, timestamp, step


def row_hash(*fields: Any) -> int:
    """SHA-256 of a row's canonical JSON, as an integer (a term of a multiset sum)."""
    return int.from_bytes(_sha256(_encode(list(fields)).encode("utf-8")).digest(), "big")


def metric_row_hash(key: str, value: float, timestamp: int, step: int, is_nan: bool) -> int:
    """One metric row as MLflow stored it; the same number at capture time and at verify
    time, whatever the database returned (``1`` and ``1.0`` hash alike, so do ``-0.0`` and
    ``0.0``)."""
    tail = _METRIC_TAIL.pack(bool(is_nan), 0.0 if is_nan else stored_float(value),
                             stored_integer(timestamp), stored_integer(step))
    return int.from_bytes(_sha256(key.encode("utf-8") + tail).digest(), "big")


def stored_float(value: Any) -> float:
    """A metric value as every backend keeps it. MLflow itself turns NaN into ``is_nan``
    plus 0 and +/-inf into +/-DBL_MAX before the row is written; what is left to settle is
    the sign of zero: sqlite and MySQL store ``-0.0`` as ``0.0``, PostgreSQL keeps the sign
    but compares (and keys its primary key on) the two as one value. Adding ``0.0`` turns
    ``-0.0`` into ``0.0`` and leaves every other float, subnormals and extremes included,
    as it is."""
    return float(value) + 0.0


def stored_integer(value: Any) -> int:
    """A timestamp or step as a BIGINT column keeps it. MLflow accepts any number there:
    PostgreSQL and MySQL round a fractional one to the nearest integer, ties to even, as
    Python's :func:`round` does; sqlite keeps the float itself, which rounds the same way
    here, so all three hash alike. (sqlite also keeps a numpy integer MLflow passed through
    as a BLOB of its bytes: read back, it is that integer again.)"""
    if type(value) is int:  # the hot path: MLflow's own timestamps and steps
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, bytes):  # sqlite keeps a numpy integer as its bytes, in native order
        return int.from_bytes(value, sys.byteorder, signed=True)
    return round(float(value))


def unnormalised_metric_row_hash(key: str, value: float, timestamp: int, step: int,
                                 is_nan: bool) -> int:
    """How journals written before :func:`stored_float` and :func:`stored_integer` hashed a
    row (sign of zero kept, fractions cut off): verify accepts a series whose rows add up to
    its journal either way, so those journals still verify where they did."""
    tail = _METRIC_TAIL.pack(bool(is_nan), 0.0 if is_nan else float(value), int(timestamp),
                             int(step))
    return int.from_bytes(_sha256(key.encode("utf-8") + tail).digest(), "big")


def multiset_digest(hashes: Iterable[int]) -> str:
    """Order-independent digest of a multiset of row hashes (their sum modulo 2**256)."""
    return to_hex(sum(hashes) % MODULUS)


def to_hex(number: int) -> str:
    return f"{number % MODULUS:064x}"


def add_digests(digests: Iterable[str]) -> str:
    """Combine multiset digests: the digest of the union of their rows."""
    return to_hex(sum(int(digest, 16) for digest in digests))


def pair_hash(key: str, value: str | None) -> int:
    """One (key, value) row: a term of :func:`pairs_digest`."""
    return int.from_bytes(_sha256(_encode([key, value]).encode("utf-8")).digest(), "big")


def pairs_digest(pairs: Iterable[tuple[str, str | None]]) -> str:
    """Multiset digest of (key, value) rows: a run's tags or params."""
    return multiset_digest(pair_hash(key, value) for key, value in pairs)


def moved_digest(digest: str, removed: Iterable[tuple[str, str | None]],
                 added: Iterable[tuple[str, str | None]]) -> str:
    """A pairs digest after some rows left and others arrived: the sum's terms move, so a
    write that changed one tag costs two hashes, not a hash of every tag."""
    return to_hex(int(digest, 16) - sum(pair_hash(*row) for row in removed)
                  + sum(pair_hash(*row) for row in added))


def record_digest(values: Iterable[Any]) -> str:
    """SHA-256 of a record's canonical JSON (a run row's columns, in a fixed order)."""
    return _sha256(_encode([_plain(value) for value in values]).encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """Database drivers return ints as int, Decimal or numpy ints: one JSON form for all."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int) or (hasattr(value, "__int__") and float(value).is_integer()):
        return int(value)
    return str(value)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored_text(value: Any, limit: int) -> tuple[Any, dict[str, Any] | None]:
    """What MLflow stores of a param or tag value, and, when it cut the value, the original's
    length and SHA-256 (so the journal proves what was cut without keeping a 10 MB row)."""
    if not isinstance(value, str) or len(value) <= limit:
        return value, None
    return value[:limit], {"length": len(value), "sha256": text_sha256(value)}
