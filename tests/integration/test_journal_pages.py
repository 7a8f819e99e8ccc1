"""``read_events_page``: the journal a page at a time, filtered in SQL, in stable order."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from mlflow_prov.journal import JournalUnavailableError, read_events, read_events_page
from mlflow_prov.uri import parse_prov_uri
from mlflow_prov.vocabulary import EventKind


def _run_with_tags(prov_uri: str, tags: int) -> tuple[str, str]:
    client = MlflowClient(prov_uri)
    experiment_id = client.create_experiment("paged")
    run_id = client.create_run(experiment_id).info.run_id
    for value in range(tags):
        client.set_tag(run_id, "step", str(value))
    client.set_terminated(run_id)
    return experiment_id, run_id


def test_pages_cover_every_event_once_in_seq_order(prov_uri):
    experiment_id, run_id = _run_with_tags(prov_uri, 7)
    everything = [e.seq for e in read_events(prov_uri, run_id=run_id)]
    seen, after, pages = [], None, 0
    while True:
        page = read_events_page(prov_uri, run_id=run_id, after_seq=after, limit=3)
        seen += [e.seq for e in page.events]
        pages += 1
        if page.next_after_seq is None:
            break
        after = page.next_after_seq
    # created, 7 tags, the artifact manifest and the end
    assert seen == everything and len(everything) == 10
    assert pages == 4


def test_filters_by_kind_experiment_and_time(prov_uri):
    experiment_id, run_id = _run_with_tags(prov_uri, 3)
    tags = read_events_page(prov_uri, experiment_id=experiment_id,
                            kinds=[EventKind.RUN_TAGS_SET], limit=100).events
    assert [e.payload["tags"]["step"] for e in tags] == ["0", "1", "2"]
    assert [e.payload["old"]["step"] for e in tags] == [None, "0", "1"]
    second = tags[1].time_us
    window = read_events_page(prov_uri, run_id=run_id, since_us=second, until_us=second).events
    assert [e.seq for e in window] == [tags[1].seq]
    assert read_events_page(prov_uri, experiment_id="999").events == []


def test_payload_search_finds_events_that_mention_a_string(prov_uri):
    _, run_id = _run_with_tags(prov_uri, 2)
    found = read_events_page(prov_uri, run_id=run_id, payload_contains='"step":"1"').events
    assert [e.payload["tags"] for e in found] == [{"step": "1"}]
    assert read_events_page(prov_uri, payload_contains="100%_nothing").events == []


def test_legacy_kind_spellings_are_found_by_todays_kind(prov_uri):
    _, run_id = _run_with_tags(prov_uri, 1)
    engine = sa.create_engine(parse_prov_uri(prov_uri).db_uri)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE prov_journal SET kind = 'tags.set' "
                                   "WHERE kind = 'run.tags_set'")
    engine.dispose()
    found = read_events_page(prov_uri, run_id=run_id, kinds=["run.tags_set"]).events
    assert [e.kind for e in found] == [EventKind.RUN_TAGS_SET]


def test_a_plain_store_has_no_pages(sqlite_uri):
    with pytest.raises(JournalUnavailableError, match="not a prov store"):
        read_events_page(sqlite_uri)
