"""Every secret pattern runs in linear time: a hostile 1 MB value is scanned in well under a
second, so one huge tag cannot stall an export (a quadratic JWT pattern once took minutes)."""

from __future__ import annotations

import time

import pytest

from exporters.privacy import HOME_PATH, REDACTED, redact
from mlflow_prov import environment, vocabulary

SIZE = 1_000_000
ADVERSARIAL = {
    "sk-": "sk-" * (SIZE // 3),
    "eyJ-": "eyJ-" * (SIZE // 4),
    "url-tail": "a" * SIZE + "://",
    "xoxb-": "xoxb-" * (SIZE // 5),
    "ghp_": "ghp_" * (SIZE // 4),
    "AKIA": "AKIA" * (SIZE // 4),
    "bearer": "bearer " * (SIZE // 7),
    "begin": "-----BEGIN " * (SIZE // 11),
    "jwt-ish": ("eyJ" + "a" * 8 + ".") * (SIZE // 12),
    "userinfo": "://" + "a:" * (SIZE // 2),
    "schemes": "://a:" * (SIZE // 5),
    "assignments": "password " * (SIZE // 9),
    "homes": "/home/" * (SIZE // 6),
    "spaces": " " * SIZE,
    "camel": "aA" * (SIZE // 2),
}
PATTERNS = (*vocabulary.CREDENTIAL_VALUE_PATTERNS, vocabulary.URL_USERINFO,
            vocabulary.KEY_WORD_BOUNDARY, HOME_PATH)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_every_pattern_is_linear_on_hostile_megabytes(name):
    value = ADVERSARIAL[name]
    slowest = 0.0
    for pattern in PATTERNS:
        started = time.perf_counter()
        pattern.search(value)
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 1.0, f"a pattern took {slowest:.2f} s on {name!r}"


@pytest.mark.parametrize("value", [
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "x sk-" + "a" * 40,
    "--password=hunter2", "my_pwd: x", "xoxb-0123456789-abc"])
def test_linear_patterns_still_find_credentials(value):
    assert redact({"note": value})["note"] == REDACTED


@pytest.mark.parametrize("value", ["eyJ-" * 10, "max_tokens=512", "tokenizer: bpe", "0.01"])
def test_look_alikes_are_kept(value):
    assert redact({"note": value})["note"] == value


def test_capture_and_export_redact_alike():
    values = [*(v[:10_000] for v in ADVERSARIAL.values()), "--password=hunter2",
              "ghp_" + "a" * 36, "resnet50", "https://u:pw@host/x", "tcp://token@10.0.0.1:29500"]
    for value in values:
        captured = environment.capture_environment({"SLURM_JOB_NAME": value})["variables"]
        assert captured["SLURM_JOB_NAME"] == redact({"note": value})["note"]

