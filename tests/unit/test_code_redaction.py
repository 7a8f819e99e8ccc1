"""What the code capture keeps of a command line and a remote URL: everything but secrets."""

from __future__ import annotations

import pytest

from mlflow_prov.code_capture import redact_command, redact_remote
from mlflow_prov.vocabulary import REDACTED


@pytest.mark.parametrize(("argv", "shown"), [
    (["train.py", "--password", "hunter2", "--lr", "0.1"],
     ["train.py", "--password", REDACTED, "--lr", "0.1"]),
    (["train.py", "--api-key=abc123", "--db_password", "x", "--epochs=3"],
     ["train.py", f"--api-key={REDACTED}", "--db_password", REDACTED, "--epochs=3"]),
    (["train.py", "--data", "https://u:pw@data.example.org/set.csv"],
     ["train.py", "--data", "https://data.example.org/set.csv"]),
    (["train.py", "--header", "Bearer abcdefghijklmnopqrstuvwx"],
     ["train.py", "--header", REDACTED]),
    (["train.py", "-p", "hunter2", "--pass", "x", "--wandb_key", "0123456789abcdef" * 2,
      "--key=k"],
     ["train.py", "-p", REDACTED, "--pass", REDACTED, "--wandb_key", REDACTED,
      f"--key={REDACTED}"]),
    (["train.py", "--max-tokens", "512", "--tokenizer", "bpe"],  # no secret by name
     ["train.py", "--max-tokens", "512", "--tokenizer", "bpe"]),
])
def test_a_command_line_keeps_everything_but_secrets(argv, shown):
    assert redact_command(argv) == shown


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:secret@git.example.org/team/x.git", "https://git.example.org/team/x.git"),
    ("https://oauth2:glpat-abcdefghijklmnopqrstu@gitlab.com/x.git", "https://gitlab.com/x.git"),
    ("https://git.example.org:8443/x.git?private_token=abc#frag",
     "https://git.example.org:8443/x.git"),
    ("ssh://git:pw@host/x.git", "ssh://host/x.git"),
    ("git@github.com:team/x.git", "git@github.com:team/x.git"),  # a login name, no secret
])
def test_a_remote_loses_what_could_authenticate(url, shown):
    assert redact_remote(url) == shown


def test_a_pseudonymised_export_names_no_home_folder_in_the_command():
    from datetime import UTC, datetime

    from exporters.privacy import Pseudonymizer
    from exporters.prov_code import pseudonymised_code
    from exporters.records import HistoryEvent, RunRecord
    from mlflow_prov.vocabulary import EventKind

    created = HistoryEvent(1, datetime(2026, 1, 1, tzinfo=UTC), EventKind.RUN_CREATED,
                           {"code": {"command": ["/home/alice/env/bin/python",
                                                 "/home/alice/train.py", "--lr", "0.1"]}}, {})
    run = RunRecord(run_id="r", name="r", experiment_id="1", status="FINISHED",
                    lifecycle_stage="active", start_time=None, end_time=None, user="alice",
                    artifact_uri="file:///x", history=(created,))
    assert pseudonymised_code(run, Pseudonymizer(False)) is run
    command = pseudonymised_code(run, Pseudonymizer(True)).history[0].payload["code"]["command"]
    assert "alice" not in " ".join(command) and command[2:] == ["--lr", "0.1"]
    assert command[0].startswith("/home/user-") and command[0].endswith("/env/bin/python")
