"""The provenance pages in a real browser: headless Chromium from Debian, driven by playwright.

What a user sees: run names on the lineage page, the producer → consumer edge between runs of
two experiments, and on a run's timeline the old → new values of a tag and its status
transitions; a tampered journal shows as a broken chain. Screenshots go to
``$MLFLOW_PROV_SCREENSHOTS`` when set (docs/browse.md's come from there), else to the test's
temporary folder.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from lineage_scenario import SECRET, write
from test_prov_pages import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="no /usr/bin/chromium: apt-get install chromium to run the "
                              "browser tests"),
]


@pytest.fixture
def browser_page():
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="pip install playwright (no browser download)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def _edit_a_tag_event(database: Path, run_id: str) -> None:
    """Tamper with the journal behind the server's back, as an attacker with the file would."""
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE prov_journal SET payload = replace(payload, 'warmup', 'cold') "
                           "WHERE run_id = ? AND kind = 'run.tags_set'", (run_id,))


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MLFLOW_PROV_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_user_sees_lineage_and_the_audit_timeline(tmp_path, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    ids = write(f"prov://{tmp_path / 'served'}")
    shots = _screenshots(tmp_path)
    for base in serve(f"prov://{tmp_path / 'served'}", tmp_path):
        page.goto(f"{base}/prov/")
        page.get_by_role("link", name="training", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Lineage of training")

        link = page.locator("table.run-links tbody tr").filter(has_text="prepare-data")
        expect(link).to_contain_text("train-model")
        expect(link).to_contain_text("data/features.csv")
        expect(link).to_contain_text(f"experiment {ids['features']}")
        runs = page.locator("table.runs tbody tr")
        expect(runs).to_have_count(2)
        expect(runs.first).to_contain_text("train-model")
        viewer = page.locator(".mlprov-viewer")
        expect(viewer).to_contain_text("prepare-data")
        expect(viewer).to_contain_text("classifier")
        page.screenshot(path=str(shots / "prov-lineage.png"), full_page=True)

        page.goto(f"{base}/prov/runs/{ids['producer']}")
        phase = page.locator("table.timeline .change").filter(has_text="phase").last
        expect(phase.locator(".old")).to_have_text("warmup")
        expect(phase.locator(".new")).to_have_text("main")
        status = page.locator("table.timeline .change").filter(has_text="status")
        expect(status.locator(".old")).to_have_text("RUNNING")
        expect(status.locator(".new")).to_have_text("FINISHED")
        expect(page.locator(".fact").filter(has_text="Journal chain")).to_contain_text("intact")
        expect(page.locator(".fact").filter(has_text="emissions")).to_contain_text("0.00012")
        page.screenshot(path=str(shots / "prov-run-timeline.png"), full_page=True)

        page.select_option("select[name=kind]", "run.tags_set")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("table.timeline tbody tr")).to_have_count(3)
        expect(page.locator("table.timeline")).not_to_contain_text(SECRET)

        _edit_a_tag_event(tmp_path / "served" / "mlflow.db", ids["producer"])
        page.reload()
        expect(page.locator("#chain-status")).to_contain_text("broken")
        expect(page.locator("#chain-problems")).to_contain_text("does not match its hash")
    assert (shots / "prov-lineage.png").stat().st_size > 10_000
