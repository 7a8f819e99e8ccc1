"""Regenerate the documentation's pictures of the default graph and the HTML view.

    .venv/bin/python docs/graph_screenshots.py

Trains the quickstart run plus a two-run pipeline (a ``prepare`` run writes features that a
``train`` run reads, so the experiment shows lineage) into a temporary prov store, exports
them with ``dot,svg,html``, and writes ``docs/graph-run.png`` (Graphviz ``dot -Tpng`` of
the run's default graph), ``docs/graph-experiment.png`` and ``docs/html-view.png`` (the HTML
view in headless Chromium, a group expanded and the run selected). Prints the SVG widths.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from exporters import ExportOptions, export

DOCS = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pipeline(workdir: Path) -> None:
    """``prepare`` logs a features file; ``train`` uses it as its training dataset."""
    frame = pd.DataFrame({"x1": [0.1, 0.4, 0.9], "x2": [1.0, 0.5, 0.2], "label": [0, 1, 1]})
    csv = workdir / "features.csv"
    frame.to_csv(csv, index=False)
    with mlflow.start_run(run_name="prepare") as prepare:
        mlflow.log_param("normalise", "minmax")
        mlflow.log_artifact(str(csv), artifact_path="data")
    source = f"{prepare.info.artifact_uri}/data/features.csv"
    with mlflow.start_run(run_name="train"):
        mlflow.log_input(mlflow.data.from_pandas(frame, source=source, name="features"),
                         context="training")
        mlflow.log_params({"lr": 0.01, "epochs": 3})
        for step in range(3):
            mlflow.log_metric("train/loss", 1.0 / (step + 1), step=step)
        mlflow.log_dict({"weights": [0.3, -0.2]}, "model/weights.json")


def svg_width(path: Path) -> str:
    return re.search(r'<svg width="([\d.]+pt)"', path.read_text(encoding="utf-8")).group(1)


def main() -> None:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="graph-shots-"))
    uri = f"prov://{work / 'runs'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("quickstart")
    spec = importlib.util.spec_from_file_location("quickstart", DOCS.parent / "examples" /
                                                  "quickstart.py")
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    run_id = quickstart.train(epochs=20, learning_rate=0.5)
    mlflow.set_experiment("pipeline")
    pipeline(work)
    options = ExportOptions(formats=("dot", "svg", "html"), show_progress=False)
    quick = export("quickstart", work / "out", tracking_uri=uri, options=options)
    piped = export("pipeline", work / "out", tracking_uri=uri, options=options)
    run_dir = quick.experiment_dir / f"run-{run_id}"
    for path in (run_dir / "graph.svg", piped.experiment_dir / "experiment.svg"):
        print(f"{path.relative_to(work)}: {svg_width(path)} wide")
    subprocess.run(["dot", "-Tpng", "-Gdpi=96", str(run_dir / "graph.dot"), "-o",
                    str(DOCS / "graph-run.png")], check=True)
    subprocess.run(["dot", "-Tpng", "-Gdpi=96", str(piped.experiment_dir / "experiment.dot"),
                    "-o", str(DOCS / "graph-experiment.png")], check=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto((run_dir / "graph.html").as_uri())
        page.locator(f'.mv-toggle[data-toggle="params:{run_id}"]').click()
        page.locator(".mv-toolbar button", has_text="Fit").click()
        page.locator(f'.mv-node[data-id="run:{run_id}"]').click()
        page.screenshot(path=str(DOCS / "html-view.png"), full_page=True)
        browser.close()
    print(f"pictures written to {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
