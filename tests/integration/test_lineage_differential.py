"""One lineage: the same questions asked of ``mlflow-prov lineage``, ``/prov/api/lineage`` on
a real ``mlflow server --app-name prov``, the ``/prov/`` experiment pages and the exported
PROV documents of one store give the same nodes and edges, the dataset tied to its producer
only by its SHA-256 digest included (``lineage_scenario.py``), and the GenAI links: the
prompt versions a run and a logged model used, the traces a run recorded and the model they
used (``genai_scenario.py``, in the same store).

Every answer is reduced to ``(derived, relation, origin)`` triples over the lineage's node
ids: the API and pages draw producer -> consumer arrows with words, which map back to one
relation each; a PROV document holds more than lineage (params, metrics, contexts, and the
shortcuts ``add_lineage`` derives), which the projection below leaves out by rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import mlflow
import pytest
import requests
from click.testing import CliRunner
from genai_scenario import genai_store
from genai_scenario import write as write_genai
from lineage_scenario import write
from store_templates import prov_store
from test_server import _serve

from exporters.cli import main

DEPTH = 3
REPORT = "reports/summary.txt"
TIMEOUT = 60
Triple = tuple[str, str, str]
RELATION_OF_WORDS = {"produced": "wasGeneratedBy", "logged": "wasGeneratedBy",
                     "registered": "wasGeneratedBy", "source of": "wasDerivedFrom",
                     "parent of": "wasInformedBy", "revised by": "wasRevisionOf",
                     "recorded": "wasInformedBy"}
EXPORTED = {"features": 1, "training": 3, "scoring": 1, "genai": 3}  # runs per experiment
EXPERIMENTS = tuple(EXPORTED)


@dataclass(frozen=True)
class Answer:
    nodes: frozenset[str]
    edges: frozenset[Triple]


@dataclass
class Served:
    uri: str
    ids: dict[str, str]
    base: str
    prov_edges: frozenset[Triple]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("one-lineage")
    uri = prov_store(folder / "store")
    try:
        ids = write(uri)
        ids["reporter"] = _report(ids)
    finally:
        mlflow.set_tracking_uri(None)
    with genai_store(uri, folder):
        ids |= {f"genai_{role}": value for role, value in write_genai().items()}
    prov_edges = _exported_lineage(uri, ids, folder / "export")
    for base in _serve(["server", "--app-name", "prov", "--backend-store-uri", uri,
                        "--workers", "1"], folder):
        yield Served(uri, ids, base, prov_edges)


def _report(ids: dict[str, str]) -> str:
    """A child of train-model that writes a file no run uses: in the lineage as soon as its
    run-end manifest records it."""
    with mlflow.start_run(run_name="report", experiment_id=ids["training"],
                          tags={"mlflow.parentRunId": ids["consumer"]}) as run:
        mlflow.log_text("accuracy 0.9\n", REPORT)
    return run.info.run_id


# --- the four surfaces --------------------------------------------------------------------

def cli_answer(served: Served, node: str) -> Answer:
    result = CliRunner().invoke(main, ["lineage", "--tracking-uri", served.uri, "--json",
                                       "--depth", str(DEPTH), node])
    assert result.exit_code == 0, result.output
    nodes: set[str] = set()
    edges: set[Triple] = set()
    for direction, tree in json.loads(result.output).items():
        stack = [tree]
        while stack:
            parent = stack.pop()
            nodes.add(parent["id"])
            for child in parent["children"]:
                pair = ((parent["id"], child["id"]) if direction == "upstream"
                        else (child["id"], parent["id"]))
                edges.add((pair[0], child["relation"], pair[1]))
                stack.append(child)
    return Answer(frozenset(nodes), frozenset(edges))


def view_answer(graph: dict) -> Answer:
    """Nodes and edges of a view graph (API or page): arrows point producer -> consumer."""
    edges = {(e["target"], _relation(e["label"]), e["source"]) for e in graph["edges"]}
    return Answer(frozenset(n["id"] for n in graph["nodes"]), frozenset(edges))


def _relation(words: str) -> str:
    return "used" if words.startswith("used") else RELATION_OF_WORDS[words]


def api_answer(served: Served, **params: str) -> Answer:
    answer = requests.get(f"{served.base}/prov/api/lineage", params=params, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return view_answer(answer.json())


def page_answer(served: Served, experiment_id: str) -> Answer:
    page = requests.get(f"{served.base}/prov/experiments/{experiment_id}",
                        params={"page_size": 100}, timeout=TIMEOUT)
    assert page.status_code == 200, page.text
    data = re.search(r'<script type="application/json" class="mv-data">(.*?)</script>',
                     page.text, re.S)
    assert data is not None, "the page embeds its graph"
    return view_answer(json.loads(data[1]))


def _exported_lineage(uri: str, ids: dict[str, str], out: Path) -> frozenset[Triple]:
    """The lineage statements of every exported run's PROV-JSON document."""
    for experiment in EXPERIMENTS:
        result = CliRunner().invoke(main, ["export", "--tracking-uri", uri, "--experiment",
                                           experiment, "--format", "prov-json",
                                           "--out", str(out / experiment)])
        assert result.exit_code == 0, result.output
    documents = [json.loads(p.read_text()) for p in sorted(out.rglob("run-*/prov.json"))]
    assert len(documents) == sum(EXPORTED.values())
    return frozenset(prov_lineage(documents))


