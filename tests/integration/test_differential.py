"""Differential suite: a prov store is indistinguishable from plain MLflow, plus a journal.

The same scripted session (:mod:`scenario`: experiments, runs, nested/failed/killed/deleted
runs, params, tags, NaN/+-inf metric histories with dataset and model links, datasets with
contexts, LoggedModels loaded back, searches with filters/order/pages, the model registry,
async logging) is played with stock MLflow calls against two pairs of stores:

* ``sqlite:///`` and ``prov:///``;
* ``postgresql://`` and ``prov+postgresql://``, each in a fresh database of its own.

Every observation is compared exactly, after normalising only what two correct stores
legitimately differ in (generated ids, wall-clock times, artifact roots; see
:mod:`scenario`). The prov side must also journal what MLflow forgets, with every hash chain
intact; the plain side must have no journal at all.

Each pair is played once per module (a module-scoped fixture owning its directories and
databases), so that each aspect is its own test without replaying the session.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from scenario import ASYNC_STEPS, EXPERIMENT, MODEL_NAME, RENAMED, SCRATCH, Observed, play
from store_templates import prov_store, sqlite_store

from mlflow_prov.journal import (
    HEADS_TABLE,
    JOURNAL_TABLE,
    JournalEvent,
    JournalUnavailableError,
    read_events,
    verify_chain,
)
from mlflow_prov.vocabulary import STATE_FIELD

# Each pair plays the whole scenario twice (seconds; more on the database server)
pytestmark = pytest.mark.slow
PAIRS = ["sqlite", "postgresql"]
MAX_FLOAT = 1.7976931348623157e308  # what MLflow stores for +inf (and -MAX_FLOAT for -inf)


# --- stores ------------------------------------------------------------------------------------

class _PostgresDatabases:
    """Fresh PostgreSQL databases on demand, all dropped at the end.

    The conftest's ``postgres_database`` and ``prov_postgres_uri`` are one database within a
    test (the latter a copy of a migrated prov template), and a pair needs two that MLflow
    creates itself; they are also function-scoped, while a pair here is played once per
    module.
    """

    def __init__(self, admin_uri: str) -> None:
        self.admin_uri = admin_uri
        self.admin = sa.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def create(self) -> str:
        name = f"mlflow_prov_diff_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        url = sa.engine.make_url(self.admin_uri).set(database=name)
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        from mlflow.store.model_registry.sqlalchemy_store import (
            SqlAlchemyStore as RegistryStore,
        )
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        from mlflow_prov import journal

        caches = (SqlAlchemyStore._engine_map, getattr(RegistryStore, "_engine_map", {}),
                  journal._engines)
        for name in self.names:
            for cache in caches:
                for uri in [uri for uri in cache if str(uri).endswith(f"/{name}")]:
                    cache.pop(uri).dispose()
            with self.admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="module")
def postgres_databases(request: pytest.FixtureRequest) -> Iterator[_PostgresDatabases]:
    databases = _PostgresDatabases(request.getfixturevalue("postgres_available"))
    yield databases
    databases.drop_all()


class Played:
    """One pair's two observations."""

    def __init__(self, pair: str, plain: Observed, prov: Observed) -> None:
        self.pair, self.plain, self.prov = pair, plain, prov

    def events(self) -> list[JournalEvent]:
        return list(read_events(self.prov.uri))


@pytest.fixture(scope="module", params=PAIRS)
def played(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Played:
    pair = request.param
    if pair == "sqlite":
        work = tmp_path_factory.mktemp("diff-sqlite")
        # made in each side's working directory below: copies of migrated empty stores
        stores = {"plain": lambda: sqlite_store(work / "plain.db"),
                  "prov": lambda: prov_store(work / "runs")}
    else:
        work = tmp_path_factory.mktemp("diff-postgresql")
        databases: _PostgresDatabases = request.getfixturevalue("postgres_databases")
        plain_uri, prov_uri = databases.create(), "prov+" + databases.create()
        assert sa.engine.make_url(plain_uri).database != sa.engine.make_url(
            prov_uri[len("prov+"):]).database, "the two PostgreSQL stores share a database"
        stores = {"plain": lambda: plain_uri, "prov": lambda: prov_uri}
    observed = {}
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI",
                         "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
            patch.delenv(variable, raising=False)
        for side, store in stores.items():
            # each side in its own working directory: default artifact roots are relative
            directory = work / side
            directory.mkdir()
            patch.chdir(directory)
            observed[side] = play(store())
    return Played(pair, observed["plain"], observed["prov"])


# --- comparison --------------------------------------------------------------------------------

def differences(plain: Any, prov: Any, path: str = "", limit: int = 12) -> list[str]:
    """Where two observations differ, as readable paths (the first ``limit`` of them)."""
    found: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if key not in b:
                    found.append(f"{where}.{key}: only in plain MLflow ({a[key]!r})")
                elif key not in a:
                    found.append(f"{where}.{key}: only in prov ({b[key]!r})")
                else:
                    walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{index}]")
        elif a != b or type(a) is not type(b):
            found.append(f"{where}: plain MLflow {a!r} != prov {b!r}")

    walk(plain, prov, path)
    return found


