"""Keep secrets and (on request) identities out of exported provenance.

Provenance files get shared; MLflow tags and params sometimes hold tokens, passwords or
connection strings. Values are redacted when their *key* names a secret, or when the *value*
itself looks like a credential, whatever its key. Pseudonyms are salted per export so a
short user name cannot be recovered by hashing candidate names.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"

# A key is split into lower-case words on ``-_./``, spaces and case changes; it names a
# secret when one word, or two adjacent words, are in these sets. Whole words, so that
# ``max_tokens``, ``tokenizer``, ``num_passes``, ``author`` and ``key_dim`` stay visible.
SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "pwd", "secret", "token", "credential", "credentials",
    "cookie", "apikey", "accesskey", "privatekey", "secretkey", "authtoken", "clientsecret",
    "sessionid"})
SECRET_WORD_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"),
                               ("session", "id")})
KEY_WORD_BOUNDARY = re.compile(r"[-_./\s]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
HOME_PATH = re.compile(r"(/(?:home|Users)/)([^/\s\"']+)")
CREDENTIAL_VALUE_PATTERNS = tuple(re.compile(p) for p in (
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{30,}",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bsk-[A-Za-z0-9_-]{20,}",  # OpenAI-style secret keys
    r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}",
    r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",  # URL with user:password@
))


def key_words(key: str) -> list[str]:
    """``openai.apiKey`` -> ``['openai', 'api', 'key']``."""
    return [w.lower() for w in KEY_WORD_BOUNDARY.split(key) if w]


def is_secret_key(key: str) -> bool:
    """True when a tag/param key names something secret (``db_password``, ``HF_TOKEN``,
    ``openai.api_key``) by a whole word, not a substring (``max_tokens`` is no secret)."""
    words = key_words(key)
    return (any(w in SECRET_WORDS for w in words)
            or any(pair in SECRET_WORD_PAIRS for pair in zip(words, words[1:], strict=False)))


def looks_like_credential(value: str) -> bool:
    """True when a value has the shape of a known credential, whatever its key."""
    return any(p.search(value) for p in CREDENTIAL_VALUE_PATTERNS)


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
