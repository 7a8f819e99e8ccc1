"""Every parameter a ``/prov/`` route reads: how it is parsed, checked and described.

Why one table: a parameter is validated before any query, the same way on sqlite,
PostgreSQL and MySQL (ASCII digits only, within the range of the column it is compared with;
ids in MLflow's own shapes), and the OpenAPI description (:mod:`exporters.app.openapi`) is
written from the same :class:`Param`, so the document cannot drift from what the routes
accept. A value that fails gets a :class:`BadRequestError` whose one line names the parameter
and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from mlflow_prov.vocabulary import ChainKind, EventKind, parse_chain

INT32_MAX = 2**31 - 1  # MLflow's experiment ids and the journal's seq: INTEGER columns
INT64_MAX = 2**63 - 1  # the journal's time_us: a BIGINT column
MAX_TIME_MS = INT64_MAX // 1000  # epoch milliseconds whose microseconds still fit
MAX_PAGE_SIZE = 1000
SHOWN_CHARACTERS = 60  # of a bad value, in an error message

RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,31}", re.ASCII)  # runs.run_uuid: 32 chars
MODEL_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,35}", re.ASCII)  # logged_models: 36
DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DATASET_MAX = 500 + 1 + 36  # MLflow's datasets: name 500 characters, digest 36
ARTIFACT_PATH_MAX = 1000
CHAIN_MAX = 1000  # the journal's chain column: kind, colon, an object's id or name


class BadRequestError(ValueError):
    """A query parameter the user can fix; its message says how."""


def shown(value: str) -> str:
    """A bad value as an error message quotes it: repr, cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}...'"


def whole_number(name: str, value: str, low: int, high: int) -> int:
    """``value`` as an integer from ``low`` to ``high``: ASCII digits only (``"²"``,
    ``"١"``, ``"+1"``, ``" 1"`` and ``"1e3"`` are refused, which ``int`` would accept or
    ``str.isdigit`` would pass)."""
    if DIGITS.fullmatch(value) is None or not low <= int(value) <= high:
        raise BadRequestError(f"{name}={shown(value)}: use a whole number from {low} to {high} "
                              "(ASCII digits)")
    return int(value)


def experiment_id(name: str, value: str) -> str:
    """An MLflow experiment id: its store keeps them in a 32-bit integer column."""
    return str(whole_number(name, value, 0, INT32_MAX))


def run_id(name: str, value: str) -> str:
    if RUN_ID.fullmatch(value) is None:
        raise BadRequestError(f"{name}={shown(value)} is not a run id: up to 32 letters, "
                              "digits, '_' or '-' (MLflow's are 32 hex digits)")
    return value


def model_id(name: str, value: str) -> str:
    if MODEL_ID.fullmatch(value) is None:
        raise BadRequestError(f"{name}={shown(value)} is not a logged model id "
                              "(MLflow's look like m-<32 hex digits>)")
    return value


def _text(name: str, value: str, longest: int) -> str:
    if len(value) > longest or CONTROL.search(value):
        raise BadRequestError(f"{name}={shown(value)}: at most {longest} characters and no "
                              "control characters")
    return value


def dataset(name: str, value: str) -> tuple[str, str]:
    """``name@digest``, as the lineage names a dataset."""
    _text(name, value, DATASET_MAX)
    if "@" not in value:
        raise BadRequestError(f"{name}={shown(value)}: write a dataset as name@digest")
    dataset_name, digest = value.rsplit("@", 1)
    return dataset_name, digest


def artifact(name: str, value: str) -> tuple[str, str]:
    """``run_id/path``, as the lineage names a run's artifact."""
    _text(name, value, 33 + ARTIFACT_PATH_MAX)
    if "/" not in value:
        raise BadRequestError(f"{name}={shown(value)}: write an artifact as run_id/path")
    owner, path = value.split("/", 1)
    return run_id(name, owner), path


