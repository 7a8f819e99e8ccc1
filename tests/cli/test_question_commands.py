"""The question commands (log, lineage, plot, convert, collect) show examples in --help and
name the tracking-URI environment variable where they read a store."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from exporters.cli import main

STORE_READERS = ("log", "lineage", "plot")


@pytest.mark.parametrize("name", [*STORE_READERS, "convert", "collect"])
def test_help_has_examples_of_the_command_itself(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"mlflow-prov {name} " in result.output.split("Examples:")[1]
    if name in STORE_READERS:
        assert "MLFLOW_TRACKING_URI" in result.output


def test_missing_arguments_are_usage_errors():
    for args in (["plot", "--out", "x"], ["convert", "a.json", "--out", "b"], ["collect"],
                 ["lineage"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "Missing" in result.output, args
