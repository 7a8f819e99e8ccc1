"""``mlflow-prov`` command line: a click group whose commands load only when they are run.

One module per command under :mod:`exporters.commands`; this file only names them. Loading
a command lazily keeps ``mlflow-prov --help`` from importing MLflow (over a second of
start-up) just to print a list. Add a command by writing ``exporters/commands/<name>.py``
with a click command and one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "export": "exporters.commands.export:export_command",
    "import-yprov4ml": "exporters.commands.import_yprov4ml:import_yprov4ml_command",
    "ui": "exporters.commands.ui:ui_command",
    "verify": "exporters.commands.verify:verify_command",
    "prove": "exporters.commands.prove:prove_command",
    "lineage": "exporters.commands.lineage:lineage_command",
    "convert": "exporters.commands.convert:convert_command",
    "collect": "exporters.commands.collect:collect_command",
    "log": "exporters.commands.log:log_command",
    "plot": "exporters.commands.plot:plot_command",
    "openlineage": "exporters.commands.openlineage:openlineage_command",
    "query": "exporters.commands.query:query_command",
    "seal": "exporters.commands.seal:seal_command",
    "unseal": "exporters.commands.seal:unseal_command",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command), target
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="mlflow-prov", prog_name="mlflow-prov")
def main() -> None:
    """mlflow-prov: W3C PROV provenance for MLflow experiments."""


if __name__ == "__main__":  # python -m exporters.cli, where the console script is not on PATH
    main()
