"""Keep secrets and (on request) identities out of exported provenance.

Provenance files get shared; MLflow tags and params sometimes hold tokens, passwords or
connection strings. Values are redacted when their *key* names a secret, or when the *value*
itself looks like a credential, whatever its key: the same words and patterns capture uses
(:mod:`mlflow_prov.vocabulary`, every pattern linear in the value's length, so a 10 MB tag
cannot stall an export). Pseudonyms are salted per export so a
short user name cannot be recovered by hashing candidate names.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlflow_prov.vocabulary import REDACTED, is_secret_key, looks_like_credential

__all__ = ["REDACTED", "HOME_PATH", "Pseudonymizer", "is_secret_key", "looks_like_credential",
           "redact_mapping", "redact_uri", "redact_value", "strip_userinfo"]

HOME_PATH = re.compile(r"(/(?:home|Users)/)([^/\s\"']+)")


def redact_value(key: str, value: Any) -> Any:
    """The value, or :data:`REDACTED` when the key or the value says it is a secret."""
    if value is None:
        return None
    if is_secret_key(key) or (isinstance(value, str) and looks_like_credential(value)):
        return REDACTED
    return value


def redact_mapping(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of a key->value mapping with secret values redacted."""
    return {k: redact_value(k, v) for k, v in values.items()}


def redact_uri(uri: str) -> str:
    """Drop the password from a URI's user info (``postgresql://u:pw@h/db`` -> ``u:***@``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def strip_userinfo(url: str) -> str:
    """A URL without its user info (``https://user:token@host/x`` -> ``https://host/x``):
    for a code or data location the user name is as sensitive as the token it came with."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class Pseudonymizer:
    """Maps user and host names to stable-within-one-export pseudonyms, or passes them on."""

    def __init__(self, enabled: bool, salt: bytes | None = None) -> None:
        """``salt`` fixed by a server keeps its pseudonyms stable across workers; an export
        draws a fresh one, so its pseudonyms cannot be matched with another export's."""
        self.enabled = enabled
        self._salt = salt or secrets.token_bytes(16)

    def __call__(self, name: str | None, kind: str = "user") -> str | None:
        """``user-3f2a9c1b0d`` for ``alice`` when enabled; the name itself otherwise."""
        if not self.enabled or not name:
            return name
        digest = hashlib.sha256(self._salt + name.encode("utf-8")).hexdigest()[:10]
        return f"{kind}-{digest}"

    def home_paths(self, text: str) -> str:
        """``/home/alice/x`` -> ``/home/user-3f2a9c1b0d/x`` (and ``/Users/alice``) when
        enabled: a home folder names its user as plainly as ``mlflow.user`` does."""
        if not self.enabled:
            return text
        return HOME_PATH.sub(lambda m: f"{m[1]}{self(m[2])}", text)

    def writer(self, writer: dict[str, Any]) -> dict[str, Any]:
        """A journal writer with its user and host names (and the server's, under ``via``)
        pseudonymised when enabled; the client address goes too, since it names a machine."""
        if not self.enabled:
            return writer
        cleaned = dict(writer)
        cleaned["user"] = self(cleaned.get("user"), "user")
        cleaned["host"] = self(cleaned.get("host"), "host")
        if isinstance(cleaned.get("via"), dict):
            cleaned["via"] = {**cleaned["via"], "host": self(cleaned["via"].get("host"), "host")}
        cleaned.pop("client_address", None)
        return cleaned