def time_us(name: str, value: str) -> int:
    """``since``/``until`` as ISO 8601 (``2026-01-31T12:00:00Z``) or epoch milliseconds,
    in microseconds (the journal's ``time_us``)."""
    if value.isascii() and value.isdigit():
        return whole_number(name, value, 0, MAX_TIME_MS) * 1000
    hint = (f"{name}={shown(value)} is not a time; use ISO 8601 (2026-01-31T12:00:00Z) or "
            f"epoch milliseconds (0 to {MAX_TIME_MS})")
    if not value.isascii():  # datetime would read some non-ASCII digits
        raise BadRequestError(hint)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1_000_000)
    except (ValueError, OverflowError) as exc:  # a year-1 time east of UTC overflows
        raise BadRequestError(hint) from exc


def kinds(name: str, values: list[str]) -> tuple[str, ...]:
    """``kind=run.tags_set&kind=run.updated`` or ``kind=run.tags_set,run.updated``."""
    found = tuple(dict.fromkeys(k.strip() for value in values for k in value.split(",")
                                if k.strip()))
    known = {str(kind) for kind in EventKind}
    unknown = [k for k in found if k not in known]
    if unknown:
        listed = ", ".join(shown(k) for k in unknown[:3])
        raise BadRequestError(f"{name}: unknown event kind(s) {listed}; known kinds: "
                              f"{', '.join(sorted(known))}")
    return found


def chain(name: str, value: str) -> str:
    """One object's chain, ``<kind>:<id>`` (``prompt:qa-prompt``, ``trace:tr-1f...``)."""
    hint = (f"{name}={shown(value)}: use <kind>:<id> with kind one of "
            f"{', '.join(k.value for k in ChainKind)} (at most {CHAIN_MAX} characters)")
    if len(value) > CHAIN_MAX or CONTROL.search(value):
        raise BadRequestError(hint)
    try:
        parse_chain(value)
    except ValueError as exc:
        raise BadRequestError(hint) from exc
    return value


def choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        if value not in options:
            raise BadRequestError(f"{name}={shown(value)}: use one of {', '.join(options)}")
        return value

    return parse


def token_text(name: str, value: str) -> str:
    """A page token as received: read (and its signature checked) by the route, which
    knows the listing it pages."""
    return value


@dataclass(frozen=True)
class Param:
    """One parameter of one route: its parser and its OpenAPI description."""

    name: str
    parse: Callable[[str, Any], Any]  # (name, value), or (name, values) when repeated
    schema: Mapping[str, Any]
    description: str
    where: str = "query"  # or "path"
    required: bool = False
    repeated: bool = False  # read with getlist: ``kind=a&kind=b``