def assert_same(played: Played, section: str) -> None:
    plain, prov = played.plain.sections[section], played.prov.sections[section]
    diff = differences(plain, prov, section)
    assert not diff, (f"{played.pair}: prov store diverges from plain MLflow in "
                      f"{section!r}:\n  " + "\n  ".join(diff))


@pytest.mark.parametrize("section", [
    "experiments", "runs", "run_views", "histories", "search", "fluent_search",
    "logged_models", "prediction", "registry", "errors",
])
def test_prov_store_shows_what_plain_mlflow_shows(played: Played, section: str) -> None:
    assert_same(played, section)


def test_scenario_exercises_what_it_claims(played: Played) -> None:
    """Guards the comparison against being vacuous: the plain side shows each feature."""
    seen = played.plain.sections
    runs = seen["runs"]
    assert runs["crashes"]["info"]["status"] == "FAILED"
    assert runs["to-kill"]["info"]["status"] == "KILLED"
    assert "renamed" in runs and "old-name" not in runs
    assert runs["child-a"]["data"]["tags"]["mlflow.parentRunId"] == "<run:parent>"
    assert runs["sweep-4"]["info"]["lifecycle_stage"] == "deleted"
    assert runs["child-b"]["info"]["lifecycle_stage"] == "active"
    assert runs["parent"]["data"]["tags"]["phase"] == "train"
    assert "temporary" not in runs["parent"]["data"]["tags"]
    contexts = [tag["value"] for entry in runs["parent"]["inputs"]["dataset_inputs"]
                for tag in entry["tags"] if tag["key"] == "mlflow.data.context"]
    assert contexts == ["training", "validation"]
    loss = [point["value"] for point in seen["histories"]["parent/loss"]]
    assert "NaN" in loss and MAX_FLOAT in loss and -MAX_FLOAT in loss and len(loss) == 7
    # MLflow keeps metric->dataset/model links on the LoggedModel, not in run histories
    linked = [(p["key"], p["dataset_name"], p["model_id"], p["value"])
              for p in seen["logged_models"]["get"]["pyfunc"]["metrics"] if p["key"] == "val_acc"]
    assert linked == [("val_acc", "toy-val", "<model:pyfunc>", 0.8),
                      ("val_acc", "toy-val", "<model:pyfunc>", -MAX_FLOAT)]
    assert len(seen["histories"]["async/a_loss"]) == ASYNC_STEPS
    assert [len(page) for page in seen["search"]["score asc, paged by 2"]] == [2, 2]
    assert seen["prediction"] == {"x": [2.0, 3.0, 4.0, 5.0]}
    assert seen["registry"]["champion"]["version"] == 2
    assert seen["registry"]["deleted_alias_error"] is not None
    assert [exp["name"] for exp in seen["experiments"]["deleted_while_deleted"]] == [SCRATCH]
    assert seen["experiments"]["run_while_deleted"]["info"]["lifecycle_stage"] == "deleted"
    assert seen["experiments"]["run_after_restore"]["info"]["lifecycle_stage"] == "active"
    assert runs["tag-renamed"]["data"]["tags"]["after"] == "rename"
    rejected = [label for label, outcome in seen["errors"].items() if outcome != "no error"]
    assert len(rejected) >= len(seen["errors"]) - 2, seen["errors"]
    assert seen["experiments"]["old_name"] is None


# --- the journal ------------------------------------------------------------------------------

def _by_chain(events: list[JournalEvent]) -> dict[str, list[JournalEvent]]:
    chains: dict[str, list[JournalEvent]] = defaultdict(list)
    for event in events:
        chains[event.chain].append(event)
    return chains


