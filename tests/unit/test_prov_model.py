"""Unit checks of the PROV building blocks: ids, non-finite numbers, privacy, names, graphs."""

from __future__ import annotations

import math

import pytest
from prov.model import Literal, ProvDocument

from exporters.contexts import context_from_key, normalise_context
from exporters.graph import summarise, to_dot
from exporters.layout import safe_name
from exporters.options import DEFAULT_CONTEXT_PREFIXES
from exporters.privacy import REDACTED, Pseudonymizer, redact, redact_text
from exporters.prov_model import NON_FINITE, PROVML, new_document, number, qid


@pytest.mark.parametrize(("value", "lexical"), [(math.nan, "NaN"), (math.inf, "INF"),
                                                (-math.inf, "-INF")])
def test_non_finite_numbers_are_explicit_literals(value, lexical):
    assert number(value) == Literal(lexical, NON_FINITE)


def test_finite_numbers_stay_numbers():
    assert number(0.5) == 0.5 and number(3) == 3


def test_ids_survive_provn_round_trip():
    doc = new_document()
    doc.entity(qid("run", "r1", "metric", "train/loss ü", "-"))
    doc.entity(qid("run", "r1", "tag", "a=b,c:(d)"))
    parsed = ProvDocument.deserialize(content=doc.get_provn(), format="provn")
    assert parsed == doc


@pytest.mark.parametrize("name", ["../x", "/", "a/b", "..", "Ω", "ëxp ../../etc"])
def test_safe_names(name):
    safe = safe_name(name, "fallback")
    assert "/" not in safe and ".." not in safe and safe.isascii() and safe


def test_safe_names_keep_plain_names_and_do_not_collide():
    assert safe_name("mnist-v2", "x") == "mnist-v2"
    assert safe_name("a/b", "x") != safe_name("a_b", "x")


@pytest.mark.parametrize(("key", "value"), [
    ("db_password", "hunter2"), ("API_KEY", "x"), ("hf_token", "x"), ("aws.secret", "x"),
    ("note", "ghp_" + "a" * 36),
    ("auth_header", "Bearer abcdefghijklmnopqrstuvwxyz"), ("HF_TOKEN", "x"),
    ("aws_secret_access_key", "x"), ("openai.api_key", "x"), ("apiKey", "x"),
    ("db-passwd", "x"), ("clientSecret", "x"), ("gcp.credentials", "x"),
    ("auth_token", "x"), ("ssh.private_key", "x"), ("s3.accessKey", "x"),
])
def test_secrets_redacted(key, value):
    assert redact({key: value})[key] == REDACTED


@pytest.mark.parametrize(("key", "value"), [
    ("lr", "0.01"), ("monkey", "x"), ("source", "s3://bucket/data.csv"),
    ("max_tokens", "512"), ("tokenizer", "bpe"), ("num_passes", "3"), ("author", "ann"),
    ("key_dim", "64"), ("keys", "a,b"), ("maxTokens", "512"), ("bypass_cache", "true")])
def test_ordinary_values_kept(key, value):
    assert redact({key: value})[key] == value


def test_uris_lose_their_user_info():
    assert redact_text("postgresql://u:pw@h:5432/db") == "postgresql://h:5432/db"
    assert redact_text("see https://ghp-less-token@h/x and s3://b/y") == \
        "see https://h/x and s3://b/y"
    assert redact_text("sqlite:///x.db") == "sqlite:///x.db"


def test_pseudonyms_are_stable_within_an_export_and_hide_names():
    pseudo = Pseudonymizer(True)
    assert pseudo("alice") == pseudo("alice") != pseudo("bob")
    assert "alice" not in pseudo("alice")
    assert Pseudonymizer(False)("alice") == "alice"


def test_contexts():
    assert normalise_context(" Train ") == "training"
    assert context_from_key("val/acc", DEFAULT_CONTEXT_PREFIXES) == "validation"
    assert context_from_key("validation/acc", DEFAULT_CONTEXT_PREFIXES) == "validation"
    assert context_from_key("loss", DEFAULT_CONTEXT_PREFIXES) is None
    assert context_from_key("dev_loss", {"dev_": "validation"}) == "validation"


def big_document(params: int) -> ProvDocument:
    doc = new_document()
    run = qid("run", "r1")
    doc.activity(run)
    for n in range(params):
        entity = qid("run", "r1", "param", f"p{n}")
        doc.entity(entity, [("prov:type", PROVML["HyperParameter"])])
        doc.used(run, entity)
    return doc


def test_small_graphs_are_not_summarised():
    doc = big_document(5)
    assert summarise(doc, 100) == (doc, None)


def test_large_graphs_are_summarised_and_say_so():
    summary, note = summarise(big_document(300), 50)
    assert note is not None and "301 nodes exceed --max-nodes 50" in note
    assert len(list(summary.get_records())) == 3  # run, one summary node, one usage
    dot = to_dot(big_document(300), 50).to_string()
    assert "Summarised graph" in dot and "300 HyperParameter" in dot


@pytest.mark.parametrize("key, source", [
    ("system/carbon/emissions_kg", "carbon"), ("system/carbon/cpu_energy_kwh", "carbon"),
    ("system/node-1/carbon/emissions_kg", "carbon"), ("carbon/emissions", "carbon"),
    ("system/cpu_utilization_percentage", "system"), ("system/gpu_0_temperature_celsius", "system"),
    ("train/loss", "user"), ("carbon_paper_count", "user"),
])
def test_metric_source_tells_carbon_from_other_system_metrics(key, source):
    from exporters.contexts import metric_source

    assert metric_source(key) == source


def test_model_files_saved_as_versions_are_chained_oldest_first():
    from exporters.prov_model import model_file_versions
    from exporters.records import ArtifactRecord

    def file(path):
        return ArtifactRecord(path=path, size=1, sha256="0" * 64, uri=f"file:///a/{path}")

    artifacts = [file("models/mlp/v0010_step9.pt"), file("models/mlp/v0002_step1.pt"),
                 file("models/mlp/v0001_step0.pt"), file("models/other/only.pt"),
                 file("models/pyfunc/MLmodel"), file("models/pyfunc/model.pkl"),
                 file("notes/v1.txt"), file("notes/v2.txt")]
    chains = model_file_versions(artifacts)
    assert [[a.path for a in chain] for chain in chains] == [[
        "models/mlp/v0001_step0.pt", "models/mlp/v0002_step1.pt", "models/mlp/v0010_step9.pt"]]


def test_locations_lose_user_info_and_home_users():
    from exporters.privacy import without_userinfo

    assert without_userinfo("https://x-access-token:t0k@github.com/a/r.git") == \
        "https://github.com/a/r.git"
    assert without_userinfo("git@github.com:a/r.git") == "git@github.com:a/r.git"
    pseudo = Pseudonymizer(True)
    hidden = pseudo.home_paths("file:///Users/alice/x.py and /home/alice/y")
    assert "alice" not in hidden and hidden.count(pseudo("alice")) == 2
    assert Pseudonymizer(False).home_paths("/home/alice/y") == "/home/alice/y"
