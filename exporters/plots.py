"""Metric plots of an experiment's runs: each metric across runs, each run's metrics, and a
system panel (utilisation with the loss, power, energy, emissions rate) like yProv4ML's
"Metrics Visualization".

Why here: "what did training cost, and did the loss pay for it?" is asked of provenance
first; a user should not need a notebook to see it. Plots read the same series an export
does (the fast SQL path where the store allows, else MLflow's client) and draw with
matplotlib's Agg backend, so they work on a server without a display.

Readable at scale: up to :data:`LEGEND_MAX` runs get a legend with their names; more runs are
coloured from oldest to newest on a colour bar instead of a legend nobody can read. Non-finite
values (NaN, ±inf, which MLflow stores as ±DBL_MAX) are left out of the lines and counted in
the title. Axis labels carry the unit that the key's suffix declares (``_percentage``,
``_watts``, ``_kwh`` …, :func:`mlflow_prov.vocabulary.unit_for_key`).
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporters.errors import ReaderError
from exporters.privacy import redact_text
from mlflow_prov.vocabulary import SYSTEM_PREFIX, unit_for_key

LEGEND_MAX = 12
PER_RUN_MAX = 10  # above this many runs, per-run figures only when asked for
DBL_MAX = sys.float_info.max
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
LOSS_WORDS = ("loss",)


@dataclass(frozen=True)
class Series:
    """One metric of one run, ready to draw (non-finite values as NaN)."""

    key: str
    steps: np.ndarray
    timestamps_ms: np.ndarray
    values: np.ndarray
    non_finite: int


@dataclass
class RunSeries:
    run_id: str
    name: str
    start_ms: int
    series: dict[str, Series] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.run_id[:8]})" if self.name != self.run_id else self.run_id


@dataclass
class PlotResult:
    files: list[Path]
    runs: int
    metrics: list[str]
    notes: list[str] = field(default_factory=list)


def safe_name(text: str) -> str:
    """A file name from a metric key or run name (``system/gpu_0`` -> ``system_gpu_0``)."""
    return _UNSAFE.sub("_", text).strip("_") or "metric"


def axis_label(key: str) -> str:
    unit = unit_for_key(key)
    return f"{key} [{unit.udunits}]" if unit else key


# --- reading ---------------------------------------------------------------------------------

def read_runs(tracking_uri: str, experiment: str, run_ids: Sequence[str] = (),
              patterns: Sequence[str] = ()) -> tuple[str, list[RunSeries]]:
    """The experiment's name and its active runs' series (keys matching ``patterns``, shell
    globs such as ``train/*``; all keys when none), oldest run first."""
    from mlflow.exceptions import MlflowException

    from exporters.collect import find_experiment, find_runs, open_client
    from mlflow_prov.fast_read import open_reader

    client = open_client(tracking_uri)
    found = find_experiment(client, experiment)
    runs = [r for r in find_runs(client, found.experiment_id, tuple(run_ids))
            if r.info.lifecycle_stage == "active"]
    if not runs:
        raise ReaderError(f"experiment {redact_text(found.name)!r} has no active runs to plot")
    reader = open_reader(tracking_uri)
    result: list[RunSeries] = []
    try:
        for run in runs:
            keys = [k for k in sorted(run.data.metrics)
                    if not patterns or any(fnmatch.fnmatchcase(k, p) or k == p
                                           for p in patterns)]
            item = RunSeries(run.info.run_id, redact_text(run.info.run_name or run.info.run_id),
                             run.info.start_time or 0)
            for key in keys:
                if reader is not None:
                    raw = reader.series(run.info.run_id, key)
                    steps, stamps, values = raw.steps, raw.timestamps_ms, raw.values
                else:
                    history = client.get_metric_history(run.info.run_id, key)
                    steps = np.array([m.step for m in history], dtype=np.int64)
                    stamps = np.array([m.timestamp for m in history], dtype=np.int64)
                    values = np.array([m.value for m in history], dtype=np.float64)
                item.series[key] = _series(key, steps, stamps, values)
            result.append(item)
    except MlflowException as exc:
        raise ReaderError(f"cannot read metrics: {exc.message}") from exc
    finally:
        if reader is not None:
            reader.close()
    if patterns and not any(r.series for r in result):
        raise ReaderError(f"no metric of experiment {redact_text(found.name)!r} matches "
                          f"{', '.join(patterns)}; leave out --metric to list every key")
    return redact_text(found.name), result


def _series(key: str, steps: np.ndarray, stamps: np.ndarray, values: np.ndarray) -> Series:
    values = values.astype(np.float64, copy=True)
    values[np.abs(values) >= DBL_MAX] = np.nan  # MLflow's stored infinities
    non_finite = int(np.count_nonzero(~np.isfinite(values)))
    values[~np.isfinite(values)] = np.nan
    return Series(key, steps, stamps, values, non_finite)


# --- drawing ---------------------------------------------------------------------------------

def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _x(series: Series) -> tuple[np.ndarray, str]:
    """Steps, or the point index when every point was logged at the same step."""
    if len(series.steps) > 1 and np.all(series.steps == series.steps[0]):
        return np.arange(len(series.steps)), "point"
    return series.steps, "step"


def _draw(ax: Any, x: np.ndarray, y: np.ndarray, **style: Any) -> None:
    """A line, plus a dot for each point a line cannot show (its neighbours are NaN)."""
    (line,) = ax.plot(x, y, **style)
    finite = np.isfinite(y)
    before = np.concatenate(([False], finite[:-1]))
    after = np.concatenate((finite[1:], [False]))
    alone = finite & ~before & ~after
    if alone.any():
        ax.plot(x[alone], y[alone], "o", markersize=3, color=line.get_color(),
                alpha=style.get("alpha", 1.0))


def plot_metric_across_runs(key: str, runs: Sequence[RunSeries], path: Path,
                            experiment: str) -> Path:
    """One line per run of ``key`` over steps; a legend of run names, or a colour bar from
    the oldest to the newest run when there are more than :data:`LEGEND_MAX`."""
    plt = _pyplot()
    having = [r for r in runs if key in r.series]
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    many = len(having) > LEGEND_MAX
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, max(len(having), 2))) if many else None
    x_name = "step"
    for index, run in enumerate(having):
        series = run.series[key]
        x, x_name = _x(series)
        style = {"color": colours[index], "linewidth": 0.8, "alpha": 0.8} \
            if colours is not None else {"label": run.label, "linewidth": 1.5}
        _draw(ax, x, series.values, **style)
    skipped = sum(r.series[key].non_finite for r in having)
    title = f"{key} — {experiment}, {len(having)} run(s)"
    if skipped:
        title += f" ({skipped} non-finite point(s) not drawn)"
    ax.set_title(title)
    ax.set_xlabel(x_name)
    ax.set_ylabel(axis_label(key))
    ax.grid(True, alpha=0.3)
    if many:
        bar = fig.colorbar(plt.cm.ScalarMappable(cmap="viridis",
                                                 norm=plt.Normalize(1, len(having))), ax=ax)
        bar.set_label("run, oldest (1) to newest")
    elif having:
        ax.legend(fontsize="small", loc="best")
    return _save(fig, path)


def plot_run(run: RunSeries, keys: Sequence[str], path: Path) -> Path:
    """A grid with each of the run's (non-system) metrics over steps."""
    plt = _pyplot()
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows),
                             layout="constrained", squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        series = run.series[key]
        x, x_name = _x(series)
        _draw(ax, x, series.values, linewidth=1.5)
        ax.set_title(key + (f" ({series.non_finite} non-finite)" if series.non_finite else ""),
                     fontsize="medium")
        ax.set_xlabel(x_name)
        unit = unit_for_key(key)
        if unit:
            ax.set_ylabel(unit.udunits)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"run {run.label}")
    return _save(fig, path)


SYSTEM_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Utilisation", ("_utilization_percentage",)),
    ("Power", ("_watts",)),
    ("Energy", ("_kwh",)),
    ("Emissions rate", ("_kg_per_second",)),
)


def system_keys(run: RunSeries) -> dict[str, list[str]]:
    """The run's system keys per panel (panels with no key are left out)."""
    panels: dict[str, list[str]] = {}
    for title, suffixes in SYSTEM_PANELS:
        keys = [k for k in run.series if k.startswith(SYSTEM_PREFIX)
                and k.endswith(suffixes)]
        if keys:
            panels[title] = sorted(keys)
    return panels


def loss_key(run: RunSeries) -> str | None:
    """The loss to set against utilisation: a training loss if there is one."""
    losses = [k for k in run.series if not k.startswith(SYSTEM_PREFIX)
              and any(w in k.lower() for w in LOSS_WORDS)]
    training = [k for k in losses if k.lower().startswith(("train", "training"))]
    candidates = training or sorted(losses, key=len)
    return candidates[0] if candidates else None


def plot_system(run: RunSeries, path: Path) -> Path | None:
    """The system panel of one run over wall-clock time since the run started; ``None``
    when the run logged no system metrics."""
    panels = system_keys(run)
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.8 * len(panels)),
                             layout="constrained", sharex=True, squeeze=False)
    start = min(int(s.timestamps_ms.min()) for s in run.series.values() if len(s.timestamps_ms))
    loss = loss_key(run)
    for ax, (title, keys) in zip(axes[:, 0], panels.items(), strict=True):
        for key in keys:
            series = run.series[key]
            ax.plot((series.timestamps_ms - start) / 60_000, series.values, linewidth=1.3,
                    label=key.removeprefix(SYSTEM_PREFIX))
        ax.set_title(title, loc="left", fontsize="medium", fontweight="bold")
        unit = unit_for_key(keys[0])
        ax.set_ylabel(unit.udunits if unit else "")
        ax.yaxis.set_major_formatter(_compact)
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if title == "Utilisation" and loss is not None:
            twin = ax.twinx()
            series = run.series[loss]
            twin.plot((series.timestamps_ms - start) / 60_000, series.values, color="black",
                      linestyle="--", linewidth=1.2, label=loss)
            twin.set_ylabel(axis_label(loss))
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        # above the axes, right of the panel title: never over the lines
        ax.legend(handles, labels, fontsize="small", loc="lower right", ncols=3,
                  bbox_to_anchor=(1.0, 1.0), frameon=False, borderaxespad=0.2)
    axes[-1, 0].set_xlabel("minutes since the first metric")
    fig.suptitle(f"system metrics of run {run.label}")
    return _save(fig, path)


def _compact(value: float, position: int | None = None) -> str:
    """Tick labels without matplotlib's detached ``1e-6`` offset: ``5.5e-06``, ``0.03``."""
    return f"{value:.3g}"


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the whole job ---------------------------------------------------------------------------

def plot_experiment(tracking_uri: str, experiment: str, out_dir: str | Path,
                    run_ids: Sequence[str] = (), patterns: Sequence[str] = (),
                    per_run: bool | None = None) -> PlotResult:
    """Write ``metrics/<key>.png`` (each metric across runs), ``runs/<run>.png`` (each run's
    metrics) and ``system/<run>.png`` (system panels) under ``out_dir``.

    ``per_run=None`` draws per-run figures for up to :data:`PER_RUN_MAX` runs only."""
    out = Path(out_dir)
    name, runs = read_runs(tracking_uri, experiment, run_ids, patterns)
    keys = sorted({k for r in runs for k in r.series})
    user_keys = [k for k in keys if not k.startswith(SYSTEM_PREFIX)]
    files = [plot_metric_across_runs(k, runs, out / "metrics" / f"{safe_name(k)}.png", name)
             for k in user_keys]
    notes: list[str] = []
    draw_runs = per_run if per_run is not None else len(runs) <= PER_RUN_MAX
    if not draw_runs:
        notes.append(f"per-run figures skipped for {len(runs)} runs; add --per-run or "
                     "choose runs with --run")
    for run in runs if draw_runs else ():
        stem = safe_name(f"{run.name}-{run.run_id[:8]}")
        own = [k for k in user_keys if k in run.series]
        if own:
            files.append(plot_run(run, own, out / "runs" / f"{stem}.png"))
        system = plot_system(run, out / "system" / f"{stem}.png")
        if system is not None:
            files.append(system)
    if not files:
        raise ReaderError(f"experiment {name!r}: its runs logged no metrics to plot")
    return PlotResult(files, len(runs), keys, notes)
