"""``mlflow-prov verify`` catches every tamper: of the journal's rows and of MLflow's own rows.

Each case starts from a copy of one store with a finished training run (sqlite: copying the
folder takes milliseconds, MLflow's migrations take seconds), edits the database behind
MLflow's back with plain SQL, and asserts the one line a user sees and a non-zero exit.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from store_templates import prov_store

from exporters.cli import main
from mlflow_prov.uri import parse_prov_uri

OTHER_RUN = "f" * 32


@dataclass(frozen=True)
class Store:
    uri: str
    run_id: str
    experiment_id: str

    def sql(self, *statements: str) -> None:
        """Run statements (``:run`` and ``:chain`` bound) straight on the database."""
        engine = sa.create_engine(parse_prov_uri(self.uri).db_uri)
        try:
            with engine.begin() as connection:
                for statement in statements:
                    if engine.dialect.name == "mysql":  # ``key`` is a reserved word there
                        statement = re.sub(r"\bkey\b", "`key`", statement)
                    connection.execute(sa.text(statement), {
                        "run": self.run_id, "chain": f"run:{self.run_id}",
                        "other": OTHER_RUN, "experiment": int(self.experiment_id),
                        "experiment_chain": f"experiment:{self.experiment_id}"})
        finally:
            engine.dispose()


def train(uri: str) -> Store:
    """A finished run with tags, params, single metrics, a metric batch and a duplicate."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("verify")
    client.set_experiment_tag(experiment_id, "owner", "vision")
    run_id = client.create_run(experiment_id, tags={"team": "vision"}).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.set_tag(run_id, "stage", "draft")
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=1_000 + step, step=step)
    client.log_batch(run_id, metrics=[Metric("acc", step / 10, 2_000 + step, step)
                                      for step in range(10)],
                     params=[Param("batch", "32")], tags=[RunTag("stage", "final")])
    client.log_metric(run_id, "loss", 1.0, timestamp=1_000, step=0)  # MLflow skips duplicates
    client.log_metric(run_id, "nan", float("nan"), timestamp=3_000, step=0)
    client.log_metric(run_id, "inf", float("inf"), timestamp=3_000, step=0)
    client.set_terminated(run_id)
    return Store(uri, run_id, experiment_id)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Store]:
    folder = tmp_path_factory.mktemp("template") / "runs"
    return folder, train(prov_store(folder))


@pytest.fixture
def store(template, tmp_path) -> Store:
    folder, trained = template
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return Store(f"prov://{copy}", trained.run_id, trained.experiment_id)


def verify(uri: str, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri, *args])
    return result.exit_code, result.output.splitlines()


def test_an_untouched_store_verifies(store):
    code, lines = verify(store.uri)
    assert code == 0, lines
    assert lines[-1].startswith("ok: 2 chain(s), 1 run(s), 15 metric row(s)")


# (case, SQL, text the problem line must contain, what it must name)
JOURNAL_TAMPERS = [
    ("edited event",
     ["UPDATE prov_journal SET payload = replace(payload, '0.1', '0.9') "
      "WHERE chain = :chain AND kind = 'run.params_logged'"],
     "content does not match its hash", "chain run:"),
    ("deleted event",
     ["DELETE FROM prov_journal WHERE seq = (SELECT MIN(seq) FROM prov_journal "
      "WHERE chain = :chain AND kind = 'run.metrics_logged')"],
     "links to", "chain run:"),
    ("reordered events",
     ["UPDATE prov_journal SET seq = (SELECT MAX(seq) + 1 FROM prov_journal) WHERE seq = "
      "(SELECT MIN(seq) FROM prov_journal WHERE chain = :chain AND kind = 'run.params_logged')"],
     "links to", "chain run:"),
    ("inserted event",
     ["INSERT INTO prov_journal (time_us, chain, experiment_id, run_id, kind, payload, writer, "
      "prev_hash, hash) SELECT time_us, chain, experiment_id, run_id, kind, payload, writer, "
      "hash, hash FROM prov_journal WHERE seq = (SELECT MAX(seq) FROM prov_journal "
      "WHERE chain = :chain)"],
     "does not match its hash", "chain run:"),
    ("event moved to another chain",
     ["UPDATE prov_journal SET chain = :experiment_chain WHERE seq = (SELECT MIN(seq) FROM "
      "prov_journal WHERE chain = :chain AND kind = 'run.params_logged')"],
     "links to", "chain run:"),
    ("missing head row",
     ["DELETE FROM prov_journal_heads WHERE chain = :chain"],
     "head row missing", "chain run:"),
    ("truncated tail",
     ["DELETE FROM prov_journal WHERE seq = (SELECT MAX(seq) FROM prov_journal "
      "WHERE chain = :chain)"],
     "head says", "chain run:"),
    ("truncated tail, head row rewritten to match",
     ["DELETE FROM prov_journal WHERE seq = (SELECT MAX(seq) FROM prov_journal "
      "WHERE chain = :chain)",
      "UPDATE prov_journal_heads SET length = length - 1, last_hash = (SELECT hash FROM "
      "prov_journal WHERE seq = (SELECT MAX(seq) FROM prov_journal WHERE chain = :chain)) "
      "WHERE chain = :chain"],
     "status is 'FINISHED', the journal recorded 'RUNNING'", "(MLflow runs row)"),
    ("deleted chain while MLflow has the run",
     ["DELETE FROM prov_journal WHERE chain = :chain",
      "DELETE FROM prov_journal_heads WHERE chain = :chain"],
     "chain missing", "chain run:"),
]

