"""The default graphs a person reads: widths of real runs' SVGs, names as labels, the full
PROV drawing on request, and the HTML view driven in a real headless Chromium."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import mlflow
import pytest
from prov.model import ProvDocument, ProvElement
from store_templates import sqlite_store

from exporters import ExportOptions, export

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAX_WIDTH_PT = 2000
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz 'dot' is not installed (apt-get install graphviz)")


def svg_size_pt(path: Path) -> tuple[float, float]:
    head = path.read_text(encoding="utf-8")[:2000]
    found = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', head)
    assert found, f"{path} has no width/height in pt"
    return float(found.group(1)), float(found.group(2))


def svg_texts(path: Path) -> list[str]:
    return [html.unescape(t) for t in
            re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8"))]


def quickstart_module():
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLES / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_all(uri: str, experiment: str, out: Path, **options) -> Path:
    result = export(experiment, out, tracking_uri=uri,
                    options=ExportOptions(formats=("prov-json", "dot", "svg", "html"),
                                          show_progress=False, **options))
    return result.experiment_dir


@needs_dot
def test_quickstart_run_graph_is_narrow_and_labelled_by_name(prov_uri, tmp_path):
    mlflow.set_tracking_uri(prov_uri)
    mlflow.set_experiment("quickstart")
    run_id = quickstart_module().train(epochs=5, learning_rate=0.5)
    exp_dir = export_all(prov_uri, "quickstart", tmp_path / "out")
    run_svg = exp_dir / f"run-{run_id}" / "graph.svg"
    for path in (run_svg, exp_dir / "experiment.svg"):
        width, _ = svg_size_pt(path)
        print(f"{path.name}: {width:.0f} pt wide")
        assert width <= MAX_WIDTH_PT, f"{path.name} is {width} pt wide"
    texts = svg_texts(run_svg)
    for label in ("logistic-regression", "blobs-train", "blobs-val", "training", "validation",
                  "model/weights.json", "learning_rate = 0.5", "stage = trained"):
        assert label in texts, label
    assert not [t for t in texts if re.search(r"%[0-9A-F]{2}", t)]
    assert not [t for t in texts if t.startswith("mlflow:")]


@needs_dot
@pytest.mark.slow  # samples a 1.5 s busy loop, then renders SVG with Graphviz
def test_a_run_with_system_metrics_stays_narrow(prov_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.25")

    def refuse(self, address, *args):
        raise OSError(f"network refused in tests: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    mlflow.set_tracking_uri(prov_uri)
    mlflow.set_experiment("system-metrics")
    with mlflow.start_run(run_name="monitored", log_system_metrics=True) as run:
        mlflow.log_param("lr", "0.01")
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            sum(range(10_000))
    system_keys = [k for k in mlflow.MlflowClient(prov_uri).get_run(run.info.run_id).data.metrics
                   if k.startswith("system/")]
    assert len(system_keys) >= 5
    exp_dir = export_all(prov_uri, "system-metrics", tmp_path / "out")
    run_svg = exp_dir / f"run-{run.info.run_id}" / "graph.svg"
    width, _ = svg_size_pt(run_svg)
    print(f"system-metrics graph.svg: {width:.0f} pt wide, {len(system_keys)} system keys")
    assert width <= MAX_WIDTH_PT
    texts = svg_texts(run_svg)
    assert f"system metrics ({len(system_keys)})" in texts
    assert sum(t.startswith("system/") for t in texts) <= 12, "system metrics are one node"


@needs_dot
@pytest.mark.slow  # two exports, each drawing its graphs with Graphviz subprocesses
def test_full_detail_keeps_every_prov_element(prov_experiment, tmp_path):
    exp_dir = export_all(prov_experiment.tracking_uri, prov_experiment.experiment_id,
                         tmp_path / "out", graph_detail="full")
    run_dir = exp_dir / f"run-{prov_experiment.producer}"
    doc = ProvDocument.deserialize(content=(run_dir / "prov.json").read_text(), format="json")
    elements = {r.identifier.uri for r in doc.flattened().get_records(ProvElement)}
    dot = (run_dir / "graph.dot").read_text(encoding="utf-8")
    drawn = set(re.findall(r'URL="([^"]+)"', dot))
    assert elements <= drawn
    assert svg_size_pt(run_dir / "graph.svg")[0] > 0
    default = export_all(prov_experiment.tracking_uri, prov_experiment.experiment_id,
                         tmp_path / "ml")
    ml_dot = (default / f"run-{prov_experiment.producer}" / "graph.dot").read_text()
    assert len(ml_dot) < len(dot) / 3


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_offline(browser, path: Path):
    """A page on ``path`` (file://) where every non-file request is refused and recorded."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []

    def route(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    return page, requests, errors


@pytest.mark.slow
def test_html_view_works_offline_in_chromium(browser, prov_experiment, tmp_path):
    exp_dir = export_all(prov_experiment.tracking_uri, prov_experiment.experiment_id,
                         tmp_path / "out")
    run_html = exp_dir / f"run-{prov_experiment.producer}" / "graph.html"
    page, requests, errors = open_offline(browser, run_html)
    node = page.locator(f'.mv-node[data-id="run:{prov_experiment.producer}"]')
    node.click()
    panel = page.locator(".mv-panel")
    assert "producer" in panel.inner_text()
    assert prov_experiment.producer in panel.inner_text()
    assert page.locator(".mv-row", has_text="lr = 0.01").count() == 0
    page.locator(f'.mv-toggle[data-toggle="params:{prov_experiment.producer}"]').click()
    member = page.locator(".mv-row", has_text="lr = 0.01")
    assert member.count() == 1
    member.click()
    assert "0.01" in panel.locator("table").inner_text()
    row = page.locator("tr.mv-event").filter(has_text="run.tags_set").filter(
        has_text="stage").last
    assert row.locator(".mv-old").inner_text() == "draft"
    assert row.locator(".mv-new").inner_text() == "final"
    box = page.locator(".mv-layer").get_attribute("transform")
    page.mouse.move(600, 400)
    page.mouse.wheel(0, -400)
    assert page.locator(".mv-layer").get_attribute("transform") != box, "wheel zooms"

    experiment_page, more_requests, more_errors = open_offline(browser,
                                                               exp_dir / "experiment.html")
    edges = experiment_page.locator(".mv-edge")
    ends = {(edges.nth(i).get_attribute("data-source"), edges.nth(i).get_attribute("data-target"))
            for i in range(edges.count())}
    artifact = f"artifact:{prov_experiment.producer}/{prov_experiment.artifact_path}"
    assert (f"run:{prov_experiment.producer}", artifact) in ends
    assert any(source == artifact for source, _ in ends), "producer output feeds a dataset"
    assert any(target == f"run:{prov_experiment.consumer}" for _, target in ends)
    experiment_page.locator(".mv-search").fill("consum")
    experiment_page.locator(".mv-search").press("Enter")
    assert experiment_page.locator(".mv-panel h3").inner_text() == "consumer"
    texts = experiment_page.locator(".mv-node text").all_text_contents()
    assert "producer" in texts and "consumer" in texts
    assert not [t for t in texts if re.search(r"%[0-9A-F]{2}", t)]
    assert requests == [] and more_requests == [], "the view must not touch the network"
    assert errors == [] and more_errors == []


def test_html_embeds_no_remote_reference(prov_experiment, tmp_path):
    result = export(prov_experiment.experiment_id, tmp_path / "out",
                    tracking_uri=prov_experiment.tracking_uri,
                    options=ExportOptions(formats=("html",), show_progress=False))
    page = (result.experiment_dir / "experiment.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', page)
    data = view_data(result.experiment_dir / "experiment.html")
    labels = {n["label"] for n in data["nodes"]}
    assert {"producer", "consumer", "features", unquote(prov_experiment.artifact_path)} <= labels
    consumer_data = view_data(result.experiment_dir / f"run-{prov_experiment.consumer}"
                              / "graph.html")
    ends = {(e["source"], e["label"]) for e in consumer_data["edges"]}
    assert (f"run:{prov_experiment.producer}", "produced") in ends, "the run's upstream run"


@pytest.mark.slow
def test_quickstart_says_where_to_look_and_why_svg_is_missing(tmp_path):
    """Run as a user would, with a PATH that has no Graphviz."""
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CODECARBON_"))}
    env["PATH"] = str(empty_bin)
    done = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--epochs", "3"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    view = re.search(r"interactive view .*?: (\S+graph\.html)", done.stdout)
    assert view and Path(view.group(1)).is_file()
    assert "SVG skipped because Graphviz's 'dot' is not installed" in done.stdout
    assert f"mlflow-prov ui --backend-store-uri prov://{tmp_path / 'runs'}" in done.stdout
    assert not list(tmp_path.rglob("*.svg"))


def test_graphs_and_html_keep_the_export_privacy_rules(tmp_path):
    """A token in the repo URL, a secret param and the home folder's user reach neither the
    DOT graph nor the HTML view under --pseudonymize."""
    client = mlflow.MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    experiment_id = client.create_experiment("leaks",
                                             artifact_location=(tmp_path / "a").as_uri())
    run = client.create_run(experiment_id, tags={
        "mlflow.source.git.repoURL": "https://x-access-token:s3cretvalue123@github.com/acme/r.git",
        "mlflow.source.name": "/home/carol/projects/train.py", "mlflow.user": "carol"})
    client.log_param(run.info.run_id, "api_token", "tok-s3cretvalue456")
    client.set_terminated(run.info.run_id)
    result = export("leaks", tmp_path / "out", tracking_uri=client.tracking_uri,
                    options=ExportOptions(formats=("dot", "html"), pseudonymize=True,
                                          show_progress=False))
    files = [p for p in result.experiment_dir.rglob("*") if p.suffix in (".dot", ".html")]
    assert len(files) == 4
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "s3cretvalue" not in text and "carol" not in text, path.name
    run_html = (result.experiment_dir / f"run-{run.info.run_id}" / "graph.html").read_text()
    assert "api_token = [redacted]" in run_html and "/home/user-" in run_html


def view_data(path: Path) -> dict:
    return json.loads(re.search(r'class="mv-data">(.*?)</script>',
                                path.read_text(encoding="utf-8"), re.S).group(1))


@pytest.mark.slow  # a fresh PostgreSQL database
@pytest.mark.postgres
def test_html_view_on_postgresql(prov_postgres_uri, tmp_path):
    """The same view and timeline from a prov store on PostgreSQL."""
    mlflow.set_tracking_uri(prov_postgres_uri)
    mlflow.set_experiment("pg")
    with mlflow.start_run(run_name="pg-run") as run:
        mlflow.log_param("lr", "0.01")
        mlflow.set_tag("stage", "draft")
        mlflow.set_tag("stage", "final")
    result = export("pg", tmp_path / "out", tracking_uri=prov_postgres_uri,
                    options=ExportOptions(formats=("html",), show_progress=False))
    data = view_data(result.experiment_dir / f"run-{run.info.run_id}" / "graph.html")
    assert "pg-run" in {n["label"] for n in data["nodes"]}
    changes = [(r.get("old"), r.get("new")) for r in data["timeline"]
               if r.get("what") == "stage"]
    assert changes == [(None, "draft"), ("draft", "final")]
    assert ("RUNNING", "FINISHED") in [(r.get("old"), r.get("new")) for r in data["timeline"]]


def test_cli_graph_detail_option(sqlite_experiment, tmp_path):
    from click.testing import CliRunner

    from exporters.cli import main

    def run_cli(*extra: str):
        return CliRunner().invoke(main, ["export", "--tracking-uri",
                                         sqlite_experiment.tracking_uri, "--experiment",
                                         sqlite_experiment.experiment_id, "--out",
                                         str(tmp_path / "-".join(extra or ("ml",))),
                                         "--format", "dot", "--run", sqlite_experiment.producer,
                                         *extra])

    full, default, wrong = run_cli("--graph-detail", "full"), run_cli(), \
        run_cli("--graph-detail", "pretty")
    assert full.exit_code == 0 and default.exit_code == 0, full.output + default.output
    dots = {name: next((tmp_path / name).rglob("graph.dot")).read_text(encoding="utf-8")
            for name in ("--graph-detail-full", "ml")}
    assert 'URL="urn:mlflow:' in dots["--graph-detail-full"]
    assert "urn:mlflow:" not in dots["ml"] and "lr = 0.01" in dots["ml"]
    assert wrong.exit_code == 2 and "'pretty' is not one of 'ml', 'full'" in wrong.output
