"""The journal digests metric rows as the database keeps them: ``verify`` never reports an edit
that did not happen, whatever float, timestamp or step MLflow accepted.

What the three backends keep (measured here, MLflow 3.17): MLflow turns NaN into ``is_nan``
plus 0 and +/-inf into +/-DBL_MAX before writing; sqlite and MySQL then store ``-0.0`` as
``0.0`` while PostgreSQL keeps the sign; subnormals and +/-DBL_MAX survive on all three; a
fractional timestamp or step stays a float on sqlite and is rounded (ties to even) on
PostgreSQL and MySQL. Each example logs a few writes through MLflow's public client into a
fresh run of one store, then verifies that run.
"""

from __future__ import annotations

import json
import math
import struct

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from exporters.verify import verify_store
from mlflow_prov.uri import parse_prov_uri

INT64 = (-(2**63), 2**63 - 1)
DBL_MAX = 1.7976931348623157e308
SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -2.225073858507201e-308,
           DBL_MAX, -DBL_MAX, math.inf, -math.inf, math.nan, -math.nan]


def _nan(bits: int) -> float:
    """A NaN with a payload (and either sign), as numpy or C code may hand one over."""
    return struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0000 | bits))[0]


VALUES = st.one_of(
    st.floats(),  # NaN, +/-inf, subnormals and the extremes included
    st.sampled_from(SPECIAL),
    st.integers(1, 2**52 - 1).map(_nan),
    st.integers(1, 2**52 - 1).map(lambda bits: -_nan(bits)),
    st.integers(*INT64),  # MLflow takes any number; the database makes it a double
)
TIMESTAMPS = st.one_of(st.integers(0, INT64[1]), st.sampled_from([0, 1, INT64[1]]))
STEPS = st.one_of(st.integers(*INT64), st.sampled_from([INT64[0], -1, 0, INT64[1]]))
POINTS = st.tuples(st.sampled_from(["loss", "acc"]), VALUES, TIMESTAMPS, STEPS)
# each write: how it is logged and its points; a point may come again (MLflow skips it then)
WRITES = st.lists(st.tuples(st.sampled_from(["log_metric", "log_batch"]),
                            st.lists(POINTS, min_size=1, max_size=4)),
                  min_size=1, max_size=3)


def log_and_verify(uri: str, writes: list[tuple[str, list[tuple]]], repeat: bool) -> None:
    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    if repeat:  # the first point again, in a write of its own
        writes = [*writes, ("log_batch", writes[0][1][:1])]
    for how, points in writes:
        try:
            if how == "log_metric":
                for key, value, timestamp, step in points:
                    client.log_metric(run_id, key, value, timestamp=timestamp, step=step)
            else:
                client.log_batch(run_id, metrics=[Metric(*point) for point in points])
        except MlflowException:
            pass  # MLflow refused the value: its answer, and nothing of it may be journaled
    report = verify_store(uri, run_ids=[run_id])
    assert report.ok, [str(problem) for problem in report.problems]


def _property(max_examples: int):
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.mark.slow  # some 30 runs logged and verified
@_property(max_examples=30)
@given(writes=WRITES, repeat=st.booleans())
def test_any_accepted_metric_verifies_on_sqlite(prov_uri, writes, repeat):
    log_and_verify(prov_uri, writes, repeat)


@pytest.mark.slow  # a PostgreSQL database and a round trip per write
@_property(max_examples=25)
@given(writes=WRITES, repeat=st.booleans())
def test_any_accepted_metric_verifies_on_postgresql(prov_postgres_uri, writes, repeat):
    log_and_verify(prov_postgres_uri, writes, repeat)


@pytest.mark.slow  # a MySQL database and a round trip per write
@_property(max_examples=20)
@given(writes=WRITES, repeat=st.booleans())
def test_any_accepted_metric_verifies_on_mysql(prov_mysql_uri, writes, repeat):
    log_and_verify(prov_mysql_uri, writes, repeat)


