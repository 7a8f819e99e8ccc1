"""Keep secrets and (on request) identities out of everything mlflow-prov shows.

Provenance gets shared and read; MLflow tags, params, names and dataset sources sometimes
hold tokens, passwords or connection strings. One function, :func:`redact`, cleans anything a
person or program reads, whatever the channel: export records (every format and crate), the
journal's events (``mlflow-prov log``, ``/prov/api/events``, the timeline pages), lineage
(``mlflow-prov lineage``, ``/prov/api/lineage``, the lineage pages) and error messages. It
walks mappings, lists, tuples and dataclasses and, for each value:

* under a key that names a secret (``db_password``, ``HF_TOKEN``, ``openai.api_key``), or a
  key the user named with ``--redact``, shows :data:`REDACTED`;
* in any text (a value, a run/experiment/model name, a URL, a label) removes the user info of
  every URL (``https://user:token@host/x`` -> ``https://host/x``), then replaces the whole
  text with :data:`REDACTED` when it still looks like a credential.

The words and patterns are :mod:`mlflow_prov.vocabulary`'s, shared with capture (which
redacts the environment it records the same way); every pattern is linear in the value's
length, so a 10 MB tag cannot stall an export or a page. Redacting twice changes nothing, so a
client may clean again what a server already cleaned. Pseudonyms are salted per export so a
short user name cannot be recovered by hashing candidate names.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from mlflow_prov.vocabulary import (
    CUT_FIELD,
    METRIC_DIGESTS_FIELD,
    REDACTED,
    STATE_FIELD,
    is_secret_key,
    redact_text,
    without_userinfo,
)

__all__ = ["BOOKKEEPING_FIELDS", "REDACTED", "HOME_PATH", "Pseudonymizer", "readable_payload",
           "readable_payload_json", "readable_strings", "redact", "redact_chain", "redact_text",
           "without_userinfo"]

HOME_PATH = re.compile(r"(/(?:home|Users)/)([^/\s\"']+)")
# Fields whose mappings are keyed by the user's own names (tag, param and the previous tag
# values of a journal event, a record's tags and params): ``--redact`` patterns apply to
# their keys. Every other key is mlflow-prov's own or MLflow's (``name``, ``source``).
USER_KEYED_FIELDS = frozenset({"tags", "params", "old"})
# Journal payload fields that prove MLflow's rows (state and row digests, cut values' hashes):
# verification reads them; a reader of ``log`` or a timeline has no use for them.
BOOKKEEPING_FIELDS = frozenset({STATE_FIELD, METRIC_DIGESTS_FIELD, CUT_FIELD})

CACHED_TEXT_CHARS = 256
T = TypeVar("T")


def redact(value: T, user_keys: Sequence[re.Pattern[str]] = ()) -> T:
    """``value`` with every secret in it replaced (see the module docstring), of the same
    shape and type; the very object when nothing in it needed redacting. ``user_keys``:
    ``--redact`` patterns, matched against whole tag and param keys."""
    return _Redactor(tuple(user_keys)).clean(value, None, False)


def readable_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A journal payload as a reader sees it: redacted, without the fields only verification
    needs (:data:`BOOKKEEPING_FIELDS`)."""
    return redact({k: v for k, v in payload.items() if k not in BOOKKEEPING_FIELDS})


# A JSON string without escapes: what the stored (canonical) JSON of a payload is made of.
_JSON_STRING = re.compile(r'"([^"\\]*)"')


def readable_payload_json(text: str, payload: Mapping[str, Any],
                          user_keys: Sequence[re.Pattern[str]] = ()) -> dict[str, Any]:
    """:func:`readable_payload` of ``payload`` (decoded from the JSON ``text``), also hiding
    ``--redact`` ``user_keys``; the same result, found faster where it can be.

    Why: ``mlflow-prov log`` streams tens of thousands of events a second, and walking each
    payload cost more than the rest of an event. Redaction changes a payload only through one of its
    strings (a key or a value that looks secret, a key ``--redact`` names), so when every
    string of ``text`` passes the per-string checks (remembered, since keys repeat) the walk
    is skipped. Text with escapes or a ``chain`` field takes the walk."""
    shown = ({k: v for k, v in payload.items() if k not in BOOKKEEPING_FIELDS}
             if BOOKKEEPING_FIELDS.intersection(payload) else dict(payload))
    if "\\" in text or '"chain"' in text:
        return redact(shown, user_keys)
    strings = _JSON_STRING.findall(text)
    if not all(map(_unchanged, strings)) or (
            user_keys and any(p.fullmatch(s) for p in user_keys for s in strings)):
        return redact(shown, user_keys)
    return shown


