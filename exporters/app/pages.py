"""``/prov/`` pages: experiments, an experiment's lineage, a run's audit timeline, prompts
and a prompt's history.

Server-rendered with Jinja (no CDN, no network at run time); the lineage graph is the
interactive viewer's fragment (:func:`exporters.viewer.html.render_fragment`), next to a plain
table of the same edges for readers and tests that do not run scripts. Every page shows one
page of its list and links to the next: an experiment of 1,000 runs or a run of 100,000
events never loads whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

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
from exporters.app.history import EventFilters, journal_token, read_journal_token
from exporters.app.openapi import describe
from exporters.app.params import (
    EXPERIMENT,
    KIND,
    MODEL_NAME,
    MODEL_VERSION,
    PAGE_TOKEN,
    RUN,
    SINCE,
    UNTIL,
    BadRequestError,
    Param,
    page_size,
    read,
    shown,
)
from exporters.app.prompt_api import PROMPT_PARAMS, read_prompt_history
from exporters.app.setup import ProvServer, prov_server
from exporters.app.timeline_page import timeline_page
from exporters.app.tokens import PageTokenError
from exporters.app.views import (
    experiment_graph,
    mlflow_artifact_href,
    mlflow_experiment_href,
    mlflow_run_href,
    prompt_page_href,
    run_links,
)
from exporters.lineage.keys import PROMPT, NodeKey, run_key
from exporters.privacy import redact
from exporters.timeline import MetricFold
from exporters.verify_artifacts import recorded_run_files
from exporters.viewer.html import render_fragment
from exporters.wording import changes, fold_summary, key_summary, span_text, writer_summary
from mlflow_prov.journal import JournalEvent, JournalUnavailableError
from mlflow_prov.lineage_edges import open_lineage
from mlflow_prov.seals import read_seal
from mlflow_prov.vocabulary import (
    CARBON_PREFIXES,
    CARBON_SEGMENT,
    LINKED_PROMPTS_TAG,
    EventKind,
    linked_prompts,
    registered_model_chain,
    run_chain,
)

pages = Blueprint("prov_pages", __name__, url_prefix="/prov", template_folder="templates")
EXPERIMENTS_PER_PAGE = 100
RUNS_PER_PAGE = 100
EVENTS_PER_PAGE = 100
PROMPTS_PER_PAGE = 100
EXPERIMENTS_LISTING = "experiments"  # what a page token of MLflow's searches pages
RUNS_LISTING = "runs"  # with the experiment's id
PROMPTS_LISTING = "prompts"


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


def _as_path(param: Param) -> Param:
    return replace(param, where="path", required=True)


EXPERIMENTS_PARAMS = (page_size(EXPERIMENTS_PER_PAGE), PAGE_TOKEN)
EXPERIMENT_PARAMS = (_as_path(EXPERIMENT), page_size(RUNS_PER_PAGE), PAGE_TOKEN)
TIMELINE_PARAMS = (_as_path(RUN), KIND, SINCE, UNTIL, page_size(EVENTS_PER_PAGE), PAGE_TOKEN)
PROMPTS_PARAMS = (page_size(PROMPTS_PER_PAGE), PAGE_TOKEN)


def _arguments(params: tuple[Param, ...], **path: str) -> dict[str, Any]:
    """The page's parameters, or its 400 page naming the one at fault."""
    try:
        return read(params, request.args, path)
    except BadRequestError as exc:
        abort(400, str(exc))


def _mlflow_token(server: ProvServer, listing: str, token: str | None) -> str | None:
    """MLflow's search token inside one of this server's signed page tokens."""
    if token is None:
        return None
    try:
        inner = server.tokens.read(listing, token)
    except PageTokenError as exc:
        abort(400, f"page_token {shown(token)} is not one this server issued ({exc}); "
                   "follow the page's Next link")
    if not isinstance(inner, str):
        abort(400, f"page_token {shown(token)} holds no search position")
    return inner


def _signed(server: ProvServer, listing: str, token: str | bytes | None) -> str | None:
    """MLflow's next-page token (bytes from its SQL stores) signed for the page's link."""
    text = token.decode("ascii") if isinstance(token, bytes) else token
    return server.tokens.issue(listing, text) if text else None


def _search(search: Callable[[], Any]) -> Any:
    """One MLflow search for a page; a token MLflow refuses is a 400 naming it."""
    try:
        return search()
    except MlflowException as exc:
        if exc.error_code != "INVALID_PARAMETER_VALUE":
            raise
        abort(400, f"page_token: MLflow refused the search position ({exc.message})")


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
@describe("/prov/", "Every experiment the reader may read, a page at a time",
          EXPERIMENTS_PARAMS, errors=(400, 401))
def experiments() -> str:
    """Every experiment the reader may read, a page at a time."""
    server = prov_server()
    given = _arguments(EXPERIMENTS_PARAMS)
    page = _search(lambda: server.client.search_experiments(
        view_type=ViewType.ALL, max_results=given["page_size"] or EXPERIMENTS_PER_PAGE,
        page_token=_mlflow_token(server, EXPERIMENTS_LISTING, given["page_token"])))
    shown_experiments = [e for e in page if server.permissions.can_read(e.experiment_id)]
    return render_template("prov/experiments.html", experiments=shown_experiments,
                           next_page_token=_signed(server, EXPERIMENTS_LISTING, page.token),
                           mlflow_href=mlflow_experiment_href)


