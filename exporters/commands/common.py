"""Options and helpers shared by the question commands (log, lineage, plot, convert, collect)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

tracking_uri_option: Callable[[Any], Any] = click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
    help="MLflow tracking URI (prov:///dir, sqlite:///x.db, http://host:port, ...).")


def one_line(message: str, fallback: str = "failed") -> str:
    """Errors are reported on one line (the first line of the reason)."""
    stripped = message.strip()
    return stripped.splitlines()[0] if stripped else fallback
