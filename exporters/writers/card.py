"""Workflow cards: ``card.md`` per run and ``experiment.card.md`` per experiment.

A card is the page a person reads before trusting a model: what the run was for, what it
used (datasets with digests, models), how it was configured, what it reached (final and best
metrics), what it made (artifacts with their SHA-256), where it ran (code and environment),
what it cost (energy and CO2), where it sits in the lineage and whether its journal is
intact. yProv4ML writes such a Markdown card per run; this one is built from the same
records as every other format, so it says nothing the PROV document does not, and carries
the same redaction. Markdown as GitHub and the docs site render it: tables, and no markup
from user values: ``<``, Markdown's link, emphasis and code characters, ``|`` and line breaks
in a value are escaped, and descriptions are shown as preformatted text, never interpreted
(a run name cannot become a link or an image, an artifact name cannot end a code span).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from prov.model import ProvDocument

from exporters.layout import CARD, run_dir_name
from exporters.lineage.prov import ExportLineage, dataset_uri
from exporters.options import WriterContext
from exporters.prov_code import command_text, created_sections
from exporters.prov_model import software_versions
from exporters.records import DatasetRecord, ExperimentRecord, MetricSummary, RunRecord

DESCRIPTION_TAG = "mlflow.note.content"
EXPERIMENT_METRIC_COLUMNS = 4
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BREAKS = re.compile(r"\r\n|\r|\n")
# What can start Markdown markup inside a line: links and images ([, ]), emphasis (*, _, ~),
# code spans (`), table cells (|) and the escape itself (\).
_MARKUP = re.compile(r"([\\`*_\[\]|~])")


def cell(value: object) -> str:
    """A value as plain text in a line or table cell: HTML and Markdown markup escaped, line
    breaks and control characters shown instead of breaking the table."""
    text = "" if value is None else str(value)
    text = _MARKUP.sub(r"\\\1", html.escape(text, quote=False))
    text = _BREAKS.sub("<br>", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text) or "—"


def code(value: object) -> str:
    """An identifier or digest in a code span; a value a code span cannot hold whole (a
    backtick would end it, a ``|`` split a table row) is shown as escaped text instead."""
    text = _CONTROL.sub("?", "" if value is None else str(value))
    if not text:
        return "—"
    return cell(text) if "`" in text or "|" in text else f"`{text}`"


def preformatted(text: str) -> list[str]:
    """Free text (a description) as an indented code block: every renderer shows it as it
    was written, and none interprets markup or HTML in it."""
    return [f"    {_CONTROL.sub('?', line)}" for line in _BREAKS.split(text)]


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def duration(run: RunRecord) -> str:
    if not (run.start_time and run.end_time):
        return "—"
    seconds = (run.end_time - run.start_time).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def number(value: float) -> str:
    return f"{value:.6g}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return lines if len(lines) > 2 else []


def section(title: str, body: list[str], empty: str) -> list[str]:
    return ["", f"## {title}", "", *(body or [empty])]


def purpose(run: RunRecord) -> list[str]:
    description = run.tags.get(DESCRIPTION_TAG)
    if not description:
        return [f"No description was logged (MLflow's `{DESCRIPTION_TAG}` tag)."]
    return preformatted(description)


def producing_run(dataset: DatasetRecord, lineage: ExportLineage | None) -> str | None:
    """The run that made a dataset: named by its ``runs:/<run_id>/…`` source, or found by
    the export's lineage by URI or SHA-256, as the PROV document links them."""
    uri = dataset_uri(dataset)
    if uri and uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").partition("/")[0] or None
    origin = lineage.origin_of(dataset) if lineage else None
    return lineage.producer_of(origin) if lineage and origin is not None else None


def upstream_runs(run: RunRecord, lineage: ExportLineage | None) -> list[str]:
    """The runs whose outputs this run used."""
    producers = []
    for dataset in run.datasets:
        producer = producing_run(dataset, lineage)
        if producer and producer != run.run_id:
            producers.append(f"dataset {cell(dataset.name)} was made by run {code(producer)}")
    for model_id in run.input_model_ids:
        model = lineage.models.get(model_id) if lineage else None
        if model and model.source_run_id and model.source_run_id != run.run_id:
            producers.append(f"model {code(model_id)} was logged by run "
                             f"{code(model.source_run_id)}")
    return producers


