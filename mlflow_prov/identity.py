"""Who made a write: the process (user, host, pid, rank) or, behind ``mlflow server``, the client.

Client side, the writer is this process. Server side, the store runs in the server, so the
process identity would name the server for every client: the server records the socket
address it saw (``client_address``) and itself (``via``). A client may also announce its
user, host, pid and rank in one request header (sent by :class:`ClientIdentityHeaderProvider`,
an ``mlflow.request_header_provider`` entry point), but only when
``MLFLOW_PROV_SEND_CLIENT_IDENTITY=true``: an installed plugin must not tell every MLflow
server it talks to (hosted ones included) who and where its user is. The announced fields
are claims, not authentication; the address is the only fact the server observes.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import socket
import threading
from typing import Any

from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

CLIENT_HEADER = "X-MLflow-Prov-Client"
SEND_IDENTITY_VARIABLE = "MLFLOW_PROV_SEND_CLIENT_IDENTITY"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")
_MAX_HEADER_CHARS = 1024
_CLAIM_FIELDS = ("user", "host", "pid", "rank", "local_rank", "slurm_procid")


@functools.cache
def _user_and_host() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        user = f"uid-{os.getuid()}"
    return user, socket.gethostname()


def process_identity() -> dict[str, Any]:
    """This process's identity; pid and rank are read each time (forks, late RANK exports)."""
    user, host = _user_and_host()
    identity: dict[str, Any] = {"user": user, "host": host, "pid": os.getpid()}
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable)
        if value is not None and value.strip().lstrip("-").isdigit():
            identity[variable.lower()] = int(value)
    if "rank" not in identity:
        fallback = identity.get("slurm_procid", identity.get("local_rank"))
        if fallback is not None:
            identity["rank"] = fallback
    return identity


def serving_request() -> bool:
    """True while this thread serves an HTTP request (the store runs inside mlflow server)."""
    try:
        from flask import has_request_context
    except ImportError:
        return False
    return has_request_context()


def writer_identity() -> dict[str, Any]:
    """The identity to journal for the write being made in this thread. The thread is part of
    it (the serving thread behind ``mlflow server``): two writers racing on one key are
    told apart from one writer, which cannot race itself (``exporters/replay.py``)."""
    request_client = _request_client()
    thread = threading.get_native_id()
    if request_client is None:
        return {**process_identity(), "thread": thread}
    server = process_identity()
    return {**request_client, "via": {"host": server["host"], "pid": server["pid"],
                                      "thread": thread}}


def _request_client() -> dict[str, Any] | None:
    """The client of the HTTP request this thread is serving, if any (Flask context)."""
    if not serving_request():
        return None
    from flask import request

    claims = _parse_claims(request.headers.get(CLIENT_HEADER, ""))
    return {**claims, "client_address": request.remote_addr}


def _parse_claims(header: str) -> dict[str, Any]:
    """Decode the client's header defensively: unknown fields and bad JSON are dropped."""
    if not header or len(header) > _MAX_HEADER_CHARS:
        return {}
    try:
        decoded = json.loads(header)
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {key: decoded[key] for key in _CLAIM_FIELDS if _is_claim_value(decoded.get(key))}


def _is_claim_value(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


class ClientIdentityHeaderProvider(RequestHeaderProvider):
    """Adds this process's identity to the REST requests MLflow sends, when asked to."""

    def in_context(self) -> bool:
        return os.environ.get(SEND_IDENTITY_VARIABLE, "").strip().lower() in ("1", "true", "yes")

    def request_headers(self) -> dict[str, str]:
        return {CLIENT_HEADER: json.dumps(process_identity(), ensure_ascii=True)}
