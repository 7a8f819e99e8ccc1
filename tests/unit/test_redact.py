""":func:`exporters.privacy.redact`, the one redaction every output applies: what it hides,
what it keeps, and that it keeps shapes, types and ids so that every channel can call it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from exporters.privacy import REDACTED, readable_payload, redact, redact_chain
from exporters.records import DatasetRecord, HistoryEvent
from mlflow_prov.journal import JournalEvent
from mlflow_prov.vocabulary import EventKind

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def test_secret_keys_hide_their_values_at_any_depth():
    shown = redact({"payload": {"params": {"db_password": "hunter2", "lr": "0.1"},
                                "nested": [{"HF_TOKEN": "x", "epochs": 3}]}})
    assert shown == {"payload": {"params": {"db_password": REDACTED, "lr": "0.1"},
                                 "nested": [{"HF_TOKEN": REDACTED, "epochs": 3}]}}


def test_a_tag_event_hides_value_and_old_value_when_its_key_names_a_secret():
    shown = redact({"key": "api_key", "value": "new", "old_value": "old"})
    assert shown == {"key": "api_key", "value": REDACTED, "old_value": REDACTED}


def test_url_user_info_goes_from_any_text_and_the_rest_stays():
    shown = redact({"source": '{"url": "https://user:pw@data.example.com/train.csv"}',
                    "note": "copied from s3://AKIDTOKEN@bucket/x and ssh://git@host/r"})
    assert shown == {"source": '{"url": "https://data.example.com/train.csv"}',
                     "note": "copied from s3://bucket/x and ssh://host/r"}


def test_a_name_that_looks_like_a_credential_is_replaced_and_ids_stay():
    dataset = DatasetRecord(name=AWS_KEY_ID, digest="4fb5574f", source_type="http",
                            source="https://u:t@h/x.csv")
    shown = redact(dataset)
    assert (shown.name, shown.digest, shown.source) == (REDACTED, "4fb5574f", "https://h/x.csv")
    assert redact_chain(f"model:{AWS_KEY_ID}") == f"model:{REDACTED}"
    event = JournalEvent(seq=1, time_us=0, chain=f"model:{AWS_KEY_ID}", experiment_id=None,
                         run_id=None, kind=EventKind.REGISTERED_MODEL_CREATED,
                         payload={"name": AWS_KEY_ID}, writer={}, prev_hash=None, hash="ab")
    shown_event = redact(event)
    assert shown_event.chain == f"model:{REDACTED}" and shown_event.payload == {"name": REDACTED}
    assert shown_event.kind is EventKind.REGISTERED_MODEL_CREATED


def test_redact_patterns_apply_to_the_users_keys_only():
    user = [re.compile("note|comment")]
    shown = redact({"tags": {"note": "x", "lr": "1"}, "note": "kept: not a user key",
                    "old": {"comment": "y"}, "datasets": [{"key": "note", "value": "z"}]}, user)
    assert shown == {"tags": {"note": REDACTED, "lr": "1"}, "note": "kept: not a user key",
                     "old": {"comment": REDACTED},
                     "datasets": [{"key": "note", "value": REDACTED}]}


def test_redacting_twice_changes_nothing_and_clean_values_are_the_same_objects():
    history = (HistoryEvent(seq=1, time=datetime(2026, 1, 1, tzinfo=UTC),
                            kind=EventKind.RUN_TAGS_SET,
                            payload={"tags": {"token": "t", "db": "postgresql://u:p@h/d"}},
                            writer={"user": "ann"}),)
    once = redact(history)
    assert once[0].payload == {"tags": {"token": REDACTED, "db": "postgresql://h/d"}}
    assert redact(once) is once and isinstance(once, tuple)
    clean = {"params": {"lr": "0.1"}, "steps": [1, 2], "when": datetime(2026, 1, 1)}
    assert redact(clean) is clean


def test_a_readable_payload_has_no_bookkeeping():
    payload = {"tags": {"stage": "dev"}, "old": {"stage": None},
               "state": {"run": "ea8f"}, "digests": {"loss": [1, "ab"]}, "cut": {}}
    assert readable_payload(payload) == {"tags": {"stage": "dev"}, "old": {"stage": None}}


# One sample per credential shape the vocabulary knows: a shape whose quick pre-filter
# marker is missing would pass every output unredacted.
CREDENTIAL_SAMPLES = {
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "aws temporary key id": "ASIAIOSFODNN7EXAMPLE",
    "google api key": "AIzaSyD-1234567890abcdefghijklmnopqrstu",
    "stripe": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "gitlab": "glpat-ABCDEFGHIJ0123456789",
    "github classic": "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "github fine-grained": "github_pat_11ABCDEFA0123456789abcdefXYZ0123456789",
    "slack": "xoxb-1234567890-abcdefghij",
    "openai": "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX",
    "hugging face": "hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA",
    "bearer": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
    "url password": "postgresql://alice:s3cret@db.example.com/ml",
    "assigned": "--password=hunter2",
}


def test_every_credential_shape_is_redacted_under_an_innocent_key():
    for shape, sample in CREDENTIAL_SAMPLES.items():
        shown = redact({"note": f"see {sample} here"})
        assert shown == {"note": REDACTED} or sample not in shown["note"], shape
        assert not re.search(r"s3cret|hunter2|[A-Za-z0-9]{20}", str(shown)), (shape, shown)


def test_a_password_holding_an_at_sign_is_removed_whole():
    shown = redact({"uri": "postgresql://alice:p@ssw0rd-secret@db:5432/x"})
    assert shown == {"uri": "postgresql://db:5432/x"}