def prov_answer(served: Served, start: str) -> Answer:
    """The same bounded walk as every surface, over the exported PROV's lineage."""
    edges: set[Triple] = set()
    for near, far in ((0, 2), (2, 0)):  # upstream: derived -> origin; downstream: back
        frontier, seen = {start}, {start}
        for _ in range(DEPTH):
            step = {e for e in served.prov_edges if e[near] in frontier}
            edges |= step
            frontier = {e[far] for e in step} - seen
            seen |= frontier
    nodes = {start} | {e[0] for e in edges} | {e[2] for e in edges}
    return Answer(frozenset(nodes), frozenset(edges))


# --- PROV -> lineage triples --------------------------------------------------------------

def _text(value: object) -> str:
    return str(value.get("$")) if isinstance(value, dict) else str(value)


def _types(statement: dict) -> set[str]:
    found = statement.get("prov:type", [])
    return {_text(t) for t in (found if isinstance(found, list) else [found])}


def prov_lineage(documents: list[dict]) -> set[Triple]:
    """Lineage triples of PROV documents: runs using datasets and models, datasets and
    versions derived from artifacts and models, models and artifacts generated by runs (every
    artifact: each is in the lineage from the moment the journal records it), children
    informed by parents, versions revising versions."""
    entities = {k: v for d in documents for k, v in d.get("entity", {}).items()}

    def key(name: str) -> str | None:
        if "mlflowprov:digest" in entities.get(name, {}):
            return f"dataset:{_text(entities[name]['mlflowprov:digest'])}"
        parts = name.removeprefix("mlflow:").split(".")
        if parts[0] == "prompt" and len(parts) == 3:
            return f"prompt:{unquote(parts[1])}/{parts[2]}"
        if parts[0] == "trace" and len(parts) == 2:
            return f"trace:{unquote(parts[1])}"
        if parts[0] == "run" and (len(parts) == 2 or parts[2] == "context"):
            return f"run:{parts[1]}"
        if parts[0] == "run" and parts[2] == "artifact":
            return f"artifact:{parts[1]}/{unquote('.'.join(parts[3:]))}"
        if parts[0] == "model" and len(parts) == 2:
            return f"model:{unquote(parts[1])}"
        return None

    found: set[Triple] = set()
    generated: set[Triple] = set()
    for document in documents:
        for s in document.get("used", {}).values():
            run, used = key(s["prov:activity"]), key(s.get("prov:entity", ""))
            if run and run.split(":")[0] in ("run", "trace") and used and \
                    used.split(":")[0] in ("dataset", "model", "prompt"):
                found.add((run, "used", used))
        for s in document.get("wasDerivedFrom", {}).values():
            derived, origin = key(s["prov:generatedEntity"]), key(s["prov:usedEntity"])
            if not (derived and origin):
                continue
            if "prov:Revision" in _types(s) and derived.startswith("prompt:"):
                found.add((derived, "wasRevisionOf", origin))
            elif "prov:Revision" not in _types(s) and (
                    derived.startswith("dataset:") or origin.startswith("prompt:")):
                found.add((derived, "wasDerivedFrom", origin))
        for s in document.get("wasGeneratedBy", {}).values():
            made, run = key(s["prov:entity"]), key(s.get("prov:activity", ""))
            if made and run and made.split(":")[0] in ("model", "artifact"):
                generated.add((made, "wasGeneratedBy", run))
        for s in document.get("wasInformedBy", {}).values():
            informed = key(s["prov:informed"]) or ""
            if "mlflowprov:ParentRun" in _types(s) or informed.startswith("trace:"):
                found.add((informed, "wasInformedBy", key(s["prov:informant"]) or ""))
    return found | generated


