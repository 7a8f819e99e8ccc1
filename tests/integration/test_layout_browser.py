"""The layered layout and the folded timeline in a real browser (headless Chromium, playwright):
on the ``/prov/`` pages of a real ``mlflow server --app-name prov`` and in an exported
``graph.html`` opened from disk. No edge runs through a node or an edge label, labels do not
overlap, a folded stretch of metric events opens to one row per key, and the exported file
loads nothing from the network. Screenshots go where ``test_prov_browser`` puts its own
(``$MLFLOW_PROV_SCREENSHOTS``, else the test's folder).
"""

from __future__ import annotations

from pathlib import Path

from lineage_scenario import write
from mlflow import MlflowClient
from test_prov_browser import _screenshots, pytestmark  # noqa: F401 (chromium or skip)
from test_prov_browser import browser_page as browser_page  # the fixture
from test_prov_pages import serve

from exporters import ExportOptions, export

# Every edge path sampled every pixel of its length: no sample strictly inside a label's box
# or a node's box; no two labels, and no label and node, overlap. Coordinates are the graph
# layer's, whatever the zoom.
OVERLAPS = """(root) => {
  const layer = root.querySelector(".mv-layer"), inverse = layer.getCTM().inverse();
  const box = (el) => { const b = el.getBBox(), m = inverse.multiply(el.getCTM());
    return {x: b.x + m.e, y: b.y + m.f, w: b.width, h: b.height}; };
  const labels = [...root.querySelectorAll(".mv-edge-label rect")].map(box);
  const nodes = [...root.querySelectorAll(".mv-node > rect.mv-box")].map(box);
  const inside = (p, r, m) => p.x > r.x + m && p.x < r.x + r.w - m &&
                              p.y > r.y + m && p.y < r.y + r.h - m;
  const meet = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  const found = [];
  root.querySelectorAll(".mv-edge path").forEach((path, k) => {
    for (let s = 0; s <= path.getTotalLength(); s += 1) {
      const p = path.getPointAtLength(s);
      labels.forEach((r, j) => {
        if (inside(p, r, 0.5)) found.push(`edge ${k} crosses label ${j}`); });
      nodes.forEach((r, j) => {
        if (inside(p, r, 1)) found.push(`edge ${k} crosses node ${j}`); });
    }
  });
  labels.forEach((a, i) => {
    labels.forEach((b, j) => { if (i < j && meet(a, b)) found.push(`labels ${i}, ${j} meet`); });
    nodes.forEach((b, j) => { if (meet(a, b)) found.push(`label ${i} meets node ${j}`); });
  });
  return {labels: labels.length, edges: root.querySelectorAll(".mv-edge path").length,
          found: [...new Set(found)]};
}"""


def _metric_stretch(uri: str, run_id: str) -> None:
    """Training-loop metrics: one call per value, as a loop writes them."""
    client = MlflowClient(uri)
    for step in range(20):
        client.log_metric(run_id, "train/loss", 1 / (step + 1), step=step)
        client.log_metric(run_id, "train/accuracy", step / 20, step=step)


def _no_overlaps(page) -> dict:
    laid = page.locator(".mlprov-viewer").first.evaluate(OVERLAPS)
    assert laid["labels"] > 0 and laid["labels"] == laid["edges"], laid
    assert laid["found"] == [], laid["found"]
    return laid


def test_layout_and_folded_timeline_in_a_browser(tmp_path, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page, shots = browser_page, _screenshots(tmp_path)
    store = f"prov://{tmp_path / 'served'}"
    ids = write(store)
    _metric_stretch(store, ids["consumer"])
    result = export("training", tmp_path / "out", tracking_uri=store,
                    options=ExportOptions(formats=("html",), show_progress=False))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((result.experiment_dir / f"run-{ids['consumer']}" / "graph.html").as_uri())
    _no_overlaps(page)
    fold = page.locator(".mv-timeline tr.mv-fold").filter(has_text="train/loss")
    expect(fold).to_contain_text("40 events, 2 keys (train/accuracy, train/loss)")
    fold.locator("summary").click()
    expect(fold.locator("tr.mv-fold-key")).to_have_count(2)
    expect(fold.locator("tr.mv-fold-key").last).to_contain_text("20 values, steps 0–19")
    page.locator(".mv-node", has_text="train-model").first.click()
    header = page.locator(".mv-panel table.mv-attributes th").filter(has_text="git commit")
    assert header.count() == 0 or header.first.evaluate(
        "th => th.scrollWidth <= th.clientWidth")  # a name is never broken inside a word
    page.screenshot(path=str(shots / "export-graph-dagre.png"), full_page=True)
    assert all(url.startswith("file:") for url in requests), requests

    for base in serve(store, tmp_path):
        page.goto(f"{base}/prov/experiments/{ids['training']}")
        laid = _no_overlaps(page)
        assert laid["labels"] >= 3
        page.screenshot(path=str(shots / "prov-lineage-dagre.png"), full_page=True)

        page.goto(f"{base}/prov/runs/{ids['consumer']}")
        fold = page.locator("table.timeline tr.fold")
        expect(fold).to_have_count(1)
        expect(fold.locator("summary")).to_contain_text("40 events, 2 keys")
        expect(fold.locator("tr.fold-key").first).not_to_be_visible()
        fold.locator("summary").click()
        keys = fold.locator("tr.fold-key")
        expect(keys).to_have_count(2)
        expect(keys.first).to_be_visible()
        expect(keys.filter(has_text="train/loss")).to_contain_text("20 values, steps 0–19")
        page.screenshot(path=str(shots / "prov-run-timeline-folded.png"), full_page=True)
    for name in ("export-graph-dagre.png", "prov-lineage-dagre.png",
                 "prov-run-timeline-folded.png"):
        assert (shots / name).stat().st_size > 10_000, Path(name)
