"""The journal's read engines are cached per store, bounded, and can be released."""

from __future__ import annotations

import sqlalchemy as sa

from mlflow_prov import journal


def _store(tmp_path, name: str) -> str:
    """A database holding just the journal tables (no MLflow migrations: milliseconds)."""
    path = tmp_path / f"{name}.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    journal.ensure_tables(engine)
    engine.dispose()
    return f"prov+sqlite:///{path}"


def test_read_engines_stay_bounded_and_reads_still_work_after_eviction(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "MAX_ENGINES", 1)
    journal.dispose_engines()
    uris = [_store(tmp_path, name) for name in ("a", "b")]
    for uri in uris:
        assert list(journal.read_events(uri)) == []
    assert len(journal._engines) == 1
    assert list(journal.read_events(uris[0])) == []
    journal.dispose_engines()
    assert not journal._engines
    assert list(journal.read_events(uris[1])) == []