MLFLOW_TAMPERS = [
    ("metric value edited",
     ["UPDATE metrics SET value = 9 WHERE run_uuid = :run AND key = 'loss' AND step = 1"],
     "values differ from the 1 journaled rows (edited)", "metric 'loss' step 1"),
    ("metric row inserted",
     ["INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
      "VALUES ('loss', 0.5, 99999, :run, 7, false)"],
     "matches no journaled write (inserted", "metric 'loss' step 7"),
    ("metric row inserted inside a journaled batch",
     ["INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
      "VALUES ('acc', 0.55, 2005, :run, 5, false)"],
     "1 rows more than the 10 journaled (inserted)", "metric 'acc' steps 0-9"),
    ("metric row deleted",
     ["DELETE FROM metrics WHERE run_uuid = :run AND key = 'acc' AND step = 3"],
     "1 of 10 journaled rows missing (deleted)", "metric 'acc' steps 0-9"),
    ("NaN turned into a number",
     ["UPDATE metrics SET is_nan = false WHERE run_uuid = :run AND key = 'nan'"],
     "(edited)", "metric 'nan' step 0"),
    ("latest metric edited",
     ["UPDATE latest_metrics SET value = 0.01 WHERE run_uuid = :run AND key = 'loss'"],
     "the metric rows say 0.3333333333333333 at step 2 (edited)", "latest metric 'loss'"),
    ("latest metric inserted",
     ["INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
      "VALUES ('ghost', 1, 1, 1, false, :run)"],
     "without any metric row (inserted)", "latest metric 'ghost'"),
    ("latest metric deleted",
     ["DELETE FROM latest_metrics WHERE run_uuid = :run AND key = 'acc'"],
     "(deleted)", "latest metric 'acc'"),
    ("param edited",
     ["UPDATE params SET value = '0.9' WHERE run_uuid = :run AND key = 'lr'"],
     "MLflow has '0.9', the journal recorded '0.1' (edited)", "param 'lr'"),
    ("param inserted",
     ["INSERT INTO params (key, value, run_uuid) VALUES ('seed', '7', :run)"],
     "never journaled (inserted)", "param 'seed'"),
    ("param deleted",
     ["DELETE FROM params WHERE run_uuid = :run AND key = 'batch'"],
     "missing in MLflow (deleted)", "param 'batch'"),
    ("tag edited",
     ["UPDATE tags SET value = 'draft' WHERE run_uuid = :run AND key = 'stage'"],
     "MLflow has 'draft', the journal recorded 'final' (edited)", "tag 'stage'"),
    ("tag inserted",
     ["INSERT INTO tags (key, value, run_uuid) VALUES ('approved', 'yes', :run)"],
     "never journaled (inserted)", "tag 'approved'"),
    ("tag deleted",
     ["DELETE FROM tags WHERE run_uuid = :run AND key = 'team'"],
     "missing in MLflow (deleted)", "tag 'team'"),
    ("run status edited",
     ["UPDATE runs SET status = 'FAILED' WHERE run_uuid = :run"],
     "status is 'FAILED', the journal recorded 'FINISHED'", "(MLflow runs row)"),
    ("run user edited",
     ["UPDATE runs SET user_id = 'mallory' WHERE run_uuid = :run"],
     "user_id is 'mallory'", "(MLflow runs row)"),
    ("run source edited (a column only the whole created row records)",
     ["UPDATE runs SET source_name = 'elsewhere.py' WHERE run_uuid = :run"],
     "source_name is 'elsewhere.py', the journal recorded ''", "(MLflow runs row)"),
    ("run row deleted",
     ["DELETE FROM latest_metrics WHERE run_uuid = :run",
      "DELETE FROM metrics WHERE run_uuid = :run", "DELETE FROM params WHERE run_uuid = :run",
      "DELETE FROM tags WHERE run_uuid = :run", "DELETE FROM runs WHERE run_uuid = :run"],
     "MLflow's runs table has no row for it", "run "),
    ("experiment renamed",
     ["UPDATE experiments SET name = 'other' WHERE experiment_id = :experiment"],
     "name is 'other', the journal recorded 'verify'", "(MLflow experiments row)"),
    ("experiment deleted in place",
     ["UPDATE experiments SET lifecycle_stage = 'deleted' WHERE experiment_id = :experiment"],
     "lifecycle_stage is 'deleted', the journal recorded 'active'", "experiment "),
    ("experiment tag edited",
     ["UPDATE experiment_tags SET value = 'audio' WHERE experiment_id = :experiment "
      "AND key = 'owner'"],
     "MLflow has 'audio', the journal recorded 'vision' (edited)", "experiment 1 tag 'owner'"),
    ("experiment tag inserted",
     ["INSERT INTO experiment_tags (key, value, experiment_id) VALUES ('x', 'y', :experiment)"],
     "never journaled (inserted)", "experiment 1 tag 'x'"),
    ("experiment tag deleted",
     ["DELETE FROM experiment_tags WHERE experiment_id = :experiment AND key = 'owner'"],
     "missing in MLflow (deleted)", "experiment 1 tag 'owner'"),
    ("run row inserted (an unjournaled run)",
     ["INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
      "status, start_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
      "SELECT :other, name, source_type, source_name, entry_point_name, user_id, status, "
      "start_time, source_version, lifecycle_stage, artifact_uri, experiment_id FROM runs "
      "WHERE run_uuid = :run"],
     "chain missing", f"chain run:{OTHER_RUN}"),
]


@pytest.mark.parametrize(("case", "statements", "what", "where"),
                         JOURNAL_TAMPERS + MLFLOW_TAMPERS,
                         ids=[case[0] for case in JOURNAL_TAMPERS + MLFLOW_TAMPERS])
def test_a_tamper_is_reported_on_one_line(store, case, statements, what, where):
    store.sql(*statements)
    code, lines = verify(store.uri)
    assert code == 1, lines
    matching = [line for line in lines if what in line]
    assert matching, f"{case}: no line says {what!r}: {lines}"
    assert any(where in line for line in matching), matching
    assert lines[-1].startswith("FAILED:")


def test_json_report_and_selection(store):
    store.sql("UPDATE params SET value = '0.9' WHERE run_uuid = :run AND key = 'lr'")
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", store.uri, "--experiment",
                                       "verify", "--run", store.run_id, "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 1 and not report["ok"]
    assert report["runs"] == 1 and report["metric_rows"] == 15
    assert any("param 'lr'" in line for line in report["problems"])


def test_long_values_are_journaled_as_mlflow_stored_them(prov_uri):
    """A 10 MB tag and a 10,000-character param: MLflow keeps 8,000 and 6,000 characters; the
    journal keeps the same, with the original's length and SHA-256, and verify agrees."""
    import hashlib

    from mlflow_prov.journal import read_events

    client = MlflowClient(prov_uri)
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    tag, param = "t" * 10_000_000, "p" * 10_000
    client.set_tag(run_id, "blob", tag)
    client.log_param(run_id, "long", param)
    client.log_batch(run_id, tags=[RunTag("blob2", tag)])
    run = client.get_run(run_id)
    assert run.data.tags["blob"] == tag[:8000] and run.data.params["long"] == param[:6000]
    events = list(read_events(prov_uri, run_id=run_id))
    largest = max(len(json.dumps(event.payload)) for event in events)
    assert largest < 20_000, largest
    tagged = next(e for e in events if "blob" in e.payload.get("tags", {}))
    assert tagged.payload["tags"]["blob"] == tag[:8000]
    assert tagged.payload["cut"]["blob"] == {
        "length": 10_000_000, "sha256": hashlib.sha256(tag.encode()).hexdigest()}
    batched = next(e for e in events if "blob2" in e.payload.get("tags", {}))
    assert batched.payload["tags"]["blob2"] == tag[:8000]
    assert batched.payload["cut"]["blob2"] == tagged.payload["cut"]["blob"]
    logged = next(e for e in events if "long" in e.payload.get("params", {}))
    assert logged.payload["params"]["long"] == param[:6000]
    assert logged.payload["cut"]["long"]["length"] == 10_000
    assert verify(prov_uri)[0] == 0


