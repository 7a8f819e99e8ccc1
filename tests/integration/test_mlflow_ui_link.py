"""One click from MLflow's own UI to the provenance: the ``prov`` app adds a script to MLflow's
page that puts a "Provenance" entry in MLflow's sidebar and, on a run's page, a link to that
run's timeline. Checked on MLflow's real page, in process and in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import flask
import pytest
from lineage_scenario import write
from test_prov_browser import CHROMIUM, CHROMIUM_ARGS, _screenshots
from test_prov_pages import serve

from exporters.compat import mlflow_flask_app, mlflow_ui_endpoint

SCRIPT_PATH = "/prov/ui-link/mlflow-link.js"


@pytest.fixture
def client(monkeypatch, prov_uri) -> flask.testing.FlaskClient:
    """A bare Flask app with the prov routes and MLflow's real UI page at MLflow's endpoint."""
    from exporters.app.permissions import OpenAccess
    from exporters.app.setup import install
    from exporters.compat import backend_store_env_var

    monkeypatch.setenv(backend_store_env_var(), prov_uri)
    app = flask.Flask("prov-ui-link-test")
    mlflow_static = mlflow_flask_app().static_folder

    def mlflow_page() -> flask.Response:
        return flask.send_from_directory(mlflow_static, "index.html")

    app.add_url_rule("/", endpoint=mlflow_ui_endpoint(), view_func=mlflow_page)
    app.add_url_rule("/plain", endpoint="plain",
                     view_func=lambda: flask.Response("<html><body>x</body></html>",
                                                      mimetype="text/html"))
    install(app, OpenAccess())
    return app.test_client()


def test_mlflows_page_gets_the_script_once_and_nothing_else_changes(client):
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count(f'src="{SCRIPT_PATH}"') == 1
    assert 'data-prov-home="/prov/"' in text
    assert text.index(SCRIPT_PATH) < text.index("</body>")
    assert "ETag" not in page.headers, "the changed page must not keep MLflow's file's ETag"
    assert int(page.headers["Content-Length"]) == len(page.get_data())
    assert "mlflow-link.js" not in client.get("/plain").get_data(as_text=True)
    script = client.get(SCRIPT_PATH)
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b"Provenance timeline" in script.get_data()


def test_a_revalidating_browser_gets_the_page_with_the_script(client):
    """A browser holding MLflow's page from before the app was installed revalidates with the
    file's validators (``*`` matches any ETag); it must get the page with the script, not a
    304 that keeps its copy without it."""
    for validators in ({"If-None-Match": "*"},
                       {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        again = client.get("/", headers=validators)
        assert again.status_code == 200, validators
        assert SCRIPT_PATH in again.get_data(as_text=True)
        assert "Last-Modified" not in again.headers


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: apt-get install chromium to run the browser tests")
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="pip install playwright (no browser download)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.mark.slow  # a real mlflow server and headless Chromium loading MLflow's React UI
def test_a_user_clicks_from_mlflows_run_page_to_its_timeline_and_back(tmp_path, browser):
    from mlflow import MlflowClient
    from playwright.sync_api import expect

    store = f"prov://{tmp_path / 'served'}"
    ids = write(store)
    run = MlflowClient(store).get_run(ids["producer"])
    shots = _screenshots(tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for base in serve(store, tmp_path):
        page.goto(f"{base}/")
        nav = page.locator("#mlflow-prov-nav-link")
        expect(nav).to_have_text("Provenance", timeout=60_000)
        page.screenshot(path=str(shots / "mlflow-sidebar-link.png"))
        nav.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Experiments")

        page.goto(f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}")
        expect(page.get_by_test_id("runs-header")).to_have_text("prepare-data", timeout=60_000)
        link = page.locator("#mlflow-prov-run-link")
        expect(link).to_have_text("Provenance timeline")
        page.screenshot(path=str(shots / "mlflow-run-link.png"))
        link.click()
        page.wait_for_url(f"{base}/prov/runs/{run.info.run_id}")
        expect(page.locator("table.timeline")).to_contain_text("phase")

        page.get_by_role("link", name="open in MLflow").click()
        expect(page.get_by_test_id("runs-header")).to_have_text("prepare-data", timeout=60_000)
        expect(page.locator("#mlflow-prov-run-link")).to_have_attribute(
            "href", f"/prov/runs/{run.info.run_id}")
        page.goto(f"{base}/#/experiments/{run.info.experiment_id}")
        expect(page.locator("#mlflow-prov-run-link")).to_have_count(0)
    assert errors == []
    assert (shots / "mlflow-run-link.png").stat().st_size > 10_000


@pytest.mark.slow  # headless Chromium
def test_a_page_without_mlflows_elements_gets_no_link_and_no_error(browser, tmp_path):
    """When a new MLflow moves its sidebar or run header, the script adds nothing and breaks
    nothing."""
    script = (Path(__file__).parents[2] / "exporters" / "app" / "static" / "mlflow-link.js")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_content("<html><body><nav><ul><li><a href='/x'>Home</a></li></ul></nav>"
                     "<h2>a run</h2></body></html>")
    page.evaluate("window.location.hash = '#/experiments/1/runs/abc123'")
    page.add_script_tag(content=script.read_text(encoding="utf-8"))
    two_frames = ("() => new Promise(done => requestAnimationFrame("
                  "() => requestAnimationFrame(done)))")
    page.evaluate(two_frames)  # the script places its links in the next animation frame
    assert page.locator("#mlflow-prov-nav-link, #mlflow-prov-run-link").count() == 0
    assert page.locator("nav li").count() == 1
    page.evaluate("document.querySelector('nav ul').insertAdjacentHTML('beforeend', "
                  "\"<li><a href='https://mlflow.org/docs/latest/'><span>Docs</span></a></li>\")")
    page.evaluate(two_frames)
    assert page.locator("#mlflow-prov-nav-link").count() == 1, "the script was running"
    assert errors == []
