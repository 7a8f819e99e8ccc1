"""The heads a process remembers (mlflow_prov/journal.py, ``_KnownHeads``) never fork a chain:
a rolled-back transaction's heads are forgotten, and a head another process moved makes the
compare-and-swap miss and the writer read the head under lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from store_templates import prov_store

from exporters.cli import main
from mlflow_prov.journal import append_event, now_us, verify_chain
from mlflow_prov.vocabulary import EventKind, run_chain


def _intact(uri: str, run_id: str, length: int) -> None:
    report = verify_chain(uri, run_chain(run_id))
    assert report.intact and report.length == length, report


def test_a_rolled_back_append_leaves_no_head_behind(tmp_path):
    uri = prov_store(tmp_path / "store")
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("heads")).info.run_id
    client.set_tag(run_id, "a", "1")
    store = client._tracking_client.store
    with pytest.raises(Exception, match="give up"):  # MLflow's session wraps it
        with store.ManagedSessionMaker(read_only=False) as session:
            append_event(session, chain=run_chain(run_id), kind=EventKind.RUN_TAGS_SET,
                         experiment_id=None, run_id=run_id, payload={"tags": {"x": "y"}},
                         writer={"test": True}, time_us=now_us())
            raise RuntimeError("give up")
    for value in ("2", "3"):
        client.set_tag(run_id, "a", value)
    _intact(uri, run_id, 4)  # created, three tag events: the rolled-back one is gone


@pytest.mark.slow  # a second Python process
def test_writers_in_two_processes_taking_turns_keep_one_chain(tmp_path):
    uri = prov_store(tmp_path / "store")
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("turns")).info.run_id
    other = textwrap.dedent(f"""
        from mlflow import MlflowClient
        MlflowClient({uri!r}).set_tag({run_id!r}, "from", "other")
    """)
    for turn in range(3):
        client.set_tag(run_id, "from", f"this-{turn}")  # this process's head is now stale
        subprocess.run([sys.executable, "-c", other], check=True, capture_output=True)
    client.set_tag(run_id, "from", "this-last")
    _intact(uri, run_id, 8)
    result = CliRunner().invoke(main, ["verify", "--tracking-uri", uri])
    assert result.exit_code == 0 and "0 problem(s)" in result.output, result.output
