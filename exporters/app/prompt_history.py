"""A prompt's history, for ``/prov/prompts/<name>`` and its twin ``/prov/api/prompts/<name>``.

Why from the journal and the lineage, not MLflow's rows: MLflow keeps a prompt's present
(its versions, where each alias points now, its tags now); the journal's ``prompt:<name>``
chain keeps every change with who made it and when (an alias moved from version 1 to 2, a
tag's old value), and the lineage tables (:mod:`mlflow_prov.lineage_edges`) hold, through an
index, the runs, traces and logged models each version was linked to. A deleted prompt keeps
its history here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from exporters.app.views import (
    RunDirectory,
    mlflow_model_href,
    mlflow_trace_href,
)
from exporters.lineage.keys import prompt_key
from exporters.privacy import Pseudonymizer
from exporters.wording import writer_text
from mlflow_prov.journal import JournalEvent, read_events_paged
from mlflow_prov.lineage_edges import LineageReader
from mlflow_prov.vocabulary import EventKind, prompt_chain

CHAIN_PAGE = 1000
USE_ORDER = {"run": 0, "trace": 1, "model": 2}  # how a version's users are listed
TAG_KINDS = {EventKind.PROMPT_TAG_SET, EventKind.PROMPT_TAG_DELETED,
             EventKind.PROMPT_VERSION_TAG_SET, EventKind.PROMPT_VERSION_TAG_DELETED}
ALIAS_KINDS = {EventKind.PROMPT_ALIAS_SET, EventKind.PROMPT_ALIAS_DELETED}


@dataclass(frozen=True)
class Change:
    """When a change was journaled (ISO 8601, UTC) and by whom (as the timeline shows)."""

    seq: int
    time: str
    who: str


@dataclass(frozen=True)
class Use:
    """A run, trace or logged model that used a prompt version, and where to look at it."""

    kind: str
    id: str
    label: str
    href: str
    experiment_id: str | None


@dataclass
class VersionRow:
    """One version: its template by SHA-256 and length, its commit message, who made it."""

    version: int
    created: Change
    template_sha256: str | None
    template_length: int | None
    message: str | None
    deleted: Change | None = None
    aliases: list[str] = field(default_factory=list)  # where the journal says they point now
    used_by: list[Use] = field(default_factory=list)


@dataclass(frozen=True)
class AliasMove:
    """An alias set (``version``; ``old_version`` where it pointed before) or deleted."""

    alias: str
    version: int | None
    old_version: int | None
    change: Change


@dataclass(frozen=True)
class TagChange:
    """A tag of the prompt (``version`` None) or of one version set or deleted."""

    key: str
    version: int | None
    value: Any
    old_value: Any
    deleted: bool
    change: Change


@dataclass
class PromptHistory:
    name: str
    created: Change | None
    deleted: Change | None
    versions: list[VersionRow]
    aliases: list[AliasMove]
    tags: list[TagChange]

    def only_version(self, version: int) -> PromptHistory:
        """The history as it concerns one version: its row, the alias moves to or from it,
        its own tags."""
        return PromptHistory(
            self.name, self.created, self.deleted,
            [v for v in self.versions if v.version == version],
            [a for a in self.aliases if version in (a.version, a.old_version)],
            [t for t in self.tags if t.version == version])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def chain_events(tracking_uri: str, name: str) -> Iterator[JournalEvent]:
    """Every event of the prompt's chain, a page at a time (one indexed query a page)."""
    return read_events_paged(tracking_uri, chain=prompt_chain(name), page_size=CHAIN_PAGE)


def _change(event: JournalEvent, pseudonymize: Pseudonymizer) -> Change:
    return Change(event.seq, event.time.isoformat(),
                  writer_text(pseudonymize.writer(event.writer)))


def fold_history(name: str, events: Iterator[JournalEvent],
                 pseudonymize: Pseudonymizer) -> PromptHistory | None:
    """The chain's events folded into versions, alias moves and tag changes (None: the
    journal holds nothing of this prompt)."""
    history = PromptHistory(name, None, None, [], [], [])
    versions: dict[int, VersionRow] = {}
    aliases: dict[str, int] = {}
    for event in events:
        change, payload = _change(event, pseudonymize), event.payload
        if event.kind == EventKind.PROMPT_CREATED:
            history.created = change
        elif event.kind == EventKind.PROMPT_DELETED:
            history.deleted = change
        elif event.kind == EventKind.PROMPT_VERSION_CREATED and payload.get("version"):
            template = payload.get("template") or {}
            versions[int(payload["version"])] = VersionRow(
                int(payload["version"]), change, template.get("sha256"),
                template.get("length"), payload.get("description"))
        elif event.kind == EventKind.PROMPT_VERSION_DELETED:
            found = versions.get(int(payload.get("version") or 0))
            if found is not None:
                found.deleted = change
        elif event.kind in ALIAS_KINDS:
            _alias(history, aliases, payload, change)
        elif event.kind in TAG_KINDS:
            history.tags.append(TagChange(
                str(payload.get("key")), payload.get("version"), payload.get("value"),
                payload.get("old_value"), str(event.kind).endswith("deleted"), change))
    if history.created is None and not versions:
        return None
    for alias, version in sorted(aliases.items()):
        if version in versions:
            versions[version].aliases.append(alias)
    history.versions = [versions[v] for v in sorted(versions)]
    return history


def _alias(history: PromptHistory, aliases: dict[str, int], payload: dict[str, Any],
           change: Change) -> None:
    alias = str(payload.get("alias"))
    version = payload.get("version")
    history.aliases.append(AliasMove(alias, version, payload.get("old_version"), change))
    if version is None:
        aliases.pop(alias, None)
    else:
        aliases[alias] = int(version)


def add_uses(history: PromptHistory, reader: LineageReader, runs: RunDirectory,
             can_read: Callable[[str | None], bool]) -> None:
    """Each version's runs, traces and logged models (the lineage's ``used`` and
    ``wasDerivedFrom`` edges into it), those of experiments the reader may read only."""
    by_node = {prompt_key(history.name, v.version).id: v for v in history.versions}
    edges = [e for e in reader.edges(list(by_node), "derived")
             if e.relation in ("used", "wasDerivedFrom") and e.target in by_node]
    nodes = reader.nodes([e.source for e in edges])
    runs.prefetch((n.node.partition(":")[2] for n in nodes.values() if n.kind == "run"),
                  {n.experiment_id for n in nodes.values() if n.experiment_id})
    for edge in edges:
        node = nodes.get(edge.source)
        if node is None or not can_read(node.experiment_id):
            continue
        use = _use(node.kind, edge.source.partition(":")[2], node.label, node.experiment_id,
                   runs)
        if use is not None and use not in by_node[edge.target].used_by:
            by_node[edge.target].used_by.append(use)
    for version in history.versions:
        version.used_by.sort(key=lambda u: (USE_ORDER.get(u.kind, 9), u.label, u.id))


def _use(kind: str, ref: str, label: str, experiment_id: str | None,
         runs: RunDirectory) -> Use | None:
    if kind == "run":
        run = runs.get(ref)
        return None if run is None else Use("run", ref, run.name, f"/prov/runs/{ref}",
                                             run.experiment_id)
    if kind == "trace":
        return Use("trace", ref, label, mlflow_trace_href(experiment_id or "", ref),
                   experiment_id)
    if kind == "model":
        return Use("model", ref, label, mlflow_model_href(experiment_id or "", ref),
                   experiment_id)
    return None
