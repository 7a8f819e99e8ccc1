"""Folded metric stretches on the ``/prov/`` run page and in ``log``'s fast path, on real
prov stores: what the database sums equals what Python folds from the decoded events, the
page's next link continues after a fold, and the undecoded rows ``log`` prints redact exactly
as the decoded events do."""

from __future__ import annotations

import json
import re

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from store_templates import prov_store
from test_prov_pages import _client

from exporters.app.history import EventFilters
from exporters.app.timeline_page import timeline_page
from exporters.guards import compile_redactions
from exporters.journal_log import LogPrinter
from exporters.timeline import MetricFold, fold_events
from mlflow_prov.journal import read_events
from mlflow_prov.journal_scan import scan_columns, scan_rows

TOKEN = "ghp_" + "a1B2" * 9  # the shape of a GitHub token: redacted wherever it appears


def write_run(uri: str) -> str:
    """A run: a tag, 12 loss values one call each and a batch of loss and lr (one fold), a
    tag change, 3 acc values (a second fold), the end."""
    client = MlflowClient(uri)
    run_id = client.create_run("0", run_name="folded").info.run_id
    client.set_tag(run_id, "stage", "draft")
    for step in range(12):
        client.log_metric(run_id, "loss", 1 / (step + 1), step=step)
    client.log_batch(run_id, metrics=[Metric("loss", 0.01, 0, 12), Metric("lr", 0.1, 0, 12)])
    client.set_tag(run_id, "stage", "final")
    for step in range(3):
        client.log_metric(run_id, "acc", 0.5 + step / 10, step=step)
    client.set_tag(run_id, "db_password", TOKEN)
    client.log_param(run_id, "source", f"https://alice:{TOKEN}@example.com/ü \"quoted\"")
    client.set_terminated(run_id)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, str]:
    """One prov store with the run above, shared by the module's sqlite tests."""
    uri = prov_store(tmp_path_factory.mktemp("folded") / "runs")
    return uri, write_run(uri)


def python_folds(uri: str, run_id: str) -> list[MetricFold]:
    """The folds of the run as Python makes them from every decoded event."""
    return [item for item in fold_events(
        read_events(uri, run_id=run_id), kind=lambda e: e.kind, seq=lambda e: e.seq,
        time_us=lambda e: e.time_us, payload=lambda e: e.payload, writer=lambda e: e.writer)
        if isinstance(item, MetricFold)]


@pytest.mark.slow  # a run of 20 writes, three page renders
def test_the_run_page_folds_what_the_database_sums_as_python_would(monkeypatch, store):
    prov_uri, run_id = store
    page = timeline_page(prov_uri, run_id, EventFilters(run_id=run_id))
    folds = [item for item in page.items if isinstance(item, MetricFold)]
    assert folds == python_folds(prov_uri, run_id)
    loss, acc = folds
    assert (loss.events, loss.values, loss.step_min, loss.step_max) == (13, 14, 0, 12)
    assert loss.keys["loss"].values is None and loss.keys["loss"].events == 13
    assert (acc.events, acc.keys["acc"].values) == (3, 3)
    assert page.next_after_seq is None

    client = _client(monkeypatch, prov_uri)
    html = client.get(f"/prov/runs/{run_id}").get_data(as_text=True)
    assert html.count('<tr class="fold">') == 2
    assert "13 events, 2 keys (loss, lr): 14 values, steps 0–12" in html
    assert re.search(r'class="fold-key"><td class="what">loss</td><td>in 13 events, '
                     r"steps 0–12</td>", html)
    assert "3 values, steps 0–2" in html and TOKEN not in html

    first = client.get(f"/prov/runs/{run_id}?page_size=3").get_data(as_text=True)
    assert first.count('<tr class="fold">') == 1 and "final" not in first
    next_link = first[first.index('<div class="pager"><a href="'):].split('"')[3]
    second = client.get(f"/prov/runs/{run_id}{next_link.replace('&amp;', '&')}")
    text = second.get_data(as_text=True)
    assert '<span class="new">final</span>' in text and "(loss, lr)" not in text


def test_a_stretch_still_growing_is_summed_on_from_where_it_was_left(store):
    prov_uri, _ = store
    client = MlflowClient(prov_uri)
    run_id = client.create_run("0", run_name="growing").info.run_id
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0, step=step)
    before = timeline_page(prov_uri, run_id, EventFilters(run_id=run_id)).items[-1]
    client.log_batch(run_id, metrics=[Metric("loss", 0.5, 0, 3), Metric("acc", 0.9, 0, 3)])
    after = timeline_page(prov_uri, run_id, EventFilters(run_id=run_id)).items[-1]
    assert isinstance(before, MetricFold) and isinstance(after, MetricFold)
    assert (before.events, after.events, after.values) == (3, 4, 5)
    assert [after] == python_folds(prov_uri, run_id)


