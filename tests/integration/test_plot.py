"""`mlflow-prov plot` on real sqlite and PostgreSQL prov stores (and plain MLflow sqlite, read
through the client): files, legends, units, non-finite values, many runs, errors."""

from __future__ import annotations

import math
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.entities import Metric
from PIL import Image
from store_templates import prov_store, sqlite_store

from exporters.cli import main
from exporters.plots import LEGEND_MAX, read_runs

SYSTEM_KEYS = ("system/cpu_utilization_percentage", "system/gpu_0_utilization_percentage",
               "system/gpu_0_power_usage_watts", "system/carbon/cpu_power_watts",
               "system/carbon/energy_consumed_kwh",
               "system/carbon/emissions_rate_kg_per_second")


def log_training(uri: str, experiment: str, runs: int, epochs: int = 30,
                 system: bool = True) -> list[str]:
    """Runs with a falling train/val loss, an accuracy with a NaN and an inf, and system
    metrics every 10 s of a simulated hour-long run."""
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    rng = np.random.default_rng(7)
    start = int(time.time() * 1000)
    ids = []
    for r in range(runs):
        run = client.create_run(experiment_id, run_name=f"lr-{0.1 / (r + 1):.3g}")
        decay = 0.08 + 0.02 * r
        metrics = []
        for epoch in range(epochs):
            stamp = start + epoch * 120_000
            loss = 2.3 * math.exp(-decay * epoch) + 0.05 * rng.random()
            metrics += [Metric("train/loss", loss, stamp, epoch),
                        Metric("val/loss", loss * 1.1 + 0.03, stamp, epoch),
                        Metric("accuracy", 1 - loss / 2.5, stamp, epoch)]
        metrics[5] = Metric("accuracy", float("nan"), metrics[5].timestamp, 1)
        metrics[8] = Metric("accuracy", float("inf"), metrics[8].timestamp, 2)
        energy = 0.0
        if system:
            for i in range(epochs * 12):
                stamp = start + i * 10_000
                busy = 85 + 10 * math.sin(i / 9) if i < epochs * 11 else 5
                energy += 0.0001 * (1 + busy / 100)
                metrics += [Metric(SYSTEM_KEYS[0], 40 + 20 * math.sin(i / 5), stamp, i),
                            Metric(SYSTEM_KEYS[1], busy, stamp, i),
                            Metric(SYSTEM_KEYS[2], 60 + 2.5 * busy, stamp, i),
                            Metric(SYSTEM_KEYS[3], 35 + 0.2 * busy, stamp, i),
                            Metric(SYSTEM_KEYS[4], energy, stamp, i),
                            Metric(SYSTEM_KEYS[5], 3e-6 * (1 + busy / 100), stamp, i)]
        for chunk in range(0, len(metrics), 1000):
            client.log_batch(run.info.run_id, metrics=metrics[chunk:chunk + 1000])
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    mlflow.set_tracking_uri(None)
    return ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, list[str]]:
    uri = prov_store(tmp_path_factory.mktemp("plot") / "runs")
    return uri, log_training(uri, "mnist", runs=3)


def plot(*args: str):
    return CliRunner().invoke(main, ["plot", *args])


@pytest.mark.slow  # renders nine PNG figures
def test_plots_for_each_metric_each_run_and_the_system(trained, tmp_path):
    uri, ids = trained
    result = plot("--tracking-uri", uri, "--experiment", "mnist", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")}
    assert {"metrics/train_loss.png", "metrics/val_loss.png", "metrics/accuracy.png"} <= names
    assert len([n for n in names if n.startswith("runs/")]) == 3
    assert len([n for n in names if n.startswith("system/")]) == 3
    assert not any(n.startswith("metrics/system") for n in names)
    for name in names:
        with Image.open(tmp_path / name) as image:
            assert image.size[0] >= 600 and image.getextrema() != ((255, 255),) * 4
    assert f"wrote {len(names)} plot(s) of 3 run(s)" in result.output


def test_units_legends_and_non_finite_values_are_reported(trained, tmp_path, monkeypatch):
    """Titles and labels as drawn (read back from the figure before it is saved)."""
    import matplotlib.figure

    uri, _ = trained
    seen: dict[str, dict] = {}

    def record(fig, path, **kwargs):
        axes = fig.get_axes()
        seen[Path(path).name] = {
            "titles": [ax.get_title() or ax.get_title(loc="left") for ax in axes],
            "ylabels": [ax.get_ylabel() for ax in axes],
            "legend": [t.get_text() for ax in axes if ax.get_legend()
                       for t in ax.get_legend().get_texts()]}
        Path(path).write_bytes(b"")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    result = plot("--tracking-uri", uri, "--experiment", "mnist", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    accuracy = seen["accuracy.png"]
    assert "3 run(s) (6 non-finite point(s) not drawn)" in accuracy["titles"][0]
    assert all(label.startswith("lr-") for label in accuracy["legend"])
    system = next(v for k, v in seen.items() if k.startswith("lr-0.1-"))
    assert "percent" in system["ylabels"] and "W" in system["ylabels"]
    assert "kW h" in system["ylabels"] and "kg/s" in system["ylabels"]
    assert "train/loss [" not in " ".join(system["ylabels"])
    assert "train/loss" in system["legend"]


def test_metric_patterns_and_runs_narrow_the_plots(trained, tmp_path):
    uri, ids = trained
    result = plot("--tracking-uri", uri, "--experiment", "mnist", "--run", ids[0],
                  "--metric", "*/loss", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["train_loss.png",
                                                                         "val_loss.png"]
    assert len(list((tmp_path / "runs").iterdir())) == 1


@pytest.mark.slow
def test_a_hundred_runs_get_a_colour_bar_not_a_legend(tmp_path):
    uri = f"prov://{tmp_path / 'many'}"
    log_training(uri, "sweep", runs=LEGEND_MAX + 88, epochs=5, system=False)
    started = time.perf_counter()
    result = plot("--tracking-uri", uri, "--experiment", "sweep", "--out", str(tmp_path / "p"))
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert "per-run figures skipped for 100 runs" in result.output
    assert not (tmp_path / "p" / "runs").exists()
    assert elapsed < 120


def test_plain_sqlite_reads_through_the_client(tmp_path):
    uri = sqlite_store(tmp_path / "plain.db")
    log_training(uri, "plain", runs=1, epochs=4, system=False)
    name, runs = read_runs(uri, "plain")
    assert name == "plain" and runs[0].series["accuracy"].non_finite == 2
    assert np.isnan(runs[0].series["accuracy"].values).sum() == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--experiment", "nope"], "no experiment named or numbered 'nope'"),
    (["--experiment", "mnist", "--metric", "nothing*"], "no metric of experiment 'mnist'"),
])
def test_errors_are_one_line(trained, tmp_path, args, message):
    result = plot("--tracking-uri", trained[0], *args, "--out", str(tmp_path))
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1


@pytest.mark.slow  # the plots again, rendered from PostgreSQL
@pytest.mark.postgres
def test_plot_on_postgresql(prov_postgres_uri, tmp_path):
    log_training(prov_postgres_uri, "pg", runs=2, epochs=5)
    result = plot("--tracking-uri", prov_postgres_uri, "--experiment", "pg",
                  "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "system").iterdir())) == 2