@pytest.mark.parametrize("rewrite", ["rehash", "truncate"])
def test_checkpoint_catches_a_rewritten_history(store, tmp_path, rewrite):
    """Two rewrites that every hash and digest agree with, so verify alone reads them as
    intact: an event edited and every hash after it recomputed (head included), and the last
    event dropped with the head and MLflow's run row set back to match. The signed checkpoint
    of the journal's Merkle tree catches both, by consistency proof."""
    from mlflow_prov.journal import event_hash

    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "keys" / "signing.pem"
    code, lines = verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 0, lines
    assert key.stat().st_mode & 0o777 == 0o600
    assert any(f"created the checkpoint signing key {key}" in line for line in lines)
    signed = _open_checkpoint(checkpoint)
    assert signed.size == 14 and signed.origin.startswith("mlflow-prov/")

    if rewrite == "rehash":
        store.sql("UPDATE prov_journal SET writer = replace(writer, '\"user\":', "
                  "'\"user\":\"mallory\",\"was\":') WHERE seq = (SELECT MIN(seq) "
                  "FROM prov_journal WHERE chain = :chain)")
        expected = (f"checkpoint {checkpoint}: the journal's first 14 events no longer hash "
                    "to the checkpointed root: history rewritten since the checkpoint")
    else:
        store.sql("DELETE FROM prov_journal WHERE seq = (SELECT MAX(seq) FROM prov_journal "
                  "WHERE chain = :chain)",
                  "UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = :run")
        expected = (f"checkpoint {checkpoint}: the journal has 13 events, fewer than the 14 "
                    "checkpointed (events deleted since)")
    _rehash(store, event_hash)
    assert verify(store.uri)[0] == 0, "expected to pass without a checkpoint"

    code, lines = verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 1
    assert expected in lines, lines
    assert any("not updated" in line for line in lines)
    assert _open_checkpoint(checkpoint) == signed


def test_a_checkpoint_advances_with_new_events_and_refuses_a_fork(store, tmp_path):
    """New events extend the checkpointed tree (the consistency proof holds, the checkpoint
    advances); an older event rewritten, hashes and all, after that is refused against it,
    and an export cannot prove anything against it either."""
    from exporters.errors import ExportError
    from exporters.log_proofs import run_proofs
    from mlflow_prov.journal import event_hash

    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    assert verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))[0] == 0
    client = MlflowClient(store.uri)
    later = client.create_run(store.experiment_id).info.run_id
    client.log_param(later, "seed", "7")
    code, lines = verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 0, lines
    assert _open_checkpoint(checkpoint).size == 16  # the new run's creation and its param

    store.sql("UPDATE prov_journal SET payload = replace(payload, '0.1', '0.9') "
              "WHERE chain = :chain AND kind = 'run.params_logged'",
              "UPDATE params SET value = '0.9' WHERE run_uuid = :run AND key = 'lr'")
    _rehash(store, event_hash)
    code, lines = verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 1
    assert f"checkpoint {checkpoint}: the journal's first 16 events no longer hash to the " \
           "checkpointed root: history rewritten since the checkpoint" in lines, lines
    with pytest.raises(ExportError, match="the store does not extend the checkpoint"):
        run_proofs(store.uri, checkpoint, [store.run_id])  # what export --checkpoint uses


def test_a_checkpoint_signs_only_the_events_verify_checked(store, tmp_path, monkeypatch):
    """A writer that commits while verify checks the store (here, deterministically, right
    after the check) must not get its event into the signed tree unchecked: the checkpoint
    covers the tree as it was before the check, and the next verify advances it."""
    import exporters.verify

    checked = exporters.verify.verify_store

    def check_then_a_writer_commits(*args, **kwargs):
        report = checked(*args, **kwargs)
        MlflowClient(store.uri).log_param(store.run_id, "written_meanwhile", "1")
        return report

    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    monkeypatch.setattr(exporters.verify, "verify_store", check_then_a_writer_commits)
    code, lines = verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 0, lines
    assert _open_checkpoint(checkpoint).size == 14
    monkeypatch.setattr(exporters.verify, "verify_store", checked)
    assert verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))[0] == 0
    assert _open_checkpoint(checkpoint).size == 15


def test_a_forged_checkpoint_is_refused(store, tmp_path):
    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    assert verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))[0] == 0
    origin, size, rest = checkpoint.read_text().split("\n", 2)
    checkpoint.write_text(f"{origin}\n{int(size) - 1}\n{rest}")
    code, lines = verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 1 and lines == [f"Error: {checkpoint}: signature does not verify with this "
                                   "key (the checkpoint was edited, or signed with another "
                                   "--key)"]


def test_a_checkpoint_of_an_earlier_version_is_still_checked_then_replaced(store, tmp_path):
    """Chain-head checkpoints (signed JSON) from earlier versions: a rewritten chain is still
    caught chain by chain; an intact store gets a tree checkpoint in their place."""
    from exporters.checkpoint import load_or_create_key
    from mlflow_prov.journal import chain_heads, event_hash

    key_path = tmp_path / "signing.pem"
    key = load_or_create_key(key_path)[0]
    legacy = tmp_path / "heads.json"
    _write_legacy_checkpoint(legacy, key, chain_heads(store.uri))
    intact = tmp_path / "intact.json"
    shutil.copy(legacy, intact)
    code, lines = verify(store.uri, "--checkpoint", str(intact), "--key", str(key_path))
    assert code == 0, lines
    assert any("replaces the chain-head checkpoint of an earlier version" in line
               for line in lines), lines
    assert _open_checkpoint(intact).size == 14

    store.sql("UPDATE prov_journal SET writer = replace(writer, '\"user\":', "
              "'\"user\":\"mallory\",\"was\":') WHERE seq = (SELECT MIN(seq) "
              "FROM prov_journal WHERE chain = :chain)")
    _rehash(store, event_hash)
    code, lines = verify(store.uri, "--checkpoint", str(legacy), "--key", str(key_path))
    assert code == 1
    assert any(line.startswith(f"chain run:{store.run_id}: event 12 no longer hashes to")
               for line in lines), lines
    assert json.loads(legacy.read_text())["format"] == "mlflow-prov-checkpoint/1"


def _write_legacy_checkpoint(path: Path, key, heads) -> None:
    """A checkpoint as mlflow-prov wrote it before tree checkpoints: signed JSON heads."""
    import base64

    body = {"format": "mlflow-prov-checkpoint/1", "created": "2026-01-01T00:00:00+00:00",
            "store": "prov:///old", "heads": {chain: [length, last_hash] for chain,
                                              (length, last_hash) in heads.items() if length}}
    signed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    path.write_text(json.dumps({**body, "signature": base64.b64encode(key.sign(signed))
                                .decode("ascii")}))