def _stored(uri: str, run_id: str) -> dict[str, tuple]:
    engine = sa.create_engine(parse_prov_uri(uri).db_uri)
    try:
        with engine.connect() as connection:
            return {row[0]: tuple(row[1:]) for row in connection.execute(sa.text(
                "SELECT key, value, timestamp, step FROM metrics WHERE run_uuid = :run"),
                {"run": run_id})}
    finally:
        engine.dispose()


def test_negative_zero_on_sqlite_verifies_and_an_edit_is_still_found(prov_uri):
    """The issue's case: sqlite stores ``-0.0`` as ``0.0``; the journal once hashed ``-0.0``
    and ``verify`` then reported an edit nobody made."""
    client = MlflowClient(prov_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", -0.0, timestamp=1, step=0)
    client.log_batch(run_id, metrics=[Metric("acc", -0.0, 2, 1)])
    stored = _stored(prov_uri, run_id)
    assert math.copysign(1, stored["loss"][0]) == 1  # sqlite kept no sign: the premise
    assert verify_store(prov_uri).ok
    engine = sa.create_engine(parse_prov_uri(prov_uri).db_uri)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE metrics SET value = 1e-300 WHERE key = 'acc'"))
    engine.dispose()
    problems = [str(problem) for problem in verify_store(prov_uri).problems]
    assert any("metric 'acc' step 1" in line and "(edited)" in line for line in problems), \
        problems


def test_fractional_timestamps_and_steps_verify_on_sqlite(prov_uri):
    """MLflow accepts a float timestamp (``time.time() * 1000``) or step; sqlite keeps it as
    it came, PostgreSQL and MySQL round it: one form for the journal's digest serves all."""
    client = MlflowClient(prov_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=1_700_000_000_123.5, step=0)
    client.log_metric(run_id, "acc", 0.5, timestamp=2, step=2.5)
    assert _stored(prov_uri, run_id) == {"loss": (0.5, 1_700_000_000_123.5, 0),
                                         "acc": (0.5, 2, 2.5)}
    report = verify_store(prov_uri)
    assert report.ok, [str(problem) for problem in report.problems]


@pytest.mark.parametrize("store", [
    "prov_uri",
    pytest.param("prov_postgres_uri", marks=pytest.mark.slow),  # a PostgreSQL database
    pytest.param("prov_mysql_uri", marks=pytest.mark.slow),  # a MySQL database
])
def test_rows_mlflow_cannot_tell_apart_verify(store, request):
    """``latest_metrics`` as MLflow picked it, where the stored rows no longer say which one it
    picked: a NaN (stored as 0) and a 0.0 at the same step and time, in both orders (MySQL
    returns them in key order, not in the order they came); a step of 1.5 that PostgreSQL and
    MySQL store as 2, beside a step 2 that MLflow ranked above it."""
    uri = request.getfixturevalue(store)
    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    for key, first, second in [("nan_first", math.nan, 0.0), ("zero_first", 0.0, math.nan),
                               ("signs", 0.0, -0.0), ("signs_reversed", -0.0, 0.0)]:
        client.log_metric(run_id, key, first, timestamp=1, step=0)
        client.log_metric(run_id, key, second, timestamp=1, step=0)
    client.log_metric(run_id, "fraction", 1.0, timestamp=1, step=2)
    client.log_metric(run_id, "fraction", 1.0, timestamp=5, step=1.5)
    report = verify_store(uri)
    assert report.ok, [str(problem) for problem in report.problems]
    # MLflow kept the NaN it saw first and the 0.0 in the other order: the cases are real
    latest = client.get_run(run_id).data.metrics
    assert math.isnan(latest["nan_first"]) and latest["zero_first"] == 0.0


def _journal_as_before_stored_forms(uri: str, run_id: str) -> None:
    """Rewrite the run's metric digests as journals written before stored-form hashing have
    them (sign of zero kept, fractions cut), relinking the chain as that code would have."""
    from mlflow_prov.digests import multiset_digest, unnormalised_metric_row_hash
    from mlflow_prov.journal import canonical_json, event_hash

    engine = sa.create_engine(parse_prov_uri(uri).db_uri)
    try:
        with engine.begin() as connection:
            rows = connection.execute(sa.text(
                "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :run"),
                {"run": run_id}).all()
            events = connection.execute(sa.text(
                "SELECT * FROM prov_journal WHERE chain = :chain ORDER BY seq"),
                {"chain": f"run:{run_id}"}).all()
            previous = None
            for event in events:
                payload = json.loads(event.payload)
                for key in payload.get("digests", {}):
                    payload["digests"][key][1] = multiset_digest(
                        unnormalised_metric_row_hash(*row) for row in rows if row[0] == key)
                text = canonical_json(payload)
                digest = event_hash(previous, event.chain, event.time_us, event.kind,
                                    event.experiment_id, event.run_id, text, event.writer)
                connection.execute(sa.text("UPDATE prov_journal SET payload = :text, "
                                           "prev_hash = :prev, hash = :hash WHERE seq = :seq"),
                                   {"text": text, "prev": previous, "hash": digest,
                                    "seq": event.seq})
                previous = digest
            connection.execute(sa.text("UPDATE prov_journal_heads SET last_hash = :hash "
                                       "WHERE chain = :chain"),
                               {"hash": previous, "chain": f"run:{run_id}"})
    finally:
        engine.dispose()


def test_a_journal_written_before_stored_forms_still_verifies(prov_uri):
    """A store journaled by the earlier digest (a fractional timestamp cut, where the stored
    form rounds it) verifies as it did; an edit of its rows is still found."""
    client = MlflowClient(prov_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", 0.25, timestamp=1_001.5, step=0)  # rounds to 1002
    client.log_batch(run_id, metrics=[Metric("acc", 0.5, 7.75, 1)])
    _journal_as_before_stored_forms(prov_uri, run_id)
    report = verify_store(prov_uri)
    assert report.ok, [str(problem) for problem in report.problems]
    engine = sa.create_engine(parse_prov_uri(prov_uri).db_uri)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE metrics SET value = 0.5 WHERE key = 'loss'"))
    engine.dispose()
    problems = [str(problem) for problem in verify_store(prov_uri).problems]
    assert any("metric 'loss'" in line and "(edited)" in line for line in problems), problems


def test_a_numpy_integer_step_sqlite_keeps_as_bytes_verifies(prov_uri):
    """MLflow hands a numpy integer step to sqlite as it is, and sqlite keeps its bytes (a
    BLOB): verify reads them back as that integer instead of stopping with a traceback."""
    import numpy as np

    client = MlflowClient(prov_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=3, step=np.int64(7))
    assert isinstance(_stored(prov_uri, run_id)["loss"][2], bytes)  # the premise
    report = verify_store(prov_uri)
    assert report.ok, [str(problem) for problem in report.problems]


def test_numpy_steps_whose_bytes_sort_otherwise_verify_and_export_their_range(prov_uri):
    """sqlite orders BLOBs by their bytes: little-endian 257 sorts before 2, so the kept
    summary's first and last step are swapped. Such a series is read from its rows instead,
    and verify raises no alarm about a summary nobody edited."""
    import numpy as np

    from mlflow_prov.fast_read import open_reader

    client = MlflowClient(prov_uri)
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 0.5, 3, np.int64(2)),
                                      Metric("loss", 0.25, 4, np.int64(257))])
    report = verify_store(prov_uri)
    assert report.ok, [str(problem) for problem in report.problems]
    reader = open_reader(prov_uri)
    try:
        summary = reader.summaries(run_id)[0]
    finally:
        reader.close()
    assert (summary.count, summary.last_step_logged) == (2, 257)
