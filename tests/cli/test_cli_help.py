"""Every command answers --help (with examples); failures exit non-zero with one line."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from exporters.cli import main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", all_commands(main), ids=lambda c: " ".join(c) or "main")
def test_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_export_help_has_examples():
    result = CliRunner().invoke(main, ["export", "--help"])
    assert "Examples:" in result.output and "--format" in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "mlflow-prov" in result.output


def test_the_cli_runs_as_a_module_where_the_script_is_not_on_path():
    done = subprocess.run([sys.executable, "-m", "exporters.cli", "--version"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mlflow-prov, version ")


def test_unknown_experiment_fails_with_one_line(tmp_path):
    from mlflow import MlflowClient
    from store_templates import sqlite_store

    uri = sqlite_store(tmp_path / "mlflow.db")
    MlflowClient(uri).create_experiment("present")
    result = CliRunner().invoke(main, ["export", "--tracking-uri", uri, "--experiment", "nope",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: no experiment named or numbered 'nope' in {uri}; "
                      "experiments there: present (1), Default (0)"]


def test_unknown_format_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["export", "--experiment", "x", "--out", str(tmp_path),
                                       "--format", "prov-json,pdf"])
    assert result.exit_code == 2 and "pdf" in result.output


def test_cli_export_writes_files(sqlite_experiment, tmp_path):
    result = CliRunner().invoke(main, ["export", "--tracking-uri", sqlite_experiment.tracking_uri,
                                       "--experiment", sqlite_experiment.experiment_id,
                                       "--out", str(tmp_path), "--format", "prov-json"])
    assert result.exit_code == 0, result.output
    assert "exported 5 run(s)" in result.output
    assert len(list(tmp_path.rglob("prov.json"))) == 5


def test_missing_graphviz_names_the_package(sqlite_experiment, tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    result = CliRunner().invoke(main, ["export", "--tracking-uri", sqlite_experiment.tracking_uri,
                                       "--experiment", sqlite_experiment.experiment_id,
                                       "--out", str(tmp_path), "--format", "svg"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "apt-get install graphviz" in errors[0]


def test_a_mistyped_prov_path_is_an_error_and_creates_nothing(tmp_path):
    from click.testing import CliRunner

    from exporters.cli import main

    missing = tmp_path / "no-such-store"
    result = CliRunner().invoke(main, ["export", "--tracking-uri", f"prov://{missing}",
                                       "--experiment", "mnist", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"no prov store at {missing}" in result.output
    assert not missing.exists()


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


def test_a_malformed_prov_uri_is_one_line_naming_the_accepted_forms(tmp_path):
    result = CliRunner().invoke(main, ["export", "--tracking-uri", "prov://data/runs",
                                       "--experiment", "x", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    [error] = _errors(result.output)
    assert "prov:///data/runs" in error and "prov:relative/dir" in error
    assert "prov+postgresql://" in error


def test_a_linked_unreadable_artifact_is_recorded_as_skipped(tmp_path):
    """A link to ``/proc/self/mem`` (which no one can read from offset 0, even root) is not
    followed: the artifact is recorded with ``mlflowprov:skipped`` and the run still exports."""
    from mlflow_runs import client_for, new_run

    client = client_for(tmp_path)
    run_id = new_run(client, "unreadable", tmp_path)
    artifact_dir = tmp_path / "artifacts" / run_id / "artifacts"
    artifact_dir.mkdir(parents=True)
    (artifact_dir / "broken.bin").symlink_to("/proc/self/mem")
    result = CliRunner().invoke(main, ["export", "--tracking-uri", client.tracking_uri,
                                       "--experiment", "unreadable", "--out",
                                       str(tmp_path / "out"), "--format", "prov-json"])
    assert result.exit_code == 0, result.output
    document = next((tmp_path / "out").rglob("prov.json")).read_text()
    assert '"mlflowprov:skipped": "symbolic link, not followed"' in document
    assert "broken.bin" in document


def test_missing_graphviz_fails_before_writing_anything(sqlite_experiment, tmp_path,
                                                        monkeypatch):
    """A PATH without ``dot``: the export stops before reading runs, so no partial output."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--tracking-uri", sqlite_experiment.tracking_uri,
                                       "--experiment", sqlite_experiment.experiment_id,
                                       "--out", str(out), "--format", "prov-json,svg",
                                       "--metrics-format", "csv"])
    assert result.exit_code == 1
    [error] = _errors(result.output)
    assert "Graphviz" in error
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
