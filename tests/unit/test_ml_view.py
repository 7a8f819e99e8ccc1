"""The ML view from hand-built records: names as labels, tables, groups, bounds, timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from exporters import ExportOptions, export
from exporters.errors import ExportError
from exporters.lineage.prov import ExportLineage
from exporters.records import (
    ArtifactRecord,
    DatasetRecord,
    ExperimentRecord,
    HistoryEvent,
    MetricSummary,
    RunRecord,
)
from exporters.viewer.dot import view_to_dot
from exporters.viewer.html import render_page
from exporters.viewer.ml_view import experiment_view, run_view, timeline
from exporters.viewer.model import ViewGraph, ViewNode
from mlflow_prov.vocabulary import EventKind

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PERCENT_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
WRITER = {"user": "alice", "host": "node-1", "pid": 42}


def experiment() -> ExperimentRecord:
    return ExperimentRecord(experiment_id="1", name="exp", artifact_location="/a",
                            lifecycle_stage="active", tags={}, creation_time=T0,
                            last_update_time=T0, tracking_uri="prov:///s",
                            history_available=True)


def metric(key: str, context: str | None, source: str = "user", last: float = 0.5,
           count: int = 3) -> MetricSummary:
    return MetricSummary(key=key, context=context, source=source, count=count, first_step=0,
                         last_step=count - 1, first_time=T0, last_time=T0, min=0.1, max=0.9,
                         last=last)


def run(run_id: str = "r1", name: str = "train", artifacts: int = 2,
        source: str = "", **extra) -> RunRecord:
    files = tuple(ArtifactRecord(path=f"data/feat ü {n}.csv", size=10, sha256="ab" * 32,
                                 uri=f"file:///art/{run_id}/data/feat%20%C3%BC%20{n}.csv")
                  for n in range(artifacts))
    dataset = DatasetRecord(name="blobs/train", digest="d1", source_type="local",
                            source=source or '{"uri": "/data/blobs.csv"}',
                            schema='{"mlflow_colspec": [{"type": "double", "name": "x1"}]}',
                            context="training")
    return RunRecord(run_id=run_id, name=name, experiment_id="1", status="FINISHED",
                     lifecycle_stage="active", start_time=T0, end_time=T0, user="alice",
                     artifact_uri=f"file:///art/{run_id}", params={"lr": "0.01"},
                     tags={"stage": "final", "mlflow.user": "alice",
                           "mlflow_prov.carbon.country": "DEU"}, datasets=(dataset,),
                     artifacts=files,
                     metrics=(metric("train/loss", "training"), metric("loss", "validation"),
                              metric("system/cpu_utilization_percentage", None, "system")),
                     **extra)


def labels(graph: ViewGraph) -> list[str]:
    def walk(nodes: list[ViewNode]):
        for node in nodes:
            yield node.label
            yield from walk(node.children)
    return list(walk(graph.nodes))


def test_run_view_labels_things_by_name_never_by_encoded_id():
    graph = run_view(run())
    names = labels(graph)
    assert {"train", "blobs/train", "training", "data/feat ü 0.csv", "lr = 0.01",
            "stage = final"} <= set(names)
    assert not [n for n in names if PERCENT_ENCODED.search(n)]
    dot = view_to_dot(graph).to_string()
    assert "data/feat ü 0.csv" in dot and "lr = 0.01" in dot
    assert not PERCENT_ENCODED.search(" ".join(re.findall(r"label=<(.*?)>,", dot)))


def test_tables_and_collapsed_groups():
    graph = run_view(run())
    by_kind = {n.kind: n for n in graph.nodes}
    assert [c.label for c in by_kind["params"].children] == ["lr = 0.01"]
    metrics = [c.label for c in by_kind["metrics"].children]
    assert metrics == ["loss [validation] = 0.5 (last of 3, steps 0–2)",
                       "train/loss = 0.5 (last of 3, steps 0–2)"]
    assert [c.label for c in by_kind["system"].children] == ["cpu_utilization_percentage = 0.5"]
    assert by_kind["system"].attributes["tag mlflow_prov.carbon.country"] == "DEU"
    assert "mlflow_prov.carbon.country" not in by_kind["tags"].attributes
    assert by_kind["agent"].children, "software agents are members of one node"
    assert "stage = final" in [c.label for c in by_kind["tags"].children]
    assert "mlflow.user" not in by_kind["tags"].attributes
    assert by_kind["dataset"].attributes["columns"] == "x1: double"


def test_many_artifacts_fold_into_one_group():
    graph = run_view(run(artifacts=30))
    groups = [n for n in graph.nodes if n.kind == "group"]
    assert len(groups) == 1 and len(groups[0].children) == 30
    assert not [n for n in graph.nodes if n.kind == "artifact"]


def test_experiment_view_links_producer_and_consumer_runs():
    producer = run("p1", "producer")
    consumer = run("c1", "consumer", source='{"uri": "file:///art/p1/data/feat ü 0.csv"}',
                   parent_run_id="p1")
    graph = experiment_view(experiment(), [producer, consumer], max_nodes=100)
    edges = {(e.source, e.target, e.label) for e in graph.edges}
    assert ("run:p1", "artifact:p1/data/feat ü 0.csv", "produced") in edges
    assert ("artifact:p1/data/feat ü 0.csv", "dataset:d1:blobs/train", "source of") in edges
    assert ("dataset:d1:blobs/train", "run:c1", "used (training)") in edges
    assert ("run:p1", "run:c1", "parent of") in edges


def test_big_experiments_stay_bounded_and_say_so():
    runs = [run(f"r{n}", f"run {n}", artifacts=5) for n in range(300)]
    graph = experiment_view(experiment(), runs, max_nodes=200)
    assert len(graph.nodes) <= 200
    assert sum(n.kind == "run" for n in graph.nodes) >= 90, "fold only what exceeds the bound"
    assert "summarised" in graph.title and "--max-nodes 200" in graph.title
    assert sum(len(labels(ViewGraph("", [n], []))) for n in graph.nodes) > 1800


def test_timeline_shows_old_and_new_values_and_merges_metric_batches():
    def event(seq: int, kind: EventKind, payload: dict) -> HistoryEvent:
        return HistoryEvent(seq=seq, time=T0 + timedelta(seconds=seq), kind=kind,
                            payload=payload, writer=WRITER)
    history = [event(1, EventKind.RUN_TAGS_SET, {"tags": {"stage": "draft"}, "old": {}}),
               *(event(2 + n, EventKind.RUN_METRICS_LOGGED,
                       {"keys": ["loss"], "count": 2, "step_min": n, "step_max": n})
                 for n in range(50)),
               event(60, EventKind.RUN_TAGS_SET, {"tags": {"stage": "final"},
                                                  "old": {"stage": "draft"}}),
               event(61, EventKind.RUN_UPDATED, {"old_status": "RUNNING",
                                                 "new_status": "FINISHED"})]
    rows = timeline(history)
    assert [r.get("what") for r in rows] == [
        "stage", "50 events, 1 key (loss): 100 values, steps 0–49", "stage", "status"]
    assert rows[1]["keys"] == [{"key": "loss", "logged": "100 values, steps 0–49",
                                "span": "2026-01-02 03:04:07.000 – 03:04:56.000"}]
    assert rows[1]["span"] == "2026-01-02 03:04:07.000 – 03:04:56.000"
    assert (rows[2]["old"], rows[2]["new"]) == ("draft", "final")
    assert (rows[3]["old"], rows[3]["new"]) == ("RUNNING", "FINISHED")
    assert rows[0]["writer"] == "user=alice host=node-1 pid=42"
    capped = timeline([event(n, EventKind.RUN_TAGS_SET, {"tags": {"k": str(n)}})
                       for n in range(20)], max_rows=5)
    assert len(capped) == 6 and "15 more events" in capped[-1]["what"]


def test_every_page_carries_dagre_as_published_with_its_licence():
    import hashlib
    from importlib import resources

    build = resources.files("exporters.viewer").joinpath("static", "dagre.min.js").read_bytes()
    assert hashlib.sha256(build).hexdigest() == (
        "54a503e346f93ca0bb10abe7999587e037262935687aca45eb4e4b0f64bbb578")  # npm 3.1.3
    page = render_page(ViewGraph("t", [ViewNode("a", "a", "run")], []), "t")
    assert "@dagrejs/dagre 3.1.3 (MIT licence)" in page
    assert "Permission is hereby granted, free of charge" in page
    assert "sourceMappingURL" not in page and "src=" not in page


def test_html_cannot_be_broken_out_of_by_a_label():
    graph = ViewGraph("t", [ViewNode("a", "</script><script>alert(1)</script>", "run")], [])
    page = render_page(graph, "<title>")
    assert "</script><script>alert(1)" not in page
    assert "<title>&lt;title&gt;</title>" in page


def test_timeline_names_what_changed_without_bookkeeping():
    def event(kind: EventKind, payload: dict) -> HistoryEvent:
        return HistoryEvent(seq=1, time=T0, kind=kind, payload=payload, writer=WRITER)
    rows = timeline([
        event(EventKind.RUN_CREATED, {"run_name": "train", "environment": {"python": "3.11"},
                                      "state": {"run": "ab12"}}),
        event(EventKind.RUN_PARAMS_LOGGED, {"params": {"lr": "0.01"}, "state": {"run": "cd"}}),
        event(EventKind.RUN_INPUTS_LOGGED, {"datasets": [{"name": "blobs",
                                                          "context": "training"}],
                                            "models": []}),
        event(EventKind.RUN_TRACES_LINKED, {"trace_ids": ["t1", "t2"], "state": {"run": "x"}}),
    ])
    assert [(r["what"], r.get("new")) for r in rows] == [
        ("run", "train"), ("lr", "0.01"), ("dataset", "blobs (training)"),
        ("trace_ids", '["t1", "t2"]')]
    assert rows[0]["time"] == "2026-01-02 03:04:05.000"


def test_a_runs_own_view_shows_the_run_whose_output_it_used():
    producer = run("p1", "producer")
    consumer = run("c1", "consumer", source='{"uri": "file:///art/p1/data/feat ü 0.csv"}')
    graph = run_view(consumer, ExportLineage.build([producer, consumer]))
    edges = {(e.source, e.target, e.label) for e in graph.edges}
    assert ("run:p1", "artifact:p1/data/feat ü 0.csv", "produced") in edges
    assert ("artifact:p1/data/feat ü 0.csv", "dataset:d1:blobs/train", "source of") in edges
    assert {n.id: n.label for n in graph.nodes}["artifact:p1/data/feat ü 0.csv"] == \
        "data/feat ü 0.csv"


def test_a_wrong_graph_detail_is_refused_before_reading_anything(tmp_path):
    with pytest.raises(ExportError, match="--graph-detail must be one of ml, full, not 'nice'"):
        export("any", tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'none.db'}",
               options=ExportOptions(graph_detail="nice"))
    assert not list(tmp_path.iterdir())
