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