def _kinds(events: list[JournalEvent]) -> list[str]:
    return [event.kind for event in events]


def test_journal_keeps_what_mlflow_forgets(played: Played) -> None:
    runs = played.prov.run_ids
    chains = _by_chain(played.events())
    run = {name: chains[f"run:{run_id}"] for name, run_id in runs.items()}

    for name, events in run.items():
        assert events and events[0].kind == "run.created", f"{name}: chain starts {events[:1]}"

    parent_tags = [_described(e.payload) for e in run["parent"] if e.kind == "run.tags_set"]
    assert {"tags": {"phase": "train"}, "old": {"phase": "warmup"}} in parent_tags, (
        f"the overwritten tag's earlier value is not journaled: {parent_tags}")
    deleted = [_described(e.payload) for e in run["parent"] if e.kind == "run.tag_deleted"]
    assert deleted == [{"key": "temporary", "old_value": "yes"}]
    params = {k: v for e in run["parent"] if e.kind == "run.params_logged"
              for k, v in e.payload["params"].items()}
    assert params == {"lr": "0.1", "epochs": "3", "optimizer": "sgd"}

    def transitions(name: str) -> list[tuple[str, str]]:
        return [(e.payload["old_status"], e.payload["new_status"])
                for e in run[name] if e.kind == "run.updated"]

    assert transitions("crashes") == [("RUNNING", "FAILED")]
    assert transitions("to-kill") == [("RUNNING", "KILLED")]
    assert transitions("parent") == [("RUNNING", "FINISHED")]
    names = [(e.payload["old_name"], e.payload["new_name"])
             for e in run["renamed"] if e.kind == "run.updated"]
    assert ("old-name", "renamed") in names, f"run rename not journaled: {names}"

    names = [(e.payload["old_name"], e.payload["new_name"])
             for e in run["tag-renamed"] if e.kind == "run.updated"]
    assert names == [("tag-name-0", "tag-name-1"), ("tag-name-1", "tag-renamed")], names

    lifecycle = {"run.deleted", "run.restored"}
    assert [k for k in _kinds(run["child-b"]) if k in lifecycle] == ["run.deleted",
                                                                       "run.restored"]
    # sweep-4 stays deleted; a later write MLflow rejected left no event
    assert _kinds(run["sweep-4"])[-1] == "run.deleted", _kinds(run["sweep-4"])
    assert "0.2" not in str([e.payload for e in run["parent"] if e.kind == "run.params_logged"])

    contexts = [d["context"] for e in run["parent"] if e.kind == "run.inputs_logged"
                for d in e.payload["datasets"]]
    assert contexts == ["training", "validation"]
    links = [e.payload for e in run["parent"]
             if e.kind == "run.metrics_logged" and "val_acc" in e.payload["keys"]]
    assert links and all(p["datasets"][0]["name"] == "toy-val" and
                         p["model_ids"] == [played.prov.model_ids["pyfunc"]] for p in links), links
    # a dataset link without a model: MLflow stores no trace of it, the journal does
    train = [e.payload for e in run["parent"]
             if e.kind == "run.metrics_logged" and e.payload["keys"] == ["train_acc"]]
    digest = {entry["dataset"]["name"]: entry["dataset"]["digest"] for entry in
              played.prov.sections["runs"]["parent"]["inputs"]["dataset_inputs"]}["toy-train"]
    assert [p.get("datasets") for p in train] == [
        [{"name": "toy-train", "digest": digest, "keys": ["train_acc"]}]], train


def test_journal_keeps_experiment_history(played: Played) -> None:
    chains = _by_chain(played.events())
    ids = played.prov.experiment_ids
    experiment = [(e.kind, _described(e.payload)) for e in chains[f"experiment:{ids[RENAMED]}"]]
    assert ("experiment.renamed", {"old_name": EXPERIMENT, "new_name": RENAMED}) in experiment
    assert ("experiment.tag_set", {"key": "team", "value": "nlp", "old_value": "vision"}) \
        in experiment
    assert ("experiment.tag_deleted", {"key": "scratchpad", "old_value": "x"}) in experiment
    scratch = _kinds(chains[f"experiment:{ids[SCRATCH]}"])
    assert scratch == ["experiment.created", "experiment.deleted", "experiment.restored"]