# --- the questions ------------------------------------------------------------------------

# name: what the CLI is given, what the API is given, the node both answers start from
QUESTIONS = {
    "producer run, by a shortened id": (
        lambda i: i["producer"][:8], lambda i: {"run_id": i["producer"]},
        lambda i: f"run:{i['producer']}"),
    "consumer run": (lambda i: i["consumer"], lambda i: {"run_id": i["consumer"]},
                     lambda i: f"run:{i['consumer']}"),
    "child run": (lambda i: i["child"], lambda i: {"run_id": i["child"]},
                  lambda i: f"run:{i['child']}"),
    "logged model": (lambda i: f"models:/{i['model']}", lambda i: {"model_id": i["model"]},
                     lambda i: f"model:{i['model']}"),
    "the dataset, by its sha256": (
        lambda i: f"sha256:{i['digest']}",
        lambda i: {"dataset": f"features-copy.csv@{i['digest']}"},
        lambda i: f"dataset:{i['digest']}"),
    "the run that used the sha256-linked copy": (
        lambda i: i["copy_user"][:12], lambda i: {"run_id": i["copy_user"]},
        lambda i: f"run:{i['copy_user']}"),
    "the producer's artifact": (
        lambda i: f"runs:/{i['producer']}/data/features.csv",
        lambda i: {"artifact": f"{i['producer']}/data/features.csv"},
        lambda i: f"artifact:{i['producer']}/data/features.csv"),
    "an artifact no run used yet": (
        lambda i: f"runs:/{i['reporter']}/{REPORT}",
        lambda i: {"artifact": f"{i['reporter']}/{REPORT}"},
        lambda i: f"artifact:{i['reporter']}/{REPORT}"),
    "the run that wrote it": (lambda i: i["reporter"], lambda i: {"run_id": i["reporter"]},
                              lambda i: f"run:{i['reporter']}"),
    "a run that used a prompt version and recorded a trace": (
        lambda i: i["genai_linked_run"], lambda i: {"run_id": i["genai_linked_run"]},
        lambda i: f"run:{i['genai_linked_run']}"),
    "the logged model derived from prompt versions": (
        lambda i: f"models:/{i['genai_model']}", lambda i: {"model_id": i["genai_model"]},
        lambda i: f"model:{i['genai_model']}"),
    "an evaluation run and its traces": (
        lambda i: i["genai_evaluation_run"], lambda i: {"run_id": i["genai_evaluation_run"]},
        lambda i: f"run:{i['genai_evaluation_run']}"),
}


@pytest.mark.slow
@pytest.mark.parametrize("question", list(QUESTIONS))
def test_cli_api_and_prov_export_give_one_answer(served, question):
    cli_text, api_params, start = (f(served.ids) for f in QUESTIONS[question])
    cli = cli_answer(served, cli_text)
    assert start in cli.nodes and len(cli.edges) >= 2
    assert api_answer(served, **api_params) == cli
    assert api_answer(served, q=cli_text, depth=str(DEPTH)) == cli, "q takes what the CLI takes"
    assert prov_answer(served, start) == cli


@pytest.mark.slow
def test_the_sha256_linked_copy_reaches_its_producer_everywhere(served):
    ids = served.ids
    link = {(f"run:{ids['copy_user']}", "used", f"dataset:{ids['digest']}"),
            (f"dataset:{ids['digest']}", "wasDerivedFrom",
             f"artifact:{ids['producer']}/data/features.csv"),
            (f"artifact:{ids['producer']}/data/features.csv", "wasGeneratedBy",
             f"run:{ids['producer']}")}
    assert link <= cli_answer(served, ids["copy_user"]).edges
    assert link <= served.prov_edges
    assert link <= page_answer(served, ids["scoring"]).edges


