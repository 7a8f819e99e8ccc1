"""What the journal costs in statements: a prov store's ``log_batch`` against plain MLflow's.

Statements stand for time here (the database's work and, on a server, its round trips), and
unlike times they are exact on a loaded machine. Every statement a call runs is counted below
SQLAlchemy (:mod:`statement_counter`: sqlite's trace callback, which also counts each statement
a trigger runs per row; a counting psycopg cursor), for the same call on a plain MLflow store
and on a prov store over the same backend.

The limits: a single ``set_tag``, ``log_param``, ``log_metric``, ``delete_tag`` or
``set_terminated`` adds at most two statements (the head's compare-and-swap and the event's
insert; one on PostgreSQL, where they are one statement), and no pre-read of old values;
``log_batch`` adds at most two per transaction MLflow opens for it, and nothing per metric
(the same count for 10 metrics as for 1,000). ``pytest -s`` prints the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from statement_counter import count_statements

KEYS = 10
ADDED_PER_TRANSACTION = 2
SINGLE_WRITES = ("log_metric", "log_param", "set_tag", "delete_tag", "set_terminated")
# the transactions MLflow's log_batch writes in: one per kind of row it was given
# (_log_params, _log_metrics, _set_tags), see mlflow_prov.events.JOURNALED_THROUGH
METRICS_TRANSACTIONS, MIXED_TRANSACTIONS = 1, 3
MIXED = "log_batch(10 metrics, 5 params, 5 tags)"

Call = Callable[[MlflowClient, str], object]


def _batch(size: int) -> Call:
    return lambda client, run_id: client.log_batch(
        run_id, metrics=[Metric(f"m{i % KEYS}", i / 3, 1_000 + i, 100 + i) for i in range(size)])


OTHER_WRITES: dict[str, Call] = {
    MIXED: lambda client, run_id: client.log_batch(
        run_id, metrics=[Metric(f"m{i}", 1.0, 5_000, 7) for i in range(10)],
        params=[Param(f"p{i}", "v") for i in range(5)],
        tags=[RunTag(f"t{i}", "v") for i in range(5)]),
    "log_metric": lambda client, run_id: client.log_metric(run_id, "m0", 0.5, 9_000, 900),
    "log_param": lambda client, run_id: client.log_param(run_id, "lr", "0.1"),
    "set_tag": lambda client, run_id: client.set_tag(run_id, "stage", "draft"),
    "delete_tag": lambda client, run_id: client.delete_tag(run_id, "warm"),
    "set_terminated": lambda client, run_id: client.set_terminated(run_id),
}


def _statements(uri: str, call: Call) -> int:
    """Statements ``call`` runs on a fresh run whose metric keys and a tag already exist
    (the run's first writes look things up once per process: not what is measured)."""
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(f"counts-{uuid.uuid4().hex}")).info.run_id
    client.log_batch(run_id, metrics=[Metric(f"m{i}", 0.0, 1, 0) for i in range(KEYS)],
                     tags=[RunTag("warm", "yes")])
    engine = client._tracking_client.store.engine  # the store MLflow built for the URI
    with count_statements(engine) as counted:
        call(client, run_id)
    return len(counted)


def _check_log_batch(plain_uri: str, prov_uri: str, single_write_limit: dict[str, int]) -> None:
    sizes = (10, 1000)
    plain = {size: _statements(plain_uri, _batch(size)) for size in sizes}
    prov = {size: _statements(prov_uri, _batch(size)) for size in sizes}
    print(f"\nlog_batch metrics  plain {plain}  prov {prov}")
    added = {}
    for name, call in OTHER_WRITES.items():
        before, after = _statements(plain_uri, call), _statements(prov_uri, call)
        added[name] = after - before
        print(f"{name:<42} plain {before:>4}  prov {after:>4}  added {added[name]:>3}")
    assert prov[1000] == prov[10], f"statements per metric: {prov}"
    for size in sizes:
        assert prov[size] - plain[size] <= ADDED_PER_TRANSACTION * METRICS_TRANSACTIONS, (
            size, plain, prov)
    assert added[MIXED] <= ADDED_PER_TRANSACTION * MIXED_TRANSACTIONS, added
    for name in SINGLE_WRITES:
        assert added[name] <= single_write_limit[name], (name, added)


@pytest.mark.slow  # two stores, 1,000-metric batches through plain MLflow's ORM
def test_each_write_adds_at_most_two_statements_and_none_per_metric_on_sqlite(sqlite_uri, prov_uri):
    _check_log_batch(sqlite_uri, prov_uri, dict.fromkeys(SINGLE_WRITES, ADDED_PER_TRANSACTION))


@pytest.mark.slow  # two PostgreSQL databases, one migrated by MLflow (seconds)
def test_each_write_adds_at_most_two_statements_and_none_per_metric_on_postgresql(
        postgres_database, prov_postgres_uri):
    # one: the head's compare-and-swap and the event's insert are one statement there; a
    # run's end appends two events (its artifact manifest, then the end), the second row's
    # insert a statement of its own
    _check_log_batch(postgres_database, prov_postgres_uri,
                     {**dict.fromkeys(SINGLE_WRITES, 1), "set_terminated": 2})