def test_log_prints_undecoded_rows_as_it_prints_decoded_events(store):
    prov_uri, _ = store
    client = MlflowClient(prov_uri)
    run_id = client.create_run("0", run_name="many keys").info.run_id
    client.log_metric(run_id, TOKEN, 1.0, step=0)  # a metric key that looks like a token
    client.log_batch(run_id, metrics=[Metric(f"m{i}", 1.0, 0, i) for i in range(8)])
    client.log_metric(run_id, "no_step", 2.0)
    patterns = compile_redactions(("stage",))
    for as_json in (False, True):
        fast, slow = LogPrinter(patterns, as_json), LogPrinter(patterns, as_json)
        rows = list(scan_columns(prov_uri, fast.columns))
        events = list(read_events(prov_uri))
        assert [e.seq for e in events] == [r[0] for r in rows]
        for row, event in zip(rows, events, strict=True):
            shown = fast.stored(row, json.loads(row[4]))
            assert shown == slow.event(event)
            assert TOKEN not in shown and "alice" not in shown
            assert "final" not in shown and "draft" not in shown  # --redact stage
        assert "m0, m1, m2, m3, m4, m5 (+2 more), steps 0–7" in fast.stored(
            rows[-2], json.loads(rows[-2][4]))


@pytest.mark.slow  # a fresh PostgreSQL database
@pytest.mark.postgres
def test_postgresql_sums_the_same_folds(prov_postgres_uri):
    run_id = write_run(prov_postgres_uri)
    page = timeline_page(prov_postgres_uri, run_id, EventFilters(run_id=run_id))
    folds = [item for item in page.items if isinstance(item, MetricFold)]
    assert folds == python_folds(prov_postgres_uri, run_id) and len(folds) == 2


@pytest.mark.slow  # a fresh MySQL/MariaDB database
def test_mysql_folds_the_rows_itself_to_the_same_folds(prov_mysql_uri):
    """MySQL has none of the JSON functions the stretch sums use: the page folds the rows."""
    run_id = write_run(prov_mysql_uri)
    page = timeline_page(prov_mysql_uri, run_id, EventFilters(run_id=run_id))
    folds = [item for item in page.items if isinstance(item, MetricFold)]
    assert folds == python_folds(prov_mysql_uri, run_id) and len(folds) == 2
    rows = list(scan_rows(prov_mysql_uri, run_id=run_id, kinds=["run.metrics_logged"]))
    assert len(rows) == 16 and all(r.run_id == run_id for r in rows)


def _one_stretch_run(uri: str, events: int) -> str:
    """A run that logs ``events`` values of two keys one call each, between two tags."""
    client = MlflowClient(uri)
    run_id = client.create_run("0", run_name=f"loop-{events}").info.run_id
    client.set_tag(run_id, "phase", "warmup")
    for step in range(events):
        client.log_metric(run_id, ("loss", "acc")[step % 2], 1.0 / (step + 1), step=step // 2)
    client.set_tag(run_id, "phase", "done")
    return run_id


def _page_statements(uri: str, run_id: str) -> tuple[list[str], MetricFold]:
    from statement_counter import count_statements

    from mlflow_prov.journal import _engine_for

    with count_statements(_engine_for(uri)) as counted:
        page = timeline_page(uri, run_id, EventFilters(run_id=run_id))
    (fold,) = [item for item in page.items if isinstance(item, MetricFold)]
    assert fold == python_folds(uri, run_id)[0]
    return list(counted), fold


def _check_page_cost_is_independent_of_the_stretch(uri: str) -> None:
    small, big = _one_stretch_run(uri, 20), _one_stretch_run(uri, 400)
    _page_statements(uri, small)  # a server's first view asks once whether counters exist
    small_sql, small_fold = _page_statements(uri, small)
    big_sql, big_fold = _page_statements(uri, big)
    assert (small_fold.events, big_fold.events) == (20, 400)
    assert (big_fold.keys["loss"].values, big_fold.step_min, big_fold.step_max) == (200, 0, 199)
    assert len(big_sql) == len(small_sql), (small_sql, big_sql)
    # the fold comes from the counters kept at write time: no statement decodes a payload
    assert not [sql for sql in big_sql if "json" in sql.lower()], big_sql


@pytest.mark.slow  # 420 log_metric calls
def test_a_run_page_costs_the_same_statements_for_20_or_400_metric_events(store):
    _check_page_cost_is_independent_of_the_stretch(store[0])


@pytest.mark.slow  # 420 log_metric calls on a fresh PostgreSQL database
@pytest.mark.postgres
def test_a_run_page_costs_the_same_statements_on_postgresql(prov_postgres_uri):
    _check_page_cost_is_independent_of_the_stretch(prov_postgres_uri)
