"""``mlflow-prov ui``: MLflow's server with the provenance pages, on this machine.

One word for ``mlflow server --app-name prov --backend-store-uri URI --host 127.0.0.1``:
MLflow's UI at ``/``, the pages at ``/prov/``, the journal API at ``/prov/api/``. The server
runs in a process group of its own: SIGTERM, SIGINT (Ctrl-C) or SIGHUP sent to this command
stop the whole group (uvicorn's workers included) and leave nothing holding the port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import click

from exporters.process_group import (
    StopRequests,
    end_group,
    start_in_own_group,
    stop_signals_forwarded,
    wait_for_leader,
)

UI_EXAMPLES = """
\b
Examples:
  mlflow-prov ui --backend-store-uri prov:///data/runs
  mlflow-prov ui --backend-store-uri prov+postgresql://me@db/mlflow --port 5001
  mlflow-prov ui --backend-store-uri prov:///data/runs --auth   # MLflow basic-auth too

\b
It prints the address to open (http://127.0.0.1:5000/prov/ for lineage and audit
timelines, / for MLflow's UI) once the server answers. Ctrl-C or SIGTERM stops it.
"""

STOP_GRACE_SECONDS = 20
PROBE_INTERVAL_SECONDS = 0.5
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
        require_existing_store(backend_store_uri, for_another_process=True)
    except JournalUnavailableError as exc:
        raise click.BadParameter(str(exc), param_hint="--backend-store-uri") from exc


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one line, a port something already listens on: the server would fail to
    bind, and the address printed would be the other program's."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.BadParameter(f"cannot listen on {host}:{port} "
                                     f"({error.strerror or error}); choose another with --port",
                                     param_hint="--port") from None


def base_url(host: str, port: int) -> str:
    """The address a browser on this machine opens: a wildcard host listens on loopback too,
    and an IPv6 literal needs brackets in a URL."""
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` at all (a 401 under ``--auth`` is an answer);
    proxies from the environment are bypassed, the server is on this machine's address."""
    try:
        NO_PROXY.open(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def answered_before_exit(server: subprocess.Popen[bytes], url: str,
                         stops: StopRequests) -> bool:
    """Probe ``url`` until the server answers (True), or it exits or a stop arrives first."""
    while server.poll() is None and not stops.signals:
        if answers(url):
            return True
        time.sleep(PROBE_INTERVAL_SECONDS)
    return False


def exit_status(server_code: int, stopped_on_request: bool) -> int:
    """0 after a requested stop; otherwise the server's status, a signal's death as 128+N."""
    if stopped_on_request:
        return 0
    return 128 - server_code if server_code < 0 else server_code


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
    check_port_free(host, port)
    base = base_url(host, port)
    click.echo(f"starting MLflow server on {host}:{port} …")
    with stop_signals_forwarded() as stops:
        server = start_in_own_group(server_command(backend_store_uri, host, port, workers, auth))
        stops.attach(server.pid)
        if answered_before_exit(server, f"{base}/health", stops):
            click.echo(f"provenance pages: {base}/prov/  (MLflow UI: {base}/)")
        code = wait_for_leader(server, stops, STOP_GRACE_SECONDS)
        end_group(server.pid, STOP_GRACE_SECONDS)
    sys.exit(exit_status(code, bool(stops.signals)))
