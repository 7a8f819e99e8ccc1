"""``--format card``: a Markdown workflow card per run and per experiment, read as a person
would, through a Markdown renderer (Python-Markdown, tables as GitHub draws them)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import markdown
import mlflow
import pytest
from lineage_scenario import SECRET, write
from store_templates import prov_store

from exporters import ExportOptions, export

# the scenario (three runs, a model, an artifact) and two exports take seconds
pytestmark = pytest.mark.slow

HOSTILE_DESCRIPTION = "tune | compare\n<script>alert('card')</script>\n[x](javascript:alert(2))"
HOSTILE_NAME = "[docs](javascript:alert(1)) ![pixel](https://tracker.example/p.png)"
HOSTILE_FILE = "x``<img src=x onerror=alert(3)>``.txt"


def rendered(path: Path) -> str:
    return markdown.markdown(path.read_text(encoding="utf-8"), extensions=["tables"])


def section(card: str, title: str) -> str:
    """The Markdown of one ``## title`` section."""
    start = card.index(f"## {title}\n")
    end = card.find("\n## ", start + 1)
    return card[start:end if end != -1 else None]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The lineage scenario plus one run with hostile text, exported as cards."""
    tmp = tmp_path_factory.mktemp("cards")
    store = prov_store(tmp / "store")
    ids = write(store)
    mlflow.set_experiment("training")
    with mlflow.start_run(run_name=HOSTILE_NAME) as hostile:
        mlflow.set_tag("mlflow.note.content", HOSTILE_DESCRIPTION)
        mlflow.log_text("x", HOSTILE_FILE)
        mlflow.log_param("grid", "a|b")
        mlflow.log_metric("loss", 0.5, step=0)
        mlflow.log_metric("loss", 0.25, step=3)
    ids["hostile"] = hostile.info.run_id
    out = tmp / "out"
    for name in ("features", "training"):
        export(name, out, tracking_uri=store, options=ExportOptions(formats=("card",)))
    return {"ids": ids, "out": out, "store": tmp / "store"}


def card_of(exported: dict, experiment: str, role: str) -> Path:
    return exported["out"] / experiment / f"run-{exported['ids'][role]}" / "card.md"


def test_a_producer_card_lists_its_artifact_hash_energy_and_intact_journal(exported):
    card = card_of(exported, "features", "producer").read_text(encoding="utf-8")
    artifact = next((exported["store"] / "artifacts").rglob("features.csv"))
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert f"| `data/features.csv` | {artifact.stat().st_size:,} B | `{digest}` |" in card
    assert "| `carbon/emissions_kgco2eq` | 0.00012 |" in section(card, "Energy and CO2")
    assert "| `rows` | 3 |" in section(card, "Parameters")
    assert "journal's hash chain is intact" in section(card, "Integrity")
    assert "recorded when the run was logged" in section(card, "Environment and code")
    assert SECRET not in card


def test_a_consumer_card_names_the_run_that_made_its_dataset(exported):
    ids = exported["ids"]
    card = card_of(exported, "training", "consumer").read_text(encoding="utf-8")
    inputs = section(card, "Inputs")
    assert "| training |" in inputs
    assert f"| runs:/{ids['producer']}/data/features.csv |" in inputs
    assert f"was made by run `{ids['producer']}`" in section(card, "Lineage")
    assert "logged model classifier" in section(card, "Outputs")
    child = card_of(exported, "training", "child").read_text(encoding="utf-8")
    assert f"child of run `{ids['consumer']}`" in section(child, "Lineage")
    assert f"was logged by run `{ids['consumer']}`" in section(child, "Lineage")


def test_hostile_text_stays_text_and_keeps_the_tables_whole(exported):
    page = rendered(card_of(exported, "training", "hostile"))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img" not in page and "<a " not in page, "a name or file became markup"
    assert "[docs](javascript:alert(1))" in page and "alert(3)" in page
    params = page[page.index("<h2>Parameters</h2>"):page.index("<h2>Metrics</h2>")]
    assert params.count("<tr>") == 2 and "a|b" in params
    metrics = page[page.index("<h2>Metrics</h2>"):page.index("<h2>Artifacts</h2>")]
    row = metrics.split("<tr>")[2]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert cells == ["<code>loss</code>", "—", "2", "0–3", "0.25", "0.25", "0.5"]


def test_the_experiment_card_links_each_run_card(exported):
    card_path = exported["out"] / "training" / "experiment.card.md"
    card = card_path.read_text(encoding="utf-8")
    for role in ("consumer", "child", "hostile"):
        link = f"(run-{exported['ids'][role]}/card.md)"
        assert link in card
        assert (card_path.parent / link[1:-1]).is_file()
    page = rendered(card_path)
    assert page.count("<tr>") == 4 and "<code>loss</code>" in page
    links = re.findall(r'<a href="([^"]*)"', page)
    assert sorted(links) == sorted(f"run-{exported['ids'][role]}/card.md"
                                   for role in ("consumer", "child", "hostile"))
    assert "<img" not in page
