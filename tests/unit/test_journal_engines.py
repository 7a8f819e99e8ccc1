"""The journal's read engines are cached per store, bounded, and can be released."""

from __future__ import annotations

import mlflow

from mlflow_prov import journal


def _store(tmp_path, name: str) -> str:
    uri = f"prov://{tmp_path / name}"
    mlflow.MlflowClient(uri).create_experiment("e")  # creates the database and journal
    return uri


def test_read_engines_stay_bounded_and_reads_still_work_after_eviction(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "MAX_ENGINES", 1)
    journal.dispose_engines()
    uris = [_store(tmp_path, name) for name in ("a", "b")]
    for uri in uris:
        assert [e.kind for e in journal.read_events(uri)] == ["experiment.created"]
    assert len(journal._engines) == 1
    assert [e.kind for e in journal.read_events(uris[0])] == ["experiment.created"]
    journal.dispose_engines()
    assert not journal._engines
    assert [e.kind for e in journal.read_events(uris[1])] == ["experiment.created"]
