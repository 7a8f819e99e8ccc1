"""Typed lineage node keys, with the one id spelling every output uses.

The spelling is capture's (:func:`mlflow_prov.lineage_edges.node_id`): ``run:<run_id>``,
``dataset:<digest>``, ``artifact:<run_id>/<path>``, ``model:<model_id>``,
``version:<name>/<version>``, ``prompt:<name>/<version>``, ``trace:<trace_id>``. The CLI's
JSON, ``/prov/api/lineage``, the pages and the PROV renderer's look-ups all name a node this
way, so their answers compare one to one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_prov.lineage_edges import node_id

RUN, DATASET, ARTIFACT, MODEL, VERSION = "run", "dataset", "artifact", "model", "version"
PROMPT, TRACE = "prompt", "trace"
KINDS = (RUN, DATASET, ARTIFACT, MODEL, VERSION, PROMPT, TRACE)


@dataclass(frozen=True, order=True)
class NodeKey:
    """One lineage node: its kind and its reference inside MLflow."""

    kind: str
    ref: str

    @property
    def id(self) -> str:
        return node_id(self.kind, self.ref)

    @classmethod
    def parse(cls, text: str) -> NodeKey:
        kind, _, ref = text.partition(":")
        return cls(kind, ref)

    @property
    def run_id(self) -> str | None:
        """The run a run or artifact node belongs to."""
        if self.kind == RUN:
            return self.ref
        if self.kind == ARTIFACT:
            return self.ref.partition("/")[0]
        return None

    @property
    def path(self) -> str | None:
        """An artifact's path inside its run."""
        return self.ref.partition("/")[2] if self.kind == ARTIFACT else None


def run_key(run_id: str) -> NodeKey:
    return NodeKey(RUN, run_id)


def dataset_key(digest: str) -> NodeKey:
    return NodeKey(DATASET, digest)


def artifact_key(run_id: str, path: str) -> NodeKey:
    return NodeKey(ARTIFACT, f"{run_id}/{path.strip('/')}")


def model_key(model_id: str) -> NodeKey:
    return NodeKey(MODEL, model_id)


def version_key(name: str, version: int | str) -> NodeKey:
    return NodeKey(VERSION, f"{name}/{version}")


def prompt_key(name: str, version: int | str) -> NodeKey:
    return NodeKey(PROMPT, f"{name}/{version}")


def trace_key(trace_id: str) -> NodeKey:
    return NodeKey(TRACE, trace_id)
