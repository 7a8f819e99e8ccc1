"""``mlflow-prov seal`` and ``mlflow-prov unseal``: protect a run, a model version or a whole
experiment from later writes, and lift that protection, each journaled with who and why.

On a prov store the command seals through :func:`mlflow_prov.seals.seal` (capture's API:
the exporters never write the journal). Through ``mlflow server --app-name prov`` or
``prov-auth`` (an ``http(s)://`` tracking URI) it asks the server's ``/prov/api/seal``, which
behind ``prov-auth`` lets only users with MANAGE permission seal.
"""

from __future__ import annotations

from typing import Any

import click

from exporters.commands.common import one_line, tracking_uri_option

SEAL_EXAMPLES = """
\b
Examples:
  mlflow-prov seal runs:/1a2b3c... --reason "published in the paper" --tracking-uri prov:///data/runs
  mlflow-prov seal models:/churn/3 --reason "approved for production"
  mlflow-prov seal --experiment baseline --reason "frozen for the audit"
  mlflow-prov unseal models:/churn/3 --reason "retrained: ticket 42"

\b
Every later write to a sealed object (tags, params, metrics, status, deletion; a version's
tags, aliases, description, stage, deletion) fails with MLflow's INVALID_STATE error, and the
refused attempt is journaled. Through mlflow server the URI is http(s)://HOST:PORT, and the
user (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) needs MANAGE permission.
"""
SEAL_PATH = "/prov/api/seal"
UNSEAL_PATH = "/prov/api/unseal"
REQUEST_SECONDS = 60


def _command(name: str, sealing: bool) -> click.Command:
    verb = "Seal" if sealing else "Unseal"

    @click.command(name, epilog=SEAL_EXAMPLES)
    @tracking_uri_option
    @click.argument("target", required=False)
    @click.option("--experiment", help=f"{verb} this experiment (name or id) and its runs.")
    @click.option("--reason", required=True, help="Why (kept in the journal with who and when).")
    def command(tracking_uri: str | None, target: str | None, experiment: str | None,
                reason: str) -> None:
        if not tracking_uri:
            raise click.UsageError("no store: pass --tracking-uri prov:///dir "
                                   "or set MLFLOW_TRACKING_URI")
        if (target is None) == (experiment is None):
            raise click.UsageError("name one target: runs:/RUN_ID, models:/NAME/VERSION, "
                                   "or --experiment NAME_OR_ID")
        for change in _apply(tracking_uri, target, experiment, reason, sealing):
            click.echo(_describe(change, sealing))

    command.help = (f"{verb} TARGET (runs:/RUN_ID or models:/NAME/VERSION) or an experiment: "
                    + ("later writes to it are refused." if sealing
                       else "writes to it are accepted again."))
    return command


def _apply(tracking_uri: str, target: str | None, experiment: str | None, reason: str,
           sealing: bool) -> list[dict[str, Any]]:
    """Each object's change, as the store (or the server) reports it."""
    from mlflow.exceptions import MlflowException

    try:
        resolved = target or f"experiments:/{_experiment_id(tracking_uri, experiment or '')}"
        if tracking_uri.startswith(("http://", "https://")):
            return _over_http(tracking_uri, resolved, reason, sealing)
        from mlflow_prov.journal import JournalUnavailableError, require_existing_store
        from mlflow_prov.seals import SealTargetError, seal, unseal

        try:
            require_existing_store(tracking_uri)
            changes = (seal if sealing else unseal)(tracking_uri, resolved, reason)
        except (JournalUnavailableError, SealTargetError) as error:
            raise click.ClickException(one_line(str(error))) from error
    except MlflowException as error:
        raise click.ClickException(one_line(error.message)) from error
    return [{"target": c.target, "changed": c.changed, "seal": c.record} for c in changes]


def _experiment_id(tracking_uri: str, experiment: str) -> str:
    """An experiment named by name or id, as its id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        found = client.get_experiment(experiment)
    if found is None:
        raise click.ClickException(f"no experiment named {experiment!r} in {tracking_uri}; "
                                   "check the name or pass its id")
    return str(found.experiment_id)


def _over_http(server: str, target: str, reason: str, sealing: bool) -> list[dict[str, Any]]:
    """Ask the server's ``/prov/`` app, with MLflow's basic-auth credentials if set."""
    import os

    import requests

    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None
    url = server.rstrip("/") + (SEAL_PATH if sealing else UNSEAL_PATH)
    try:
        answer = requests.post(url, json={"target": target, "reason": reason}, auth=auth,
                               timeout=REQUEST_SECONDS)
    except requests.RequestException as error:
        raise click.ClickException(f"cannot reach {url}: {one_line(str(error))}") from error
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else None
        raise click.ClickException(
            f"{url} answered {answer.status_code}: "
            f"{one_line(str(message or answer.text), 'no reason given')} (is the server "
            "started with --app-name prov or prov-auth?)")
    return list(body.get("changes", []))


def _describe(change: dict[str, Any], sealing: bool) -> str:
    seal = change.get("seal") or {}
    if not change.get("changed") and sealing:
        return f"{change['target']}: already sealed by {_who(seal)} ({seal.get('why')!r})"
    if not change.get("changed"):
        return (f"{change['target']}: still sealed by its own seal (lift it with: mlflow-prov "
                f"unseal {change['target']} --reason TEXT)" if seal
                else f"{change['target']}: not sealed (nothing to unseal)")
    if sealing:
        return f"sealed {change['target']} ({_who(seal)}, {seal.get('when')})"
    return f"unsealed {change['target']}"


def _who(seal: dict[str, Any]) -> str:
    from mlflow_prov.seals import who_text

    return who_text(seal.get("who") or {})


seal_command = _command("seal", sealing=True)
unseal_command = _command("unseal", sealing=False)