def test_journal_keeps_runs_deleted_with_their_experiment(played: Played) -> None:
    """MLflow deletes and restores every run with its experiment; each run's chain says so."""
    run_id = played.prov.run_ids["scratch-run"]
    events = played.events()
    on_run = [(e.kind, e.payload.get("cause")) for e in events if e.run_id == run_id]
    assert ("run.deleted", "experiment.deleted") in on_run, on_run
    assert ("run.restored", "experiment.restored") in on_run, on_run
    named = {e.kind: e.payload["run_ids"] for e in events
             if e.kind in ("experiment.deleted", "experiment.restored")
             and run_id in e.payload["run_ids"]}
    assert set(named) == {"experiment.deleted", "experiment.restored"}, named


def test_journal_keeps_registry_and_logged_model_history(played: Played) -> None:
    chains = _by_chain(played.events())
    registry = chains[f"model:{MODEL_NAME}"]
    kinds = Counter(_kinds(registry))
    assert kinds["registered_model.created"] == 1 and kinds["model_version.created"] == 2, kinds
    created = [e.payload for e in registry if e.kind == "model_version.created"]
    assert [(p["version"], p["model_id"]) for p in created] == [
        (1, played.prov.model_ids["pyfunc"]), (2, played.prov.model_ids["pyfunc"])]
    aliases = [(e.kind.rsplit(".", 1)[1], e.payload["alias"], e.payload.get("version"))
               for e in registry if "alias" in e.kind]
    assert aliases == [("alias_set", "champion", 1), ("alias_set", "challenger", 2),
                       ("alias_set", "champion", 2), ("alias_set", "old", 1),
                       ("alias_deleted", "old", None)]
    assert kinds["model_version.tag_set"] == 2 and kinds["model_version.tag_deleted"] == 1
    external = _kinds(chains[f"logged_model:{played.prov.model_ids['external']}"])
    assert external == ["logged_model.created", "logged_model.params_logged",
                        "logged_model.tags_set", "logged_model.tag_deleted",
                        "logged_model.artifacts_recorded", "logged_model.finalized"]


def test_journal_covers_async_logging(played: Played) -> None:
    events = [e for e in played.events() if e.run_id == played.prov.run_ids["async"]]
    logged = sum(e.payload["count"] for e in events if e.kind == "run.metrics_logged")
    assert logged == ASYNC_STEPS + 2, f"async metric points journaled: {logged}"
    tags = {k: v for e in events if e.kind == "run.tags_set" for k, v in e.payload["tags"].items()}
    assert tags == {"queued": "yes", "flushed": "soon"}


def _described(payload: dict) -> dict:
    """A payload without the state digests that prove MLflow's rows (test_verify.py's job)."""
    return {key: value for key, value in payload.items() if key != STATE_FIELD}


def test_verify_reconciles_every_mlflow_row_with_the_journal(played: Played) -> None:
    """Every metric, latest-metric, param, tag and run row the scenario left in MLflow is
    proven by the journal's digests: a clean store verifies with nothing to report."""
    from exporters.verify import verify_store

    report = verify_store(played.prov.uri)
    assert report.ok and not report.notes, [*map(str, report.problems), *report.notes]
    assert report.runs == len(played.prov.run_ids) and report.metric_rows > 0


def test_every_journal_chain_verifies(played: Played) -> None:
    chains = _by_chain(played.events())
    assert len(chains) >= len(played.prov.run_ids) + 2 + 1 + 2
    broken = {chain: report.problems for chain in chains
              if not (report := verify_chain(played.prov.uri, chain)).intact}
    assert not broken, f"{played.pair}: broken journal chains: {broken}"
    lengths = {chain: verify_chain(played.prov.uri, chain).length for chain in chains}
    assert lengths == {chain: len(events) for chain, events in chains.items()}


def test_plain_store_has_no_journal(played: Played) -> None:
    with pytest.raises(JournalUnavailableError):
        list(read_events(played.plain.uri))
    with pytest.raises(JournalUnavailableError):
        verify_chain(played.plain.uri, f"run:{played.plain.run_ids['parent']}")
    engine = sa.create_engine(played.plain.uri)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "runs" in tables and not tables & {JOURNAL_TABLE, HEADS_TABLE}, sorted(tables)


def test_stores_were_distinct(played: Played) -> None:
    assert played.plain.uri != played.prov.uri
    assert set(played.plain.run_ids.values()).isdisjoint(played.prov.run_ids.values())
