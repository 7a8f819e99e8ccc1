"""``/prov/`` pages: experiments, an experiment's lineage, a run's audit timeline.

Server-rendered with Jinja (no CDN, no network at run time); the lineage graph is the
interactive viewer's fragment (:func:`exporters.viewer.html.render_fragment`), next to a plain
table of the same edges for readers and tests that do not run scripts. Every page shows one
page of its list and links to the next: an experiment of 1,000 runs or a run of 100,000
events never loads whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, render_template, request
from markupsafe import Markup
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException

from exporters.app.api import (
    ForbiddenError,
    NotFoundError,
    readable_events,
    require_read,
    run_experiment,
)
from exporters.app.history import (
    BadRequestError,
    EventFilters,
    changes,
    encode_token,
    events_page,
    parse_filters,
    writer_summary,
)
from exporters.app.lineage import build_index
from exporters.app.setup import prov_server
from exporters.app.views import (
    experiment_graph,
    mlflow_experiment_href,
    mlflow_run_href,
    run_links,
)
from exporters.privacy import redact
from exporters.viewer.html import render_fragment
from mlflow_prov.journal import JournalUnavailableError
from mlflow_prov.vocabulary import CARBON_PREFIXES, CARBON_SEGMENT, EventKind

pages = Blueprint("prov_pages", __name__, url_prefix="/prov", template_folder="templates")
EXPERIMENTS_PER_PAGE = 100
RUNS_PER_PAGE = 100
EVENTS_PER_PAGE = 100


@pages.app_template_filter("redacted")
def redacted(value: Any) -> Any:
    """A name or value as every output shows it (:func:`exporters.privacy.redact`): the
    templates pass MLflow's experiment and run names through this."""
    return redact(value)


@pages.app_template_filter("ms_time")
def ms_time(value: int | None) -> str:
    """MLflow's epoch milliseconds as a UTC time a reader scans easily."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _page_size(default: int, largest: int = 1000) -> int:
    value = request.args.get("page_size", str(default))
    if not value.isdigit() or not 1 <= int(value) <= largest:
        abort(400, f"page_size={value!r}: use a whole number from 1 to {largest}")
    return int(value)


def _token_text(token: str | bytes | None) -> str | None:
    """MLflow's SQL stores hand out page tokens as bytes; a link needs text."""
    return token.decode("ascii") if isinstance(token, bytes) else token


def _refusal(exc: Exception) -> None:
    """The page's HTTP error for a refused or unknown thing (the message names it)."""
    if isinstance(exc, ForbiddenError):
        abort(403, str(exc))
    if isinstance(exc, NotFoundError):
        abort(404, str(exc))
    if isinstance(exc, JournalUnavailableError):
        abort(404, f"this server's store has no provenance journal: {exc}")
    abort(400, str(exc))


@pages.get("/")
def experiments() -> str:
    """Every experiment the reader may read, a page at a time."""
    server = prov_server()
    page = server.client.search_experiments(view_type=ViewType.ALL,
                                            max_results=_page_size(EXPERIMENTS_PER_PAGE),
                                            page_token=request.args.get("page_token") or None)
    shown = [e for e in page if server.permissions.can_read(e.experiment_id)]
    return render_template("prov/experiments.html", experiments=shown,
                           next_page_token=_token_text(page.token),
                           mlflow_href=mlflow_experiment_href)


@pages.get("/experiments/<experiment_id>")
def experiment_lineage(experiment_id: str) -> str:
    """Datasets → runs → artifacts and models of a page of the experiment's runs, with
    producers and consumers in other experiments and parent/child runs."""
    server = prov_server()
    try:
        require_read(server, experiment_id)
        experiment = server.client.get_experiment(experiment_id)
    except ForbiddenError as exc:
        _refusal(exc)
    except MlflowException:
        abort(404, f"no experiment {experiment_id!r} on this server")
    runs = server.client.search_runs([experiment_id], run_view_type=ViewType.ALL,
                                     max_results=_page_size(RUNS_PER_PAGE),
                                     order_by=["attributes.start_time ASC"],
                                     page_token=request.args.get("page_token") or None)
    try:
        graph = experiment_graph(build_index(server.tracking_uri), list(runs), server.client,
                                 server.permissions, f"Lineage of {experiment.name}")
    except JournalUnavailableError as exc:
        _refusal(exc)
    graph = redact(graph)
    labels = {node.id: node for node in graph.nodes}
    return render_template(
        "prov/experiment.html", experiment=experiment, runs=list(runs),
        next_page_token=_token_text(runs.token), graph=graph, labels=labels, links=run_links(graph),
        viewer=Markup(render_fragment(graph)),  # noqa: S704 (the viewer escapes its data)
        mlflow_href=mlflow_experiment_href(experiment_id), run_href=mlflow_run_href)


def _carbon(run: Run) -> dict[str, float]:
    """The run's energy and emissions metrics (latest values), when the carbon monitor ran."""
    return {key: value for key, value in sorted(run.data.metrics.items())
            if key.startswith(CARBON_PREFIXES) or CARBON_SEGMENT in key.split("/")}


def _timeline_rows(events: list[Any], pseudonymize: Any) -> list[dict[str, Any]]:
    return [{"event": event, "changes": changes(event),
             "writer": redact(writer_summary(pseudonymize.writer(event.writer)))}
            for event in events]


@pages.get("/runs/<run_id>")
def run_timeline(run_id: str) -> str:
    """The run's audit timeline: every event, who wrote it, what it changed; energy and
    emissions. The chain's integrity arrives from ``/prov/api/verify`` once the page shows."""
    server = prov_server()
    try:
        require_read(server, run_experiment(server, run_id))
        filters = parse_filters(request.args)
        filters = EventFilters(run_id=run_id, kinds=filters.kinds, since_us=filters.since_us,
                               until_us=filters.until_us, after_seq=filters.after_seq,
                               limit=_page_size(EVENTS_PER_PAGE))
        page = events_page(server.tracking_uri, filters)
    except (ForbiddenError, NotFoundError, BadRequestError, JournalUnavailableError) as exc:
        _refusal(exc)
    run = server.client.get_run(run_id)
    return render_template(
        "prov/run.html", run=run,
        rows=_timeline_rows(readable_events(server, page.events), server.pseudonymize),
        next_page_token=encode_token(page.next_after_seq),
        carbon=_carbon(run), kinds=[str(k) for k in EventKind if k.startswith("run.")],
        chosen_kinds=filters.kinds,
        mlflow_href=mlflow_run_href(run.info.experiment_id, run_id),
        experiment_href=mlflow_experiment_href(run.info.experiment_id))