def readable_strings(values: list[Any]) -> list[str] | None:
    """A list of strings (the ``keys`` of a metrics event) as :func:`redact` shows it inside
    any payload: each item that looks like a credential replaced (an item is a value, so no
    key name or ``--redact`` pattern applies to it); None where an item is not a string.

    Why: ``log`` words a metrics event from this list and three numbers, so it checks them
    alone instead of every string of the payload (:func:`readable_payload_json`)."""
    if not all(type(value) is str for value in values):
        return None
    return [_text(value) for value in values]


@functools.lru_cache(maxsize=65536)
def _unchanged(text: str) -> bool:
    """A string redaction leaves alone wherever it stands: no secret's name, no credential."""
    return not is_secret_key(text) and _text(text) == text


def _text(text: str) -> str:
    """:func:`redact_text`, remembered for short texts: keys, names and kinds repeat in every
    event of a journal, so a history of 100,000 events checks each of them once."""
    return _short_text(text) if len(text) <= CACHED_TEXT_CHARS else redact_text(text)


@functools.lru_cache(maxsize=65536)
def _short_text(text: str) -> str:
    return redact_text(text)


def redact_chain(chain: str) -> str:
    """A journal chain id with its object redacted and its kind kept: ``model:[redacted]``
    for a registered model whose name looks like a credential (the name is its id)."""
    kind, sep, object_id = chain.partition(":")
    return f"{kind}{sep}{redact_text(object_id)}" if sep else redact_text(chain)


@dataclasses.dataclass(frozen=True)
class _Redactor:
    user_keys: tuple[re.Pattern[str], ...]

    def secret(self, key: Any, user_keyed: bool) -> bool:
        """Whether the value under ``key`` is hidden: its name says secret, or (in a mapping
        of the user's keys) a ``--redact`` pattern matches it whole."""
        if not isinstance(key, str):
            return False
        return is_secret_key(key) or (user_keyed and any(p.fullmatch(key)
                                                         for p in self.user_keys))

    def clean(self, value: Any, key: Any, user_keyed: bool) -> Any:
        if value is None:
            return None
        if key is not None and self.secret(key, user_keyed):
            return REDACTED
        if isinstance(value, str):
            cleaned = redact_chain(value) if key == "chain" else _text(value)
            return value if cleaned == value else cleaned
        if type(value) in (int, float, bool):
            return value
        if type(value) is dict or isinstance(value, Mapping):
            return self._mapping(value, str(key) in USER_KEYED_FIELDS)
        if isinstance(value, list | tuple):
            items = [self.clean(item, None, False) for item in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return type(value)(items) if type(value) in (list, tuple) else items
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._dataclass(value)
        return value  # numbers, times, arrays, enums of our own: nothing to hide

    def _mapping(self, value: Mapping[Any, Any], user_keyed: bool) -> Any:
        """A mapping; its keys are shown too, so one that looks like a credential is hidden
        as well. One holding a single ``key`` with its ``value``/``old_value`` (a tag's
        event, a dataset tag) hides them when that key names a secret."""
        named = value.get("key")
        pair_secret = isinstance(named, str) and self.secret(named, True)
        cleaned, changed = {}, False
        for k, v in value.items():
            shown_key = _text(k) if isinstance(k, str) else k
            if pair_secret and k in ("value", "old_value") and v is not None:
                shown = REDACTED
            else:
                shown = self.clean(v, k, user_keyed)
            changed = changed or shown is not v or shown_key != k or shown_key in cleaned
            cleaned[shown_key] = shown
        return cleaned if changed else value

    def _dataclass(self, value: Any) -> Any:
        changes = {}
        for field in dataclasses.fields(value):
            if not field.init:
                continue
            current = getattr(value, field.name)
            cleaned = self.clean(current, field.name, False)
            if cleaned is not current:
                changes[field.name] = cleaned
        return dataclasses.replace(value, **changes) if changes else value


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