def read(params: tuple[Param, ...], args: MultiDict[str, str],
         path: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each parameter parsed, or None where absent (an empty value reads as absent)."""
    values: dict[str, Any] = {}
    for param in params:
        if param.where == "path":
            values[param.name] = param.parse(param.name, (path or {})[param.name])
        elif param.repeated:
            values[param.name] = param.parse(param.name, args.getlist(param.name))
        elif args.get(param.name):
            values[param.name] = param.parse(param.name, args[param.name])
        elif param.required:
            raise BadRequestError(f"{param.name} is required: {param.description}")
        else:
            values[param.name] = None
    return values


EXPERIMENT_ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": INT32_MAX}
RUN_ID_SCHEMA = {"type": "string", "pattern": f"^{RUN_ID.pattern}$"}
PAGE_TOKEN_SCHEMA = {"type": "string", "maxLength": 4096,
                     "description": "next_page_token of the previous page, signed by this "
                                    "server for this listing"}

EXPERIMENT = Param("experiment_id", experiment_id, EXPERIMENT_ID_SCHEMA,
                   "an experiment's id")
RUN = Param("run_id", run_id, RUN_ID_SCHEMA, "a run's id")
CHAIN = Param("chain", chain, {"type": "string", "maxLength": CHAIN_MAX, "pattern": (
    f"^({'|'.join(k.value for k in ChainKind)}):[^\\x00-\\x1f\\x7f]+$")},
               "one object's events: prompt:<name>, trace:<trace id>, evaluation_dataset:<id>, "
               "scorer:<experiment id>/<name>, run:<run id>...")
KIND = Param("kind", kinds, {"type": "array", "items": {
    "type": "string", "enum": sorted(str(kind) for kind in EventKind)}},
             "event kinds (repeat, or separate with commas)", repeated=True)
TIME_SCHEMA = {"type": "string", "description": "ISO 8601 (2026-01-31T12:00:00Z) or epoch "
               f"milliseconds (ASCII digits, 0 to {MAX_TIME_MS})"}
SINCE = Param("since", time_us, TIME_SCHEMA, "events at or after this time")
UNTIL = Param("until", time_us, TIME_SCHEMA, "events at or before this time")
PAGE_TOKEN = Param("page_token", token_text, PAGE_TOKEN_SCHEMA, "where the page starts")


def page_size(default: int) -> Param:
    return Param("page_size", lambda name, value: whole_number(name, value, 1, MAX_PAGE_SIZE),
                 {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                  "default": default}, "how many items a page holds")
MODEL = Param("model_id", model_id, {"type": "string", "pattern": f"^{MODEL_ID.pattern}$"},
              "a logged model's id")
PRINTABLE = r"[^\x00-\x1f\x7f]*"
DATASET = Param("dataset", dataset, {"type": "string", "maxLength": DATASET_MAX,
                                     "pattern": f"^{PRINTABLE}@{PRINTABLE}$"},
                "a dataset as name@digest")
ARTIFACT = Param("artifact", artifact, {"type": "string", "maxLength": 33 + ARTIFACT_PATH_MAX,
                                        "pattern": f"^{RUN_ID.pattern}/{PRINTABLE}$"},
                 "a run's artifact as run_id/path")

LINEAGE_QUERY_MAX = len("runs:/") + 33 + ARTIFACT_PATH_MAX
MAX_DEPTH = 20  # a walk of more relations each way reads most of a big store's lineage


def lineage_query(name: str, value: str) -> str:
    """What ``mlflow-prov lineage`` takes (resolved by :mod:`exporters.lineage.resolve`):
    printable, within the longest artifact URI the lineage names."""
    return _text(name, value, LINEAGE_QUERY_MAX).strip()


def depth(name: str, value: str) -> int:
    return whole_number(name, value, 1, MAX_DEPTH)


LINEAGE_QUERY = Param(
    "q", lineage_query, {"type": "string", "maxLength": LINEAGE_QUERY_MAX,
                         "pattern": f"^{PRINTABLE}$"},
    "what mlflow-prov lineage takes: a run id or a unique prefix, runs:/<run_id>/<path>, "
    "models:/<model_id>, models:/<name>/<version>, models:/<name>@<alias>, "
    "prompts:/<name>/<version>, prompts:/<name>@<alias>, or a dataset digest (or a unique "
    "prefix, sha256: allowed) or name")


def lineage_depth(default: int) -> Param:
    return Param("depth", depth, {"type": "integer", "minimum": 1, "maximum": MAX_DEPTH,
                                  "default": default},
                 "follow at most this many relations each way (mlflow-prov lineage --depth)")


# --- seals (issue 21): a model version's page ---
MODEL_NAME_MAX = 256  # MLflow's registered_models.name column


def model_name(name: str, value: str) -> str:
    """A registered model's name: printable, within MLflow's column."""
    return _text(name, value, MODEL_NAME_MAX)


def model_version(name: str, value: str) -> int:
    return whole_number(name, value, 1, INT32_MAX)


MODEL_NAME = Param("name", model_name, {"type": "string", "maxLength": MODEL_NAME_MAX,
                                        "pattern": f"^{PRINTABLE}$"},
                   "a registered model's name")
MODEL_VERSION = Param("version", model_version,
                      {"type": "integer", "minimum": 1, "maximum": INT32_MAX},
                      "a model version's number")


# --- GenAI (issue 19): a prompt's history page ---
PROMPT_NAME = replace(MODEL_NAME, description="a prompt's name (MLflow registers prompts as "
                                              "registered models)")
PROMPT_VERSION = replace(MODEL_VERSION, description="one version of the prompt: its row, alias "
                                                    "moves and tags only")