@pytest.mark.slow
def test_a_recorded_artifact_is_generated_by_its_run_everywhere(served):
    ids = served.ids
    made = (f"artifact:{ids['reporter']}/{REPORT}", "wasGeneratedBy", f"run:{ids['reporter']}")
    assert made in cli_answer(served, ids["reporter"]).edges
    assert made in api_answer(served, run_id=ids["reporter"]).edges
    assert made in page_answer(served, ids["training"]).edges
    assert made in served.prov_edges


@pytest.mark.slow
def test_each_experiment_page_shows_what_the_api_answers_for_its_runs(served):
    ids = served.ids
    for experiment, runs in (("features", ["producer"]),
                             ("training", ["consumer", "child", "reporter"]),
                             ("scoring", ["copy_user"])):
        answers = [api_answer(served, run_id=ids[run]) for run in runs]
        page = page_answer(served, ids[experiment])
        assert page.edges == frozenset().union(*(a.edges for a in answers)), experiment
        assert page.nodes == frozenset().union(*(a.nodes for a in answers)), experiment


@pytest.mark.slow
def test_prompt_versions_traces_and_models_link_everywhere(served):
    ids = served.ids
    run, model, trace = (f"run:{ids['genai_linked_run']}", f"model:{ids['genai_model']}",
                         f"trace:{ids['genai_run_trace']}")
    links = {(run, "used", "prompt:qa/2"), ("prompt:qa/2", "wasRevisionOf", "prompt:qa/1"),
             (trace, "wasInformedBy", run), (trace, "used", model),
             (model, "wasDerivedFrom", "prompt:qa/1")}
    assert links <= served.prov_edges
    assert links <= cli_answer(served, f"models:/{ids['genai_model']}").edges | \
        cli_answer(served, ids["genai_linked_run"]).edges
    # the page walks from the experiment's runs: the model's own origins are beside them
    beside = (model, "wasDerivedFrom", "prompt:qa/1")
    assert links - {beside} <= page_answer(served, ids["genai_experiment_id"]).edges


def _lineage_error(served: Served, **params: str) -> tuple[int, str]:
    answer = requests.get(f"{served.base}/prov/api/lineage", params=params, timeout=TIMEOUT)
    message = answer.json()["message"]
    assert "\n" not in message and "Traceback" not in message, message
    return answer.status_code, message


@pytest.mark.slow
def test_the_api_refuses_what_the_cli_refuses_in_one_line(served):
    client = mlflow.MlflowClient(served.uri)
    experiment_id = client.get_run(served.ids["producer"]).info.experiment_id
    runs: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in runs.values()):  # two runs with one first digit
        run_id = client.create_run(experiment_id).info.run_id
        runs.setdefault(run_id[0], []).append(run_id)
    prefix, twins = next((p, ids) for p, ids in runs.items() if len(ids) > 1)
    status, message = _lineage_error(served, q=prefix)
    named = re.findall(r"run:([0-9a-f]{32})", message)  # the first two of those it matches
    assert status == 400 and len(named) == 2, message
    assert all(run_id.startswith(prefix) for run_id in named), message
    assert requests.get(f"{served.base}/prov/api/lineage", params={"q": twins[0][:20]},
                        timeout=TIMEOUT).status_code == 200
    status, message = _lineage_error(served, q="f" * 31 + "0")
    assert status == 404 and "is no run id" in message, message
    status, message = _lineage_error(served, q="models:/no-such-model/7")
    assert status == 404 and "no registered model version" in message, message
    status, message = _lineage_error(served, q="runs:/" + served.ids["producer"])
    assert status == 400 and "runs:/<run_id>/<path>" in message, message
    for depth in ("0", "21", "two", "٣"):
        status, message = _lineage_error(served, q=served.ids["producer"], depth=depth)
        assert status == 400 and message.startswith("depth=") and "1 to 20" in message
    status, message = _lineage_error(served, q=served.ids["producer"],
                                     run_id=served.ids["producer"])
    assert status == 400 and "exactly one of q, run_id" in message, message


@pytest.mark.slow
def test_depth_bounds_the_api_walk_as_it_bounds_the_cli(served):
    producer = served.ids["producer"]
    near = api_answer(served, q=producer[:8], depth="1")
    far = api_answer(served, q=producer[:8], depth="3")
    assert near.edges < far.edges
    assert near.edges and all(f"run:{producer}" in (e[0], e[2]) for e in near.edges)
