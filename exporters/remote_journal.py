"""The journal of a remote ``mlflow server --app-name prov``, read through ``/prov/api/``.

Why: an export from ``http://…`` sees only what MLflow's REST API serves, which has no
history. When the server runs the ``prov`` (or ``prov-auth``) app, its journal API returns
the same events the database holds, so the document from a server equals the one from the
database. A server without the app answers 404 there: the export then says
``historyAvailable false``, as before.

Credentials are MLflow's own: ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` or
``MLFLOW_TRACKING_TOKEN``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import requests

from exporters.errors import ReaderError
from mlflow_prov.journal import JournalEvent, JournalUnavailableError
from mlflow_prov.vocabulary import parse_kind

API_PATH = "/prov/api"
PAGE_SIZE = 1000
TIMEOUT_SECONDS = 120


def is_http(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def _credentials() -> dict[str, Any]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"headers": {"Authorization": f"Bearer {token}"}}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return {"auth": (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))}
    return {}


def _get(base_url: str, route: str, params: dict[str, Any]) -> dict[str, Any]:
    """One API call; 404 means "no journal here", other failures name the fix."""
    url = f"{base_url.rstrip('/')}{API_PATH}/{route}"
    try:
        response = requests.get(url, params=params, timeout=TIMEOUT_SECONDS, **_credentials())
    except requests.RequestException as exc:
        raise ReaderError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 404:
        raise JournalUnavailableError(f"{base_url} serves no provenance journal "
                                      "(start it with mlflow server --app-name prov)")
    if response.status_code in (401, 403):
        raise ReaderError(f"{base_url} refused the journal ({response.status_code}): set "
                          "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD of a user "
                          "with READ permission on the experiment")
    if not response.ok:
        raise ReaderError(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response.json()


def _event(data: dict[str, Any]) -> JournalEvent:
    return JournalEvent(seq=data["seq"], time_us=data["time_us"], chain=data["chain"],
                        experiment_id=data["experiment_id"], run_id=data["run_id"],
                        kind=parse_kind(data["kind"]), payload=data["payload"],
                        writer=data["writer"], prev_hash=data["prev_hash"], hash=data["hash"])


def read_remote_events(base_url: str, experiment_id: str) -> Iterator[JournalEvent]:
    """The experiment's events (its own and its runs') in write order, page by page.
    Raises :class:`JournalUnavailableError` when the server has no journal API."""
    token = None
    while True:
        params = {"experiment_id": experiment_id, "page_size": PAGE_SIZE,
                  **({"page_token": token} if token else {})}
        page = _get(base_url, "events", params)
        yield from (_event(item) for item in page["events"])
        token = page.get("next_page_token")
        if not token:
            return


def remote_chain_intact(base_url: str, run_id: str, *,
                        every_metric_row: bool) -> tuple[bool, bool]:
    """Whether the server verifies the run's hash chain and MLflow's rows of the run, and
    whether it rehashed every metric row (``every_metric_row=False`` lets it read only the
    series its summaries mark changed)."""
    found = _get(base_url, "verify", {"run_id": run_id,
                                      **({} if every_metric_row else {"metrics": "changed"})})
    return bool(found["intact"]), bool(found.get("metric_rows_rehashed", True))


def remote_chain_head(base_url: str, run_id: str) -> tuple[int, str | None] | None:
    """The run chain's head (length, last hash) as the server's store has it, or ``None``."""
    found = _get(base_url, "head", {"run_id": run_id})
    return (found["length"], found["last_hash"]) if found["length"] is not None else None
