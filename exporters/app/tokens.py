"""Page tokens the ``/prov/`` routes hand out: signed, so that only tokens this server
issued are read back.

Why sign them: a page token carries where the next page starts (a journal sequence number,
or MLflow's own search token for the experiment and run lists). Read unsigned, a forged token
reaches the database (an offset of 10**30 overflows a 32-bit column on PostgreSQL) or MLflow's
token parser, which fails deep inside. Signed with an HMAC, a token is either exactly one this
server made for this listing, or a 400 naming ``page_token``; a signature also binds the
token to the listing it pages (a run list's token is refused by the experiment list).

Every worker of a server, and every server of a store behind one address, must sign with the
same secret, or a token issued by one is refused by the next: see :func:`page_token_secret`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

PAGE_TOKEN_SECRET_ENV = "MLFLOW_PROV_PAGE_TOKEN_SECRET"
FLASK_SECRET_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # MLflow's own server secret
SALT = "mlflow-prov page token"  # keeps these signatures apart from MLflow's uses of a secret
MAX_TOKEN_LENGTH = 4096
SECRET_BYTES = 32

_log = logging.getLogger(__name__)


class PageTokenError(ValueError):
    """A page token this server did not issue for this listing."""


def secret_file(tracking_uri: str) -> Path:
    """Where a server keeps the secret it generated for ``tracking_uri``: the user's cache
    folder (``$XDG_CACHE_HOME`` or ``~/.cache``), one file per store."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(tracking_uri.encode("utf-8")).hexdigest()[:16]
    return Path(cache) / "mlflow-prov" / f"page-token-{digest}.key"


def _shared_generated_secret(path: Path) -> bytes:
    """The secret in ``path``, made once (random, mode 0600) by whichever worker comes
    first: written to a private temporary file and linked into place, so that a worker
    reading at the same moment sees a whole secret or none, and every worker ends up with
    the first one linked."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".page-token-")
        try:
            with os.fdopen(handle, "wb") as output:
                output.write(secrets.token_bytes(SECRET_BYTES))
            os.link(temporary, path)
        except FileExistsError:
            pass  # another worker linked its secret first: read that one
        finally:
            os.unlink(temporary)
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise OSError(f"{path} holds {len(secret)} bytes, not a {SECRET_BYTES}-byte secret")
    return secret


def page_token_secret(tracking_uri: str) -> bytes:
    """The key page tokens are signed with, the same in every worker of a server:

    1. ``MLFLOW_PROV_PAGE_TOKEN_SECRET``, when set (set it alike on every server behind one
       address, or on servers that do not share a home folder);
    2. else ``MLFLOW_FLASK_SERVER_SECRET_KEY``, MLflow's server secret (basic-auth
       deployments set it), separated from MLflow's own uses by the signer's salt;
    3. else a random secret generated once per store and kept in the user's cache folder
       (:func:`secret_file`), which every worker of the server reads;
    4. where that folder cannot be written, a secret of this process alone (logged: tokens
       then work only on the worker that issued them).
    """
    configured = os.environ.get(PAGE_TOKEN_SECRET_ENV) or os.environ.get(FLASK_SECRET_ENV)
    if configured:
        return configured.encode("utf-8")
    path = secret_file(tracking_uri)
    try:
        return _shared_generated_secret(path)
    except OSError as exc:
        _log.warning("page tokens: cannot keep a shared secret at %s (%s); tokens will work "
                     "only on the worker that issued them: set %s", path, exc,
                     PAGE_TOKEN_SECRET_ENV)
        return secrets.token_bytes(SECRET_BYTES)


class PageTokens:
    """Issues and reads the page tokens of one server: each token names its listing."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeSerializer(
            secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def issue(self, listing: str, position: Any) -> str:
        """A token for the page of ``listing`` that starts after ``position`` (JSON)."""
        return self._serializer.dumps([listing, position])

    def read(self, listing: str, token: str) -> Any:
        """The position a token of ``listing`` carries; PageTokenError for anything else."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise PageTokenError(f"it is {len(token)} characters long; this server's tokens "
                                 f"are shorter than {MAX_TOKEN_LENGTH}")
        try:
            found = self._serializer.loads(token)
        except BadData as exc:
            raise PageTokenError("its signature is not this server's") from exc
        if not (isinstance(found, list) and len(found) == 2 and found[0] == listing):
            raise PageTokenError(f"it pages another listing, not {listing}")
        return found[1]