@pages.get("/experiments/<experiment_id>")
@describe("/prov/experiments/{experiment_id}", "An experiment's lineage: a page of its runs "
          "with their inputs, outputs, producers and consumers", EXPERIMENT_PARAMS)
def experiment_lineage(experiment_id: str) -> str:
    """Datasets → runs → artifacts and models of a page of the experiment's runs, with
    producers and consumers in other experiments and parent/child runs."""
    server = prov_server()
    given = _arguments(EXPERIMENT_PARAMS, experiment_id=experiment_id)
    experiment_id = given["experiment_id"]  # as MLflow writes it: "007" is experiment 7
    try:
        require_read(server, experiment_id)
        experiment = server.client.get_experiment(experiment_id)
    except ForbiddenError as exc:
        _refusal(exc)
    except MlflowException:
        abort(404, f"no experiment {experiment_id!r} on this server")
    listing = f"{RUNS_LISTING}:{experiment_id}"
    runs = _search(lambda: server.client.search_runs(
        [experiment_id], run_view_type=ViewType.ALL,
        max_results=given["page_size"] or RUNS_PER_PAGE, order_by=["attributes.start_time ASC"],
        page_token=_mlflow_token(server, listing, given["page_token"])))
    try:
        graph = experiment_graph(open_lineage(server.tracking_uri), list(runs), server.client,
                                 server.permissions, f"Lineage of {experiment.name}")
    except JournalUnavailableError as exc:
        _refusal(exc)
    graph = redact(graph)
    labels = {node.id: node for node in graph.nodes}
    return render_template(
        "prov/experiment.html", experiment=experiment, runs=list(runs),
        next_page_token=_signed(server, listing, runs.token), graph=graph, labels=labels,
        links=run_links(graph),
        viewer=Markup(render_fragment(graph)),  # noqa: S704 (the viewer escapes its data)
        mlflow_href=mlflow_experiment_href(experiment_id), run_href=mlflow_run_href)


def _carbon(run: Run) -> dict[str, float]:
    """The run's energy and emissions metrics (latest values), when the carbon monitor ran."""
    return {key: value for key, value in sorted(run.data.metrics.items())
            if key.startswith(CARBON_PREFIXES) or CARBON_SEGMENT in key.split("/")}


def _timeline_rows(items: list[JournalEvent | MetricFold],
                   pseudonymize: Any) -> list[dict[str, Any]]:
    """Events with what they changed, folds with their summary and one line per key; each
    with its writer as the server's privacy option wants it."""
    rows = []
    for item in items:
        writer = redact(writer_summary(pseudonymize.writer(item.writer)))
        if isinstance(item, MetricFold):
            item = redact(item)  # the keys are the user's names
            rows.append({"fold": item, "writer": writer, "summary": fold_summary(item),
                         "span": span_text(item.first_us, item.last_us),
                         "keys": [{"key": key.key, "summary": key_summary(key),
                                   "span": span_text(key.first_us, key.last_us)}
                                  for key in item.key_rows()]})
        else:
            rows.append({"event": item, "changes": changes(item), "writer": writer,
                         "prompts": _prompt_links(item)})
    return rows


def _prompt_links(event: JournalEvent) -> list[dict[str, str]]:
    """The prompt versions a run tag event links (``mlflow.linkedPrompts``), each with its
    history page."""
    tags = event.payload.get("tags") if event.kind == EventKind.RUN_TAGS_SET else None
    value = tags.get(LINKED_PROMPTS_TAG) if isinstance(tags, dict) else None
    return redact([{"name": name, "version": str(version),
                    "href": prompt_page_href(name, version)}
                   for name, version in linked_prompts(value)])


def _readable(server: ProvServer,
              items: list[JournalEvent | MetricFold]) -> list[JournalEvent | MetricFold]:
    """The items the reader may see (:func:`exporters.app.api.readable_events`); folds are
    a run's own metric events."""
    shown = set(map(id, readable_events(server, [i for i in items
                                                 if isinstance(i, JournalEvent)])))
    return [i for i in items if isinstance(i, MetricFold) or id(i) in shown]


@pages.get("/runs/<run_id>")
@describe("/prov/runs/{run_id}", "A run's audit timeline: every event, who wrote it, what it "
          "changed; energy and emissions", TIMELINE_PARAMS)
