"""Fast reads of MLflow's GenAI tables for ``mlflow-prov verify`` (issue 19).

Verify compares these rows with what the journal says was written (:mod:`mlflow_prov.events_genai`):
each function returns the rows in the form the journal recorded them (values redacted and cut
as the describers did, spans and dataset records as count and multiset digest), so the
exporters compare without knowing how capture shaped a payload. Plain SQL on MLflow's table
names, chunked ``IN`` lists, one query per table per chunk.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from mlflow_prov.digests import multiset_digest
from mlflow_prov.events_genai import (
    PROMPT_TEXT_TAG,
    record_row_hash,
    span_row_hash,
    stored_assessment,
)

_CHUNK = 500


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start:start + _CHUNK]


def _rows(connection: sa.Connection, sql: str, ids: Iterable[Any]) -> Iterator[Any]:
    statement = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    for chunk in _chunks(ids):
        yield from connection.execute(statement, {"ids": chunk}).mappings()


def read_trace_infos(connection: sa.Connection, trace_ids: Iterable[str]
                     ) -> dict[str, dict[str, Any]]:
    """Per trace id that still has a row: its status, request time and duration."""
    return {row["request_id"]: {"status": row["status"], "timestamp_ms": row["timestamp_ms"],
                                "execution_time_ms": row["execution_time_ms"]}
            for row in _rows(connection, "SELECT request_id, status, timestamp_ms, "
                             "execution_time_ms FROM trace_info WHERE request_id IN :ids",
                             trace_ids)}


def read_span_digests(connection: sa.Connection, trace_ids: Iterable[str]
                      ) -> dict[str, tuple[int, str]]:
    """Per trace: how many span rows it has and their multiset digest (as capture hashed)."""
    hashes: dict[str, list[int]] = defaultdict(list)
    for row in _rows(connection, "SELECT trace_id, span_id, parent_span_id, name, "
                     "start_time_unix_nano, end_time_unix_nano FROM spans "
                     "WHERE trace_id IN :ids", trace_ids):
        hashes[row["trace_id"]].append(span_row_hash(
            row["trace_id"], row["span_id"], row["parent_span_id"], row["name"],
            row["start_time_unix_nano"], row["end_time_unix_nano"]))
    return {trace_id: (len(found), multiset_digest(found)) for trace_id, found in hashes.items()}


def read_assessments(connection: sa.Connection, trace_ids: Iterable[str]
                     ) -> dict[str, dict[str, Any]]:
    """Per assessment id of these traces: its row as the journal shows it."""
    found = {}
    for row in _rows(connection, "SELECT * FROM assessments WHERE trace_id IN :ids", trace_ids):
        found[row["assessment_id"]] = {"trace_id": row["trace_id"],
                                       **(stored_assessment(dict(row)) or {})}
    return found


def read_prompt_aliases(connection: sa.Connection, names: Iterable[str]
                        ) -> dict[str, dict[str, int]]:
    """Per prompt name: alias -> version."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for row in _rows(connection, "SELECT name, alias, version FROM registered_model_aliases "
                     "WHERE name IN :ids", names):
        found[row["name"]][row["alias"]] = int(row["version"])
    return found


def read_prompt_templates(connection: sa.Connection, names: Iterable[str]
                          ) -> dict[tuple[str, int], str]:
    """Per (prompt name, version): the SHA-256 of its stored template."""
    found = {}
    for row in _rows(connection, "SELECT name, version, key, value FROM model_version_tags "
                     "WHERE name IN :ids", names):
        if row["key"] != PROMPT_TEXT_TAG:
            continue
        found[(row["name"], int(row["version"]))] = hashlib.sha256(
            (row["value"] or "").encode("utf-8")).hexdigest()
    return found


def read_dataset_records(connection: sa.Connection, dataset_ids: Iterable[str]
                         ) -> dict[str, dict[str, int]]:
    """Per evaluation dataset: record id -> the record row's hash (as capture hashed it)."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for row in _rows(connection, "SELECT dataset_id, dataset_record_id, input_hash, "
                     "expectations FROM evaluation_dataset_records WHERE dataset_id IN :ids",
                     dataset_ids):
        expectations = row["expectations"]
        if isinstance(expectations, str):
            expectations = json.loads(expectations)
        found[row["dataset_id"]][row["dataset_record_id"]] = record_row_hash(
            row["dataset_record_id"], row["input_hash"], expectations)
    return found
