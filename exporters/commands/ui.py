"""``mlflow-prov ui``: MLflow's server with the provenance pages, on this machine.

One word for ``mlflow server --app-name prov --backend-store-uri URI --host 127.0.0.1``:
MLflow's UI at ``/``, the pages at ``/prov/``, the journal API at ``/prov/api/``.
"""

from __future__ import annotations

import subprocess
import sys

import click

UI_EXAMPLES = """
\b
Examples:
  mlflow-prov ui --backend-store-uri prov:///data/runs
  mlflow-prov ui --backend-store-uri prov+postgresql://me@db/mlflow --port 5001
  mlflow-prov ui --backend-store-uri prov:///data/runs --auth   # MLflow basic-auth too

\b
Then open http://127.0.0.1:5000/prov/ (lineage, audit timelines) or / (MLflow's UI).
"""


def server_command(backend_store_uri: str, host: str, port: int, workers: int,
                   auth: bool) -> list[str]:
    """The ``mlflow server`` command line this command runs."""
    return [sys.executable, "-m", "mlflow", "server",
            "--app-name", "prov-auth" if auth else "prov",
            "--backend-store-uri", backend_store_uri, "--host", host, "--port", str(port),
            "--workers", str(workers)]


def check_store(backend_store_uri: str) -> None:
    """Refuse, in one line, a URI that is not an existing prov store: the pages would have
    no journal to show, and a mistyped ``prov:///`` path would become a new, empty store."""
    from mlflow_prov.journal import JournalUnavailableError, require_existing_store

    if not backend_store_uri.split(":", 1)[0].startswith("prov"):
        raise click.BadParameter(f"{backend_store_uri!r} is not a prov store; the pages read "
                                 "its journal (prov:///dir, prov+postgresql://…)",
                                 param_hint="--backend-store-uri")
    try:
        require_existing_store(backend_store_uri)
    except JournalUnavailableError as exc:
        raise click.BadParameter(str(exc), param_hint="--backend-store-uri") from exc


@click.command("ui", epilog=UI_EXAMPLES)
@click.option("--backend-store-uri", required=True, envvar="MLFLOW_TRACKING_URI",
              show_envvar=True, help="The prov store to serve (prov:///dir, prov+postgresql://…).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (only this machine by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server worker processes.")
@click.option("--auth", is_flag=True,
              help="Serve MLflow's basic-auth app with the pages (--app-name prov-auth).")
def ui_command(backend_store_uri: str, host: str, port: int, workers: int, auth: bool) -> None:
    """Serve MLflow's UI plus the provenance pages (/prov/) for a prov store."""
    check_store(backend_store_uri)
    click.echo(f"provenance pages: http://{host}:{port}/prov/  (MLflow UI: http://{host}:{port}/)")
    try:
        code = subprocess.call(server_command(backend_store_uri, host, port, workers, auth))
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)
