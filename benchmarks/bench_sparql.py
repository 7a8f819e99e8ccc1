"""The named questions of ``mlflow-prov query`` on pyoxigraph and on rdflib, over the same
PROV-O: why ``exporters/sparql.py`` embeds oxigraph.

A prov store holds a chain of RUNS runs, each using the previous run's artifact as its
training dataset (``runs:/…`` source) and logging params, metrics and tags; the graph is
built once as ``mlflow-prov query`` builds it (:func:`exporters.sparql_graph.graph_of_store`)
and loaded into both engines. Rounds alternate between the engines; medians and ranges are
printed per question. Run: ``python benchmarks/bench_sparql.py [--runs 40] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import rdflib
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from pyoxigraph import DefaultGraph, RdfFormat

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's code, and the templates

from store_templates import prov_store  # noqa: E402

import mlflow_prov  # noqa: E402
from exporters.sparql import PREFIXES, run_query  # noqa: E402
from exporters.sparql_graph import graph_of_store  # noqa: E402
from exporters.sparql_questions import QUESTIONS  # noqa: E402


def build(uri: str, runs: int) -> list[str]:
    """The chain of runs; returns their ids, oldest first."""
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    mlflow.set_experiment("chain")
    ids: list[str] = []
    for n in range(runs):
        with mlflow.start_run(run_name=f"step-{n}") as run:
            if ids:
                mlflow_prov.log_run_artifact_as_dataset(f"runs:/{ids[-1]}/data/part.csv",
                                                        context="training")
            mlflow.log_text(f"x\n{n}\n", "data/part.csv")
            client.log_batch(run.info.run_id,
                             metrics=[Metric(f"m{k}", k * n, 0, 0) for k in range(5)],
                             params=[Param(f"p{k}", str(k)) for k in range(5)],
                             tags=[RunTag("phase", f"step-{n}")])
        ids.append(run.info.run_id)
    return ids


def timed(ask, query: str) -> float:
    start = time.perf_counter()
    ask(query)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = prov_store(Path(tmp) / "store")
        ids = build(uri, args.runs)
        store = graph_of_store(uri)
    triples = store.dump(format=RdfFormat.N_TRIPLES, from_graph=DefaultGraph())
    graph = rdflib.Graph().parse(data=triples, format="nt")
    queries = {"derived-from": QUESTIONS["derived-from"].bound(ids[0]),
               "what-used": QUESTIONS["what-used"].bound(f"runs:/{ids[0]}/data/part.csv"),
               "who-changed": QUESTIONS["who-changed"].bound("phase")}
    engines = {"pyoxigraph": lambda q: list(run_query(store, q)),
               "rdflib": lambda q: list(graph.query(q, initNs=PREFIXES))}
    answers = {name: {e: len(ask(q)) for e, ask in engines.items()}
               for name, q in queries.items()}
    print(f"{len(store)} triples, {args.runs} runs; rows per engine: {answers}")
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, query in queries.items():
            for engine, ask in engines.items():
                times.setdefault((name, engine), []).append(timed(ask, query))
    for (name, engine), values in times.items():
        print(f"{name:13} {engine:10} median {statistics.median(values) * 1000:9.1f} ms "
              f"(range {min(values) * 1000:.1f}-{max(values) * 1000:.1f})")


if __name__ == "__main__":
    main()
