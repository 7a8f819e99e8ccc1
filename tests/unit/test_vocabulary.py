"""The shared words: dependency-free, and journals written with older kind names still read."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from mlflow_prov import journal, vocabulary
from mlflow_prov.vocabulary import (
    ChainKind,
    EventKind,
    context_from_key,
    context_key_prefix,
    declared_contexts,
    parse_chain,
    parse_kind,
    run_chain,
    unit_for_key,
)


def test_vocabulary_imports_the_standard_library_only() -> None:
    tree = ast.parse(Path(vocabulary.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize(("stored", "kind"), [
    ("tags.set", EventKind.RUN_TAGS_SET), ("params.logged", EventKind.RUN_PARAMS_LOGGED),
    ("run.tags_set", EventKind.RUN_TAGS_SET), ("run.created", EventKind.RUN_CREATED)])
def test_old_and_new_kind_spellings_read_as_one_kind(stored: str, kind: EventKind) -> None:
    assert parse_kind(stored) is kind


def test_a_kind_from_a_newer_version_is_kept_as_written() -> None:
    assert parse_kind("run.something_new") == "run.something_new"


def test_a_journal_written_with_old_kind_names_reads_filters_and_verifies(tmp_path) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    journal.ensure_tables(engine)
    with Session(engine) as session, session.begin():
        for n, kind in enumerate(("run.created", "tags.set", "tag.deleted")):
            journal.append_event(session, chain=run_chain("r1"), kind=kind, experiment_id="1",
                                 run_id="r1", payload={"n": n}, writer={}, time_us=n)
    engine.dispose()
    uri = f"prov+sqlite:///{path}"
    assert [e.kind for e in journal.read_events(uri)] == [
        EventKind.RUN_CREATED, EventKind.RUN_TAGS_SET, EventKind.RUN_TAG_DELETED]
    page = journal.read_events_page(uri, kinds=[EventKind.RUN_TAGS_SET])
    assert [e.payload["n"] for e in page.events] == [1]
    assert journal.verify_chain(uri, run_chain("r1")).intact


def test_chain_ids_round_trip() -> None:
    assert parse_chain(run_chain("abc")) == (ChainKind.RUN, "abc")
    with pytest.raises(ValueError, match="not a chain id"):
        parse_chain("abc")


def test_context_prefixes_standard_and_free_form() -> None:
    assert context_key_prefix("Validation") == "val/"
    assert context_key_prefix("tuning") == "tuning/"
    assert context_from_key("validation/acc") == "validation"
    assert context_from_key("tuning/loss") is None  # known only once the run declares it
    assert context_from_key("tuning/loss", {"tuning/": "tuning"}) == "tuning"
    assert declared_contexts(" Tuning, val,,tuning") == ["tuning", "validation"]


def test_the_longest_unit_suffix_wins() -> None:
    assert unit_for_key("system/gpu_0_memory_usage_megabytes").udunits == "Mbyte"
    assert unit_for_key("loss") is None


@pytest.mark.parametrize("tag", ['[{"name": "qa", "version": 1e400}]',
                                 '[{"name": "qa", "version": Infinity}]',
                                 '[{"name": "qa", "version": NaN}]', "[" * 100_000,
                                 '{"name": "qa", "version": 1}', '["qa"]', "[[1]]", "null"])
def test_a_hostile_linked_prompts_tag_links_nothing_and_raises_nothing(tag: str) -> None:
    """MLflow stores any text in the tag; the lineage that reads it at write time must not
    turn an odd value into a failed write (plain MLflow accepts it)."""
    assert vocabulary.linked_prompts(tag) == []


def test_a_linked_prompts_tag_as_mlflow_writes_it_links_its_versions() -> None:
    tag = '[{"name": "qa", "version": "2"}, {"name": "summary", "version": 1}]'
    assert vocabulary.linked_prompts(tag) == [("qa", 2), ("summary", 1)]