def inputs(run: RunRecord) -> list[str]:
    rows = table(["dataset", "context", "digest", "source"],
                 ([cell(d.name), cell(d.context), code(d.digest),
                   cell(dataset_uri(d) or d.source)]
                  for d in run.datasets))
    models = [f"- model {code(model_id)}" for model_id in run.input_model_ids]
    return rows + ([""] if rows and models else []) + models


def parameters(run: RunRecord) -> list[str]:
    return table(["parameter", "value"],
                 ([code(key), cell(value)] for key, value in sorted(run.params.items())))


def metric_row(summary: MetricSummary) -> list[str]:
    steps = (str(summary.first_step) if summary.first_step == summary.last_step
             else f"{summary.first_step}–{summary.last_step}")
    return [code(summary.key), cell(summary.context), str(summary.count), steps,
            number(summary.last), number(summary.min), number(summary.max)]


def metrics(run: RunRecord) -> list[str]:
    user = sorted((m for m in run.metrics if m.source == "user"),
                  key=lambda m: (m.key, m.context or ""))
    rows = table(["metric", "context", "points", "steps", "final", "min", "max"],
                 (metric_row(m) for m in user))
    system = sum(1 for m in run.metrics if m.source == "system")
    note = ["", f"{system} system metric series (`system/…`) are in the metric files."]
    return rows + (note if system else [])


def artifacts(run: RunRecord) -> list[str]:
    rows = []
    for artifact in sorted(run.artifacts, key=lambda a: a.path):
        size = "—" if artifact.size is None else f"{artifact.size:,} B"
        digest = code(artifact.sha256) if artifact.sha256 else cell(artifact.skipped)
        rows.append([code(artifact.path), size, digest])
    return table(["artifact", "size", "SHA-256"], rows)


def outputs(run: RunRecord) -> list[str]:
    lines = [f"- logged model {cell(m.name)} {code(m.model_id)}, {cell(m.status)}"
             for m in run.logged_models]
    lines += [f"- registered model {cell(v.name)} version {v.version}"
              + (f" (aliases: {', '.join(cell(a) for a in v.aliases)})" if v.aliases else "")
              for v in run.model_versions]
    return lines


def environment(run: RunRecord) -> list[str]:
    code_rows = [("source", cell(run.source_name)), ("entry point", cell(run.entry_point)),
                 ("git commit", code(run.git_commit)),
                 ("git repository", cell(run.git_repo_url))]
    code_rows += recorded_code_rows(run)
    versions, where = software_versions(run)
    recorded = ("recorded when the run was logged" if where == "logging"
                else "not recorded with the run: these are the exporting machine's")
    software = [(cell(name), code(version)) for name, version in versions]
    return (table(["code", "value"], [list(row) for row in code_rows if row[1] != "—"])
            + ["", f"Software ({recorded}):", ""]
            + table(["software", "version"], [list(row) for row in software]))


def recorded_code_rows(run: RunRecord) -> list[tuple[str, str]]:
    """What the journal recorded at the run's creation (``exporters/prov_code.py``): branch,
    working tree, command line, the installed distributions' digest."""
    code_section, _ = created_sections(run)
    git = code_section.get("git") or {}
    tree = None
    if git.get("dirty") is not None:
        tree = ("uncommitted changes, diff SHA-256 " + code(git.get("diff_sha256"))
                if git["dirty"] else "clean")
    distributions = code_section.get("distributions") or {}
    return [("git branch", cell(git.get("branch"))), ("working tree", tree or "—"),
            ("command", code(command_text(code_section))),
            ("distributions SHA-256", code(distributions.get("sha256")))]


def energy(run: RunRecord) -> list[str]:
    carbon = sorted((m for m in run.metrics if m.source == "carbon"), key=lambda m: m.key)
    return table(["measure", "final"], ([code(m.key), number(m.last)] for m in carbon))