def run_timeline(run_id: str) -> str:
    """The run's audit timeline: every event, who wrote it, what it changed; energy and
    emissions. The chain's integrity arrives from ``/prov/api/verify`` once the page shows."""
    server = prov_server()
    given = _arguments(TIMELINE_PARAMS, run_id=run_id)
    try:
        require_read(server, run_experiment(server, run_id))
        filters = EventFilters(run_id=run_id, kinds=given["kind"], since_us=given["since"],
                               until_us=given["until"],
                               after_seq=read_journal_token(server.tokens, given["page_token"]),
                               limit=given["page_size"] or EVENTS_PER_PAGE)
        page = timeline_page(server.tracking_uri, run_id, filters)
    except (ForbiddenError, NotFoundError, BadRequestError, JournalUnavailableError) as exc:
        _refusal(exc)
    run = server.client.get_run(run_id)
    return render_template(
        "prov/run.html", run=run,
        rows=_timeline_rows(_readable(server, page.items), server.pseudonymize),
        next_page_token=journal_token(server.tokens, page.next_after_seq),
        carbon=_carbon(run), kinds=[str(k) for k in EventKind if k.startswith("run.")],
        artifacts=recorded_run_files(server.tracking_uri, run_id),
        artifact_href=mlflow_artifact_href,
        seal=shown_seal(server, read_seal(server.tracking_uri, run_chain(run_id))),
        prompts=run_prompts(server, run_id),
        chosen_kinds=filters.kinds,
        mlflow_href=mlflow_run_href(run.info.experiment_id, run_id),
        experiment_href=mlflow_experiment_href(run.info.experiment_id))


def shown_seal(server: ProvServer, seal: dict[str, Any] | None) -> dict[str, Any] | None:
    """A seal as a page's badge shows it: who as the timeline shows writers (pseudonymised
    when the server is), the reason redacted like every value."""
    if seal is None:
        return None
    who = writer_summary(server.pseudonymize.writer(seal.get("who") or {}))
    return redact({"who": " · ".join(who.values()) or "someone", "when": seal.get("when"),
                   "why": seal.get("why"), "target": seal.get("target"),
                   "by": seal.get("by")})


VERSION_PARAMS = (_as_path(MODEL_NAME), _as_path(MODEL_VERSION))


@pages.get("/models/<name>/versions/<version>")
@describe("/prov/models/{name}/versions/{version}", "A registered model version: its stage, "
          "aliases, source run and seal", VERSION_PARAMS)
def model_version(name: str, version: str) -> str:
    """A model version's facts and, when sealed, who sealed it, when and why. Registered
    models belong to no experiment: as in MLflow's search, only readers of every experiment
    see them here."""
    server = prov_server()
    given = _arguments(VERSION_PARAMS, name=name, version=version)
    try:
        require_read(server, None)
        found = server.client.get_model_version(given["name"], str(given["version"]))
    except ForbiddenError as exc:
        _refusal(exc)
    except MlflowException:
        abort(404, f"no version {given['version']} of registered model {given['name']!r} "
                   "on this server")
    seal = read_seal(server.tracking_uri, registered_model_chain(given["name"]),
                     given["version"])
    return render_template("prov/model_version.html", version=found,
                           seal=shown_seal(server, seal))


def run_prompts(server: ProvServer, run_id: str) -> list[dict[str, str]]:
    """The prompt versions the run used (the lineage's ``used`` edges from it), each with a
    link to its history page."""
    reader = open_lineage(server.tracking_uri)
    used = [NodeKey.parse(e.target) for e in reader.edges([run_key(run_id).id], "origins")
            if e.relation == "used" and e.target.startswith(f"{PROMPT}:")]
    found = []
    for key in sorted(dict.fromkeys(used)):
        name, _, version = key.ref.rpartition("/")
        found.append({"name": name, "version": version, "href": prompt_page_href(name, version)})
    return redact(found)


@pages.get("/prompts")
@describe("/prov/prompts", "Every prompt, a page at a time, each linking to its history",
          PROMPTS_PARAMS)
def prompts() -> str:
    """MLflow's prompts, as its search pages them. Prompts are registry objects: as for
    model versions, only readers of every experiment see them."""
    server = prov_server()
    given = _arguments(PROMPTS_PARAMS)
    try:
        require_read(server, None)
    except ForbiddenError as exc:
        _refusal(exc)
    page = _search(lambda: server.client.search_prompts(
        max_results=given["page_size"] or PROMPTS_PER_PAGE,
        page_token=_mlflow_token(server, PROMPTS_LISTING, given["page_token"])))
    return render_template("prov/prompts.html", prompts=list(page),
                           next_page_token=_signed(server, PROMPTS_LISTING, page.token),
                           history_href=prompt_page_href)


@pages.get("/prompts/<name>")
@describe("/prov/prompts/{name}", "A prompt's history: its versions, aliases over time, tag "
          "changes, and the runs, traces and logged models that used each version",
          PROMPT_PARAMS)
def prompt_history_page(name: str) -> str:
    """Versions in order with who made each and its commit message, every alias move, every
    tag change, and each version's users; ``version`` narrows it to one version."""
    server = prov_server()
    given = _arguments(PROMPT_PARAMS, name=name)
    try:
        history = read_prompt_history(server, given["name"], given["version"])
    except (ForbiddenError, NotFoundError, JournalUnavailableError) as exc:
        _refusal(exc)
    return render_template("prov/prompt.html", history=history, chosen=given["version"],
                           history_href=prompt_page_href,
                           mlflow_href=f"/#/prompts/{quote(given['name'], safe='')}")