def _open_checkpoint(path: Path):
    """The checkpoint at ``path``, opened with the verifier key written beside it."""
    from exporters.signed_note import Checkpoint, VerifierKey, open_note

    verifier = VerifierKey.parse(path.with_name(path.name + ".pub").read_text())
    return Checkpoint.parse(open_note(path.read_text(), verifier))


def test_prove_prints_each_run_event_with_a_proof_that_verifies(store, tmp_path):
    """``prove RUN`` against a checkpoint: one leaf per run event, at its position in write
    order, each proof leading to the signed root (checked here by the RFC 9162 verifier)."""
    from exporters.journal_tree import leaf_of
    from exporters.merkle import verify_inclusion

    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    assert verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))[0] == 0
    signed = _open_checkpoint(checkpoint)
    result = CliRunner().invoke(main, ["prove", store.run_id, "--tracking-uri", store.uri,
                                       "--checkpoint", str(checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    engine = sa.create_engine(parse_prov_uri(store.uri).db_uri)
    with engine.connect() as connection:
        order = connection.execute(sa.text("SELECT seq, run_id FROM prov_journal "
                                           "ORDER BY seq")).all()
    engine.dispose()
    expected = [index for index, row in enumerate(order) if row.run_id == store.run_id]
    assert [event["leaf_index"] for event in document["events"]] == expected
    for event in document["events"]:
        verify_inclusion(event["leaf_index"], signed.size, leaf_of(event["hash"]),
                         [bytes.fromhex(node) for node in event["proof"]], signed.root)

    text = CliRunner().invoke(main, ["prove", store.run_id, "--tracking-uri", store.uri])
    assert text.exit_code == 0
    assert text.output.count("\n  proof: ") == len(expected) == 12
    missing = CliRunner().invoke(main, ["prove", OTHER_RUN, "--tracking-uri", store.uri])
    assert missing.exit_code == 1
    assert missing.output.strip().endswith(f"run {OTHER_RUN} has no events in the journal of "
                                           f"{store.uri}; check the run id")


def test_prove_checks_the_checkpoint_signature_when_the_key_is_at_hand(store, tmp_path):
    """A checkpoint of the genuine tree signed by another key is refused with the signing
    key at hand; with no key file, the output says the signature was not checked."""
    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    assert verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))[0] == 0
    stranger = tmp_path / "stranger.checkpoint"
    assert verify(store.uri, "--checkpoint", str(stranger), "--key",
                  str(tmp_path / "stranger.pem"))[0] == 0

    def prove(path: Path, key_file: Path) -> tuple[int, str]:
        outcome = CliRunner().invoke(main, ["prove", store.run_id, "--tracking-uri", store.uri,
                                            "--checkpoint", str(path), "--key", str(key_file)])
        return outcome.exit_code, outcome.output.splitlines()[0]

    code, first = prove(checkpoint, key)
    assert code == 0 and first.endswith(f"(checkpoint {checkpoint}, signature checked with "
                                        f"{key})"), first
    assert prove(stranger, key) == (1, f"Error: {stranger}: signature does not verify with "
                                       "this key (the checkpoint was edited, or signed with "
                                       "another --key)")
    missing = tmp_path / "no-such.pem"
    code, first = prove(stranger, missing)
    assert code == 0 and first.endswith(f"(checkpoint {stranger}, signature not checked: no "
                                        f"key at {missing}; pass --key)"), first
    assert not missing.exists()


def _rehash(store: Store, event_hash, chain: str | None = None) -> None:
    """What an attacker with write access does: recompute every link and the head (of the
    run's chain, or of ``chain``)."""
    chain = chain or f"run:{store.run_id}"
    engine = sa.create_engine(parse_prov_uri(store.uri).db_uri)
    try:
        with engine.begin() as connection:
            rows = connection.execute(sa.text(
                "SELECT * FROM prov_journal WHERE chain = :chain ORDER BY seq"),
                {"chain": chain}).all()
            previous = None
            for row in rows:
                digest = event_hash(previous, row.chain, row.time_us, row.kind,
                                    row.experiment_id, row.run_id, row.payload, row.writer)
                connection.execute(sa.text("UPDATE prov_journal SET prev_hash = :p, hash = :h "
                                           "WHERE seq = :s"),
                                   {"p": previous, "h": digest, "s": row.seq})
                previous = digest
            connection.execute(sa.text("UPDATE prov_journal_heads SET last_hash = :h, "
                                       "length = :n WHERE chain = :chain"),
                               {"h": previous, "n": len(rows), "chain": chain})
    finally:
        engine.dispose()


def test_bad_input_is_one_line(tmp_path, sqlite_uri):
    code, lines = verify(f"prov://{tmp_path / 'nowhere'}")
    assert code == 1 and len(lines) == 1 and "no prov store at" in lines[0]
    code, lines = verify(sqlite_uri)
    assert code == 1 and len(lines) == 1 and "not a prov store URI" in lines[0]
    result = CliRunner().invoke(main, ["verify"], env={"MLFLOW_TRACKING_URI": ""})
    assert result.exit_code == 2 and "pass --tracking-uri" in result.output


def test_offline_crate_checks_explain_bad_input(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from exporters.signed_note import VerifierKey

    crate = tmp_path / "run-x.crate"
    crate.mkdir()
    (crate / "ro-crate-metadata.json").write_text(json.dumps({"@graph": []}))
    key = VerifierKey.of("mlflow-prov/0123456789abcdef", Ed25519PrivateKey.generate()).text()

    def offline(*args: str) -> tuple[int, list[str]]:
        outcome = CliRunner().invoke(main, ["verify", *args])
        return outcome.exit_code, outcome.output.splitlines()

    code, lines = offline("--crate", str(crate), "--public-key", key)
    assert code == 1 and lines[0] == (f"{crate}: carries no transparency-log.json (export it "
                                      "with --checkpoint FILE, the checkpoint `verify "
                                      "--checkpoint` wrote); ro-crate-metadata.json alone "
                                      "proves nothing offline"), lines
    code, lines = offline("--crate", str(crate), "--public-key", "not-a-key")
    assert code == 2 and "--public-key" in lines[-1] and "not an Ed25519 key" in lines[-1]
    code, lines = offline("--public-key", key)
    assert code == 2 and lines[-1] == ("Error: --public-key checks crates offline: pass "
                                       "--crate CRATE")


def _signed_proofs(tmp_path: Path, run_ids: list[str]):
    """A signed two-leaf tree and a folder crate maker: ``make(heads, documents)`` writes
    each run's CreateAction with its ``journalHead`` and each proof file as given."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from exporters.journal_tree import leaf_of
    from exporters.merkle import MerkleTree
    from exporters.signed_note import Checkpoint, VerifierKey, sign

    hashes = [hashlib.sha256(run_id.encode()).hexdigest() for run_id in run_ids]
    tree = MerkleTree([leaf_of(digest) for digest in hashes])
    origin, key = "mlflow-prov/0123456789abcdef", Ed25519PrivateKey.generate()
    note = sign(Checkpoint(origin, tree.size, tree.root()).text(), origin, key)

    def document(index: int, **changes: object) -> dict:
        return {"format": "mlflow-prov-inclusion/1", "checkpoint": note,
                "run_id": run_ids[index], "tree_size": tree.size,
                "events": [{"seq": index + 1, "chain": f"run:{run_ids[index]}",
                            "leaf_index": index, "hash": hashes[index],
                            "proof": [node.hex() for node in tree.inclusion_proof(index)]}],
                "later_events": 0, **changes}

    def make(name: str, heads: dict[str, str], documents: dict[str, object]) -> Path:
        crate = tmp_path / name
        crate.mkdir()
        (crate / "ro-crate-metadata.json").write_text(json.dumps({"@graph": [
            {"@id": f"#run-{run_id}", "@type": "CreateAction", "identifier": run_id,
             "journalHead": head} for run_id, head in heads.items()]}))
        for folder, content in documents.items():
            (crate / folder).mkdir()
            (crate / folder / "transparency-log.json").write_text(json.dumps(content))
        return crate

    return hashes, document, make, VerifierKey.of(origin, key).text()


def _offline(crate: Path, key: str) -> tuple[int, list[str]]:
    outcome = CliRunner().invoke(main, ["verify", "--crate", str(crate), "--public-key", key])
    return outcome.exit_code, outcome.output.splitlines()


def test_an_offline_crate_check_refuses_a_journal_head_that_nothing_proves(tmp_path):
    """The crate's ``journalHead`` must be one of the events proved in the signed tree: an
    unsigned ``later_events`` count does not excuse it, and a run whose head has no proof
    file fails, even when another run's genuine proofs travel with it."""
    run, other = "a" * 32, "b" * 32
    hashes, document, make, key = _signed_proofs(tmp_path, [run, other])
    genuine = make("genuine", {run: f"1:{hashes[0]}"}, {f"run-{run}": document(0)})
    assert _offline(genuine, key)[0] == 0

    forged_head = f"7:{'9' * 64}"
    later = make("later", {run: forged_head},
                 {f"run-{run}": document(0, events=[], later_events=1)})
    code, lines = _offline(later, key)
    assert code == 1
    assert lines[0] == (f"{later}: run {run}: the crate's journal head 999999999999… is not "
                        "among the events proved in the signed tree; it was written after the "
                        "checkpoint: advance the checkpoint (verify --checkpoint) and "
                        "re-export"), lines

    borrowed = make("borrowed", {run: forged_head}, {f"run-{other}": document(1)})
    code, lines = _offline(borrowed, key)
    assert code == 1
    assert lines[0] == (f"{borrowed}: run {run}: records a journal head but carries no "
                        "transparency-log.json for it, so nothing proves that head (re-export "
                        "it with --checkpoint FILE)"), lines


def test_an_offline_crate_check_names_a_malformed_proof_file(tmp_path):
    run = "a" * 32
    hashes, document, make, key = _signed_proofs(tmp_path, [run, "b" * 32])
    listed = make("listed", {run: f"1:{hashes[0]}"}, {f"run-{run}": [document(0)]})
    code, lines = _offline(listed, key)
    assert code == 1 and lines[0] == (f"{listed}: run-{run}/transparency-log.json is not a "
                                      "JSON object (re-export the crate with --checkpoint "
                                      "FILE)"), lines
    strings = make("strings", {run: f"1:{hashes[0]}"},
                   {f"run-{run}": document(0, events=["not an event"])})
    code, lines = _offline(strings, key)
    assert code == 1 and lines[0] == (f"{strings}: run {run}: run-{run}/transparency-log.json: "
                                      "'events' must be a list of objects (leaf_index, hash, "
                                      "proof); re-export the crate with --checkpoint FILE")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["prov_postgres_uri", "prov_mysql_uri"])
def test_tampers_are_reported_on_database_servers(server, request, tmp_path):
    """Tampers of each kind, then a full rehash that only the tree checkpoint catches."""
    from mlflow_prov.journal import event_hash

    uri = request.getfixturevalue(server)
    trained = train(uri)
    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    code, lines = verify(uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 0, lines
    for _, statements, what, where in [JOURNAL_TAMPERS[5], MLFLOW_TAMPERS[0],
                                       MLFLOW_TAMPERS[3], MLFLOW_TAMPERS[8],
                                       MLFLOW_TAMPERS[11], MLFLOW_TAMPERS[14]]:
        trained.sql(*statements)
        code, lines = verify(uri)
        assert code == 1 and any(what in line and where in line for line in lines), lines

    size = _open_checkpoint(checkpoint).size
    trained.sql("UPDATE prov_journal SET writer = replace(writer, '\"user\":', "
                "'\"user\":\"mallory\",\"was\":') WHERE seq = (SELECT seq FROM (SELECT "
                "MIN(seq) AS seq FROM prov_journal WHERE chain = :chain) AS first_event)")
    _rehash(trained, event_hash)
    code, lines = verify(uri, "--checkpoint", str(checkpoint), "--key", str(key))
    assert code == 1
    assert f"checkpoint {checkpoint}: the journal's first {size} events no longer hash to " \
           "the checkpointed root: history rewritten since the checkpoint" in lines, lines


@pytest.mark.slow  # a PostgreSQL/MySQL database each, and a second connection
@pytest.mark.parametrize("server", ["prov_postgres_uri", "prov_mysql_uri"])
def test_the_tree_is_read_once_inserts_in_flight_have_committed(server, request):
    """On database servers ``seq`` is handed out at insert, not commit: an event inserted
    before the tree is read but committed after must not be skipped (a gap that a later read
    fills reads as a rewritten history). The read waits for it instead."""
    import threading
    import time

    from mlflow_prov.journal import events_table, read_event_hashes

    uri = request.getfixturevalue(server)
    MlflowClient(uri).create_experiment("in-flight")  # the store, its journal and an event
    engine = sa.create_engine(parse_prov_uri(uri).db_uri)

    def event(name: str) -> dict:
        return {"time_us": 1, "chain": f"test:{name}", "kind": "test", "payload": "{}",
                "writer": "{}", "hash": name * 64}

    in_flight = engine.connect()
    try:
        in_flight.begin()
        seq = in_flight.execute(events_table.insert().values(event("a"))).inserted_primary_key[0]
        with engine.begin() as connection:
            connection.execute(events_table.insert().values(event("b")))
        read: list = []
        reader = threading.Thread(target=lambda: read.append(read_event_hashes(uri)))
        reader.start()
        waiting = ("SELECT count(*) FROM pg_locks WHERE NOT granted" if "postgres" in server
                   else "SELECT count(*) FROM information_schema.processlist "
                        "WHERE state LIKE 'Waiting for table metadata lock%'")
        deadline = time.monotonic() + 120
        with engine.connect() as watcher:
            while reader.is_alive() and not watcher.execute(sa.text(waiting)).scalar():
                assert time.monotonic() < deadline, "the read neither ended nor waited"
                time.sleep(0.05)
        in_flight.commit()
        reader.join(timeout=120)
    finally:
        in_flight.close()
        engine.dispose()
    seqs, hashes = read[0]
    assert seq in seqs and "a" * 64 in hashes and "b" * 64 in hashes


@pytest.mark.slow  # roc-validator
def test_an_export_embeds_the_journal_head_and_a_crate_is_checked_against_its_store(
        store, tmp_path):
    from validators import seed_rocrate_cache, validate_crate

    from exporters.options import ExportOptions
    from exporters.pipeline import export
    from mlflow_prov.journal import event_hash

    result = export("verify", tmp_path / "out", tracking_uri=store.uri,
                    options=ExportOptions(formats=("prov-json", "rocrate")))
    crate = next(path for path in result.files if path.name.endswith(".zip"))
    document = json.loads(next(p for p in result.files if p.name == "prov.json").read_text())
    head = _find(document, "mlflowprov:journalHead")
    assert isinstance(head, str) and re.fullmatch(r"[1-9][0-9]*:[0-9a-f]{64}", head), head
    code, lines = verify(store.uri, "--crate", str(crate))
    assert code == 0, lines
    report = validate_crate(crate, seed_rocrate_cache(tmp_path / "rocv"), "REQUIRED")
    assert report.passed, report.issues

    store.sql("DELETE FROM prov_journal WHERE seq = (SELECT MAX(seq) FROM prov_journal "
              "WHERE chain = :chain)",
              "UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = :run")
    _rehash(store, event_hash)
    code, lines = verify(store.uri, "--crate", str(crate))
    assert code == 1
    assert any(line.startswith(f"{crate}: run {store.run_id}: the store's chain has fewer "
                               "than the 12 events") for line in lines), lines


@pytest.mark.slow  # an RO-Crate export
def test_a_crate_verifies_offline_with_only_its_public_key(store, tmp_path):
    """Exported against a signed checkpoint, a crate carries its run's inclusion proofs: it
    verifies with the verifier key alone after the store is deleted; an edited proof, or
    another key, is refused."""
    from exporters.checkpoint import load_or_create_key
    from exporters.options import ExportOptions
    from exporters.pipeline import export
    from exporters.signed_note import VerifierKey

    checkpoint, key = tmp_path / "journal.checkpoint", tmp_path / "signing.pem"
    assert verify(store.uri, "--checkpoint", str(checkpoint), "--key", str(key))[0] == 0
    result = export("verify", tmp_path / "out", tracking_uri=store.uri,
                    options=ExportOptions(formats=("prov-json", "rocrate"), crate_as_folder=True,
                                          checkpoint=checkpoint))
    crate = result.experiment_dir / f"run-{store.run_id}.crate"
    shutil.rmtree(tmp_path / "copy")  # the store fixture's folder: database and artifacts
    public = checkpoint.with_name(checkpoint.name + ".pub")

    def offline(*args: str) -> tuple[int, list[str]]:
        outcome = CliRunner().invoke(main, ["verify", "--crate", str(crate), *args])
        return outcome.exit_code, outcome.output.splitlines()

    code, lines = offline("--public-key", str(public))
    assert code == 0, lines
    assert lines[0] == (f"{crate}: 12 event(s) of 1 run(s) proved in the tree signed by "
                        f"{_open_checkpoint(checkpoint).origin}")
    code, lines = offline("--public-key", public.read_text().strip())
    assert code == 0, lines

    stranger = VerifierKey.of(_open_checkpoint(checkpoint).origin,
                              load_or_create_key(tmp_path / "other.pem")[0]).text()
    code, lines = offline("--public-key", stranger)
    assert code == 1
    assert lines[0].startswith(f"{crate}: run {store.run_id}: the checkpoint does not verify "
                               "with this public key"), lines

    proofs = crate / "transparency-log.json"
    document = json.loads(proofs.read_text())
    document["events"][3]["hash"] = "0" * 64
    proofs.write_text(json.dumps(document))
    code, lines = offline("--public-key", str(public))
    assert code == 1
    assert lines[0].startswith(f"{crate}: run {store.run_id}: event "
                               f"{document['events'][3]['seq']} is not proved"), lines


@pytest.mark.slow
@pytest.mark.parametrize("server", ["prov_uri", "prov_postgres_uri", "prov_mysql_uri"])
def test_concurrent_tag_and_param_writers_leave_a_store_that_verifies(server, request):
    """Each tag or param event records the run's state after its write, moved from the
    previous event's state by the rows it touched. Writers to one run at once must not record
    a state that misses a neighbour's committed write: the move is made once the chain's head
    is locked, and old values read before a neighbour's event are not trusted."""
    from concurrent.futures import ThreadPoolExecutor

    uri = request.getfixturevalue(server)
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("concurrent")).info.run_id
    client.set_tag(run_id, "shared", "first")  # MLflow's own first inserts of one key race

    def write(worker: int) -> None:
        for index in range(10):
            client.set_tag(run_id, "shared", f"{worker}-{index}")
            client.set_tag(run_id, f"w{worker}-{index}", "x")
            client.log_param(run_id, f"p{worker}-{index}", str(index))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    code, lines = verify(uri)
    assert code == 0, lines


def test_a_row_edited_behind_mlflows_back_stays_found_after_later_writes(store):
    """A later write moves the journal's state by the rows it touched and never reads the
    edited one again: the edit is not absorbed into the next event's digests."""
    store.sql("UPDATE tags SET value = 'forged' WHERE run_uuid = :run AND key = 'team'")
    client = MlflowClient(store.uri)
    client.set_tag(store.run_id, "later", "yes")
    client.log_param(store.run_id, "later", "1")
    client.delete_tag(store.run_id, "later")
    code, lines = verify(store.uri)
    assert code == 1 and lines[0] == (f"run {store.run_id} tag 'team': MLflow has 'forged', "
                                      "the journal recorded 'vision' (edited)"), lines


LEGACY_JOURNAL = Path(__file__).parent.parent / "data" / "legacy_journal" / "mlflow.db.gz"


@pytest.fixture
def legacy_store(tmp_path) -> str:
    """A store written by mlflow-prov before payloads became the whole truth (state digests in
    events and head rows; tests/data/legacy_journal/make_legacy.py made it)."""
    folder = tmp_path / "legacy"
    folder.mkdir()
    (folder / "mlflow.db").write_bytes(gzip.decompress(LEGACY_JOURNAL.read_bytes()))
    return f"prov:///{folder}"


def test_a_journal_written_before_the_write_path_redesign_still_verifies(legacy_store):
    """Its runs replay from what their events spell out (a note names the columns they do not)
    and new writes extend its chains; a tamper is still found."""
    code, lines = verify(legacy_store)
    assert code == 0, lines
    assert any("journaled before events recorded whole rows" in line for line in lines), lines
    client = MlflowClient(legacy_store)
    run = client.search_runs(client.search_experiments()[0].experiment_id)[0].info.run_id
    client.set_tag(run, "k", "after-upgrade")
    client.log_param(run, "after-upgrade", "1")
    code, lines = verify(legacy_store)
    assert code == 0, lines
    uri = parse_prov_uri(legacy_store).db_uri
    engine = sa.create_engine(uri)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE params SET value = '9' WHERE key = 'lr'"))
    engine.dispose()
    code, lines = verify(legacy_store)
    assert code == 1 and any("param 'lr'" in line and "(edited)" in line for line in lines), lines


def test_an_export_of_a_run_whose_mlflow_rows_were_edited_is_not_journal_intact(store, tmp_path):
    """The issue's case: the journal says lr=0.1, MLflow's table was edited to 0.9; the export
    must not say ``journalIntact true``."""
    from exporters.options import ExportOptions
    from exporters.pipeline import export

    def intact(out: Path) -> object:
        result = export("verify", out, tracking_uri=store.uri,
                        options=ExportOptions(formats=("prov-json",)))
        document = json.loads(next(p for p in result.files if p.name == "prov.json").read_text())
        return _find(document, "mlflowprov:journalIntact")

    assert intact(tmp_path / "before") is True
    store.sql("UPDATE params SET value = '0.9' WHERE run_uuid = :run AND key = 'lr'")
    assert intact(tmp_path / "after") is False


def _export_claims(store: Store, out: Path, every_row: bool = False) -> tuple[object, object]:
    """``journalIntact`` and ``metricRowsRehashed`` of a PROV-JSON export of the store."""
    from exporters.options import ExportOptions
    from exporters.pipeline import export

    result = export("verify", out, tracking_uri=store.uri,
                    options=ExportOptions(formats=("prov-json",), verify_metric_rows=every_row))
    document = json.loads(next(p for p in result.files if p.name == "prov.json").read_text())
    return (_find(document, "mlflowprov:journalIntact"),
            _find(document, "mlflowprov:metricRowsRehashed"))


@pytest.mark.parametrize("tamper", [
    "UPDATE metrics SET value = 0.5 WHERE run_uuid = :run AND key = 'acc' AND step = 3",
    "DELETE FROM metrics WHERE run_uuid = :run AND key = 'acc' AND step = 9",
    "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "VALUES ('acc', 0.99, 2100, 100, 0, :run)",
    "UPDATE latest_metrics SET value = 0.99 WHERE run_uuid = :run AND key = 'acc'",
], ids=["edited", "deleted", "inserted", "latest-edited"])
def test_an_export_reads_only_changed_series_yet_sees_every_metric_tamper(store, tmp_path,
                                                                         tamper):
    """A PROV-JSON export reads no point of an untouched series (it says so:
    ``metricRowsRehashed false``), but a metric row edited, deleted or inserted with SQL
    marks its series, which the export then rehashes: ``journalIntact`` turns false."""
    assert _export_claims(store, tmp_path / "before") == (True, False)
    assert _export_claims(store, tmp_path / "every", every_row=True) == (True, True)
    store.sql(tamper)
    assert _export_claims(store, tmp_path / "after")[0] is False


def test_a_row_inserted_behind_the_journal_before_a_journaled_batch_is_still_seen(store,
                                                                                  tmp_path):
    """The next journaled metric write folds every row above the run's mark into its
    summaries, the one inserted behind the journal's back too: its series' count then
    differs from the journal's, so the export rehashes it, and ``verify`` names the row."""
    store.sql("INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "
              "VALUES ('acc', 0.99, 2100, 100, 0, :run)")
    MlflowClient(store.uri).log_batch(store.run_id, metrics=[
        Metric("acc", step / 10, 4_000 + step, 20 + step) for step in range(5)])
    assert _export_claims(store, tmp_path / "after")[0] is False
    code, lines = verify(store.uri)
    assert code == 1 and any("metric 'acc' step 100" in line for line in lines), lines


# How the versions before the rowid marks kept the summaries: a trigger per inserted row.
_OLD_INSERT_TRIGGER = """CREATE TRIGGER prov_metric_series_insert AFTER INSERT ON metrics
BEGIN
    INSERT INTO prov_metric_series (run_uuid, key, count, first_step, last_step,
                                    first_timestamp, last_timestamp, min_value, max_value)
    VALUES (NEW.run_uuid, NEW.key, 1, NEW.step, NEW.step, NEW.timestamp, NEW.timestamp,
            CASE WHEN NEW.is_nan THEN NULL ELSE NEW.value END,
            CASE WHEN NEW.is_nan THEN NULL ELSE NEW.value END)
    ON CONFLICT (run_uuid, key) DO UPDATE SET
        count = count + 1,
        first_step = MIN(first_step, excluded.first_step),
        last_step = MAX(last_step, excluded.last_step),
        first_timestamp = MIN(first_timestamp, excluded.first_timestamp),
        last_timestamp = MAX(last_timestamp, excluded.last_timestamp),
        min_value = COALESCE(MIN(min_value, excluded.min_value), min_value, excluded.min_value),
        max_value = COALESCE(MAX(max_value, excluded.max_value), max_value, excluded.max_value);
END"""


def test_summaries_an_insert_trigger_kept_stay_watched_after_the_upgrade(store, tmp_path):
    """A store written by a version that kept the summaries with an insert trigger: opening it
    drops that trigger and sets each series' mark from its rows, keeping what was watched, so
    its exports still rehash nothing; later writes keep the counts."""
    store.sql("ALTER TABLE prov_metric_series DROP COLUMN last_rowid", _OLD_INSERT_TRIGGER)
    _reopen(store)
    assert _export_claims(store, tmp_path / "upgraded") == (True, False)
    MlflowClient(store.uri).log_batch(store.run_id, metrics=[
        Metric("acc", step / 10, 4_000 + step, 20 + step) for step in range(5)])
    assert _export_claims(store, tmp_path / "written") == (True, False)
    assert verify(store.uri)[0] == 0


def test_a_tamper_that_hides_from_the_triggers_needs_every_row_rehashed(store, tmp_path):
    """Who drops the summary triggers, edits a value and puts the triggers back leaves counts
    and change marks as they were: only rehashing every row (``--verify-metrics``, or
    ``mlflow-prov verify``) finds the edit, and the default export says it did not rehash."""
    from mlflow_prov import series_summaries

    _edit_unwatched(store, ("delete", "update"), *series_summaries._SQLITE_TRIGGERS)
    assert _export_claims(store, tmp_path / "default") == (True, False)
    assert _export_claims(store, tmp_path / "every", every_row=True) == (False, True)
    code, lines = verify(store.uri)
    assert code == 1 and any("metric 'acc' steps 0-9" in line for line in lines), lines


def test_an_edited_summary_row_is_found_when_every_row_is_rehashed(store, tmp_path):
    """Documents take a series' min/max from its summary row, which nothing protects: a
    summary edited together with its change mark passes the default export, and rehashing
    every row (``--verify-metrics``, ``verify``) compares each summary with its rows."""
    store.sql("UPDATE prov_metric_series SET max_value = 42, stale = 0 "
              "WHERE run_uuid = :run AND key = 'acc'")
    assert _export_claims(store, tmp_path / "default") == (True, False)
    assert _export_claims(store, tmp_path / "every", every_row=True) == (False, True)
    code, lines = verify(store.uri)
    assert code == 1 and lines[0] == (f"run {store.run_id} metric 'acc' summary: the stored "
                                      "summary says max_value 42.0 (rows: 0.9) (edited)"), lines


def test_a_store_older_than_its_summaries_has_every_back_filled_series_reread(store, tmp_path):
    """Points a store held before it kept summaries (here: summaries and triggers dropped, a
    value edited, the store opened again) were never watched: their series are back-filled
    as unwatched, and the export rehashes them."""
    from mlflow_prov import series_summaries

    _edit_unwatched(store, ("delete", "update"),
                    f"DROP TABLE {series_summaries.SUMMARY_TABLE}")
    _reopen(store)
    assert _export_claims(store, tmp_path / "after") == (False, True)


def test_summaries_rebuilt_after_their_triggers_went_missing_are_all_reread(store, tmp_path):
    """Triggers dropped and a value edited, then the store opened again: the summaries are
    rebuilt from the points, but nobody knows what happened meanwhile, so every rebuilt series
    is marked stale and the export rehashes it."""
    _edit_unwatched(store, ("update",))
    _reopen(store)
    assert _export_claims(store, tmp_path / "after") == (False, True)


def _edit_unwatched(store: Store, dropped: tuple[str, ...], *then: str) -> None:
    """Drop some summary triggers, edit metric 'acc' at step 3 while they are gone, then run
    ``then`` (statements that put things back), all behind MLflow's back."""
    from mlflow_prov import series_summaries

    engine = sa.create_engine(parse_prov_uri(store.uri).db_uri)
    try:
        with engine.begin() as connection:
            driver = connection.connection.driver_connection
            for name in dropped:
                driver.execute(f"DROP TRIGGER {series_summaries.SUMMARY_TABLE}_{name}")
            driver.execute(f"UPDATE metrics SET value = 0.5 WHERE run_uuid = '{store.run_id}' "
                           "AND key = 'acc' AND step = 3")
            for statement in then:
                driver.execute(statement)
    finally:
        engine.dispose()


def _reopen(store: Store) -> None:
    """Open the store again as the prov store does: the missing summaries are installed."""
    from mlflow_prov import series_summaries

    engine = sa.create_engine(parse_prov_uri(store.uri).db_uri)
    try:
        assert series_summaries.install(engine) is True
    finally:
        engine.dispose()


def _find(node: object, key: str) -> object:
    """The first value under ``key`` anywhere in a JSON document (bundles nest records)."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            if (found := _find(child, key)) is not None:
                return found
    return None


def test_a_journal_older_than_the_digests_gets_notes_not_failures(store):
    """Journals written before digests existed cannot prove MLflow's rows: verify says so on a
    ``note:`` line and still passes, rather than failing every old store."""
    from mlflow_prov.journal import canonical_json, event_hash

    engine = sa.create_engine(parse_prov_uri(store.uri).db_uri)
    try:
        with engine.begin() as connection:
            for row in connection.execute(sa.text("SELECT seq, payload FROM prov_journal")).all():
                payload = {key: value for key, value in json.loads(row.payload).items()
                           if key not in ("state", "digests")}
                connection.execute(sa.text("UPDATE prov_journal SET payload = :p WHERE seq = :s"),
                                   {"p": canonical_json(payload), "s": row.seq})
    finally:
        engine.dispose()
    _rehash(store, event_hash)
    _rehash(store, event_hash, f"experiment:{store.experiment_id}")
    code, lines = verify(store.uri)
    assert code == 0, lines
    assert any(line.startswith(f"note: run {store.run_id}: some metric events predate row "
                               "digests") for line in lines), lines


def test_an_unknown_run_or_experiment_is_named(store):
    code, lines = verify(store.uri, "--run", "0" * 32)
    assert code == 1 and lines[0] == f"run {'0' * 32}: no such run in MLflow's tables or the " \
                                      "journal (check the run id)"
    code, lines = verify(store.uri, "--experiment", "nope")
    assert code == 2 and "no experiment named 'nope'" in lines[-1]
    code, lines = verify(store.uri, "--experiment", "999")
    assert code == 1 and lines[0] == "experiment 999: no such experiment in MLflow's tables " \
                                     "or the journal (check the experiment id)", lines


def test_the_server_verify_api_reconciles_mlflow_rows_too(store, monkeypatch):
    """An export over HTTP takes ``journalIntact`` from ``/prov/api/verify``: an edited
    MLflow row must make it false there as it does for an export from the database."""
    import flask

    from exporters.app.permissions import OpenAccess
    from exporters.app.setup import install
    from exporters.compat import backend_store_env_var

    monkeypatch.setenv(backend_store_env_var(), store.uri)
    app = flask.Flask("prov-verify-test")
    install(app, OpenAccess())
    client = app.test_client()
    for query in (f"run_id={store.run_id}", f"experiment_id={store.experiment_id}"):
        assert client.get(f"/prov/api/verify?{query}").json["intact"] is True
    every = client.get(f"/prov/api/verify?run_id={store.run_id}").json
    changed = client.get(f"/prov/api/verify?run_id={store.run_id}&metrics=changed").json
    assert (every["metric_rows_rehashed"], changed["metric_rows_rehashed"]) == (True, False)
    store.sql("UPDATE params SET value = '0.9' WHERE run_uuid = :run AND key = 'lr'")
    for query in (f"run_id={store.run_id}", f"experiment_id={store.experiment_id}"):
        report = client.get(f"/prov/api/verify?{query}").json
        assert report["intact"] is False, report
        assert any("param 'lr'" in problem for problem in report["problems"]), report