def lineage_lines(run: RunRecord, lineage: ExportLineage | None) -> list[str]:
    lines = [f"- child of run {code(run.parent_run_id)}"] if run.parent_run_id else []
    return lines + [f"- {line}" for line in upstream_runs(run, lineage)]


def integrity(run: RunRecord) -> list[str]:
    if run.journal_intact is None:
        return ["No provenance journal: the run was read from a store that keeps none, so "
                "nothing here is proven beyond what MLflow holds."]
    if not run.journal_intact:
        return ["**The journal does not match MLflow's rows or its own hashes.** "
                f"Run `mlflow-prov verify --run {run.run_id}` to see what changed."]
    scope = ("every metric row was rehashed" if run.metric_rows_rehashed
             else "metric series were checked by their counts and change marks; "
                  "`mlflow-prov verify` rehashes every row")
    head = f" Journal head: {code(run.journal_head)}." if run.journal_head else ""
    return [f"The journal's hash chain is intact and agrees with MLflow's rows ({scope})."
            + head]


def run_card(run: RunRecord, lineage: ExportLineage | None = None) -> str:
    """The run's card as Markdown."""
    lines = [f"# Run {cell(run.name or run.run_id)}", "",
             f"Run {code(run.run_id)} of experiment {code(run.experiment_id)}: "
             f"{cell(run.status)}, started {when(run.start_time)}, took {duration(run)}, "
             f"by {cell(run.user)}."]
    lines += section("Purpose", purpose(run), "")
    lines += section("Inputs", inputs(run), "No datasets or models were logged as inputs.")
    lines += section("Parameters", parameters(run), "No parameters were logged.")
    lines += section("Metrics", metrics(run), "No metrics were logged.")
    lines += section("Artifacts", artifacts(run), "No artifact files.")
    lines += section("Outputs", outputs(run), "No logged or registered models.")
    lines += section("Environment and code", environment(run), "")
    lines += section("Energy and CO2", energy(run), "Not measured (no `carbon/` metrics).")
    lines += section("Lineage", lineage_lines(run, lineage),
                     "No parent run and no inputs made by other exported runs.")
    lines += section("Integrity", integrity(run), "")
    return "\n".join(lines) + "\n"


def verdict(run: RunRecord) -> str:
    return {None: "no journal", True: "intact", False: "**broken**"}[run.journal_intact]


def experiment_card(experiment: ExperimentRecord, runs: Sequence[RunRecord]) -> str:
    """The experiment's card: one row per run, linking to the run's own card."""
    counts: dict[str, int] = {}
    for run in runs:
        for key in {m.key for m in run.metrics if m.source == "user"}:
            counts[key] = counts.get(key, 0) + 1
    keys = sorted(counts, key=lambda k: (-counts[k], k))[:EXPERIMENT_METRIC_COLUMNS]
    rows = []
    for run in runs:
        final = {m.key: number(m.last) for m in run.metrics if m.source == "user"}
        link = f"[{cell(run.name or run.run_id)}]({run_dir_name(run.run_id)}/{CARD[0]})"
        rows.append([link, code(run.run_id[:12]), cell(run.status), when(run.start_time),
                     duration(run), *(final.get(key, "—") for key in keys), verdict(run)])
    description = experiment.tags.get(DESCRIPTION_TAG)
    lines = [f"# Experiment {cell(experiment.name)}", "",
             f"Experiment {code(experiment.experiment_id)}, {len(runs)} run(s) exported."]
    if description:
        lines += ["", *preformatted(description)]
    lines += section("Runs", table(["run", "id", "status", "started", "took",
                                    *(code(k) for k in keys), "journal"], rows),
                     "No runs were exported.")
    return "\n".join(lines) + "\n"


class CardWriter:
    """Markdown workflow cards (``--format card``)."""

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        return [_write(run_dir / CARD[0], run_card(run, ctx.lineage))]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        return [_write(exp_dir / CARD[1], experiment_card(experiment, runs))]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
