"""The words both rooms must agree on: event kinds, chain ids, contexts, secrets, units, layout.

Why one module: capture (``mlflow_prov``) writes journal events and metric keys; export
(``exporters``) reads them back and files them. When each side spelled these strings on its
own they drifted apart (a context prefix capture wrote that export did not know; a secret word
redacted on one side only). Capture may not import exporters, so the shared words live here,
in capture's package, with no dependency beyond the standard library: exporters import it.

Add a new event kind, context, secret word, unit suffix or output file name here first, then
use the constant on both sides.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple, TypedDict

# --- journal event kinds ---------------------------------------------------------------------


class EventKind(StrEnum):
    """Every kind of journal event, named ``<chain kind>.<what happened>``.

    Members are the contract; their values are what the journal stores. A journal written
    with older spellings is read through :func:`parse_kind`.
    """

    EXPERIMENT_CREATED = "experiment.created"
    EXPERIMENT_RENAMED = "experiment.renamed"
    EXPERIMENT_DELETED = "experiment.deleted"
    EXPERIMENT_RESTORED = "experiment.restored"
    EXPERIMENT_TAG_SET = "experiment.tag_set"
    EXPERIMENT_TAG_DELETED = "experiment.tag_deleted"

    RUN_CREATED = "run.created"
    RUN_UPDATED = "run.updated"
    RUN_DELETED = "run.deleted"
    RUN_RESTORED = "run.restored"
    RUN_METRICS_LOGGED = "run.metrics_logged"
    RUN_PARAMS_LOGGED = "run.params_logged"
    RUN_TAGS_SET = "run.tags_set"
    RUN_TAG_DELETED = "run.tag_deleted"
    RUN_INPUTS_LOGGED = "run.inputs_logged"
    RUN_OUTPUTS_LOGGED = "run.outputs_logged"
    RUN_LOGGED_MODEL_RECORDED = "run.logged_model_recorded"
    RUN_TRACES_LINKED = "run.traces_linked"
    RUN_TRACES_UNLINKED = "run.traces_unlinked"

    LOGGED_MODEL_CREATED = "logged_model.created"
    LOGGED_MODEL_FINALIZED = "logged_model.finalized"
    LOGGED_MODEL_DELETED = "logged_model.deleted"
    LOGGED_MODEL_TAGS_SET = "logged_model.tags_set"
    LOGGED_MODEL_TAG_DELETED = "logged_model.tag_deleted"
    LOGGED_MODEL_PARAMS_LOGGED = "logged_model.params_logged"
    LOGGED_MODEL_METRICS_LOGGED = "logged_model.metrics_logged"

    REGISTERED_MODEL_CREATED = "registered_model.created"
    REGISTERED_MODEL_UPDATED = "registered_model.updated"
    REGISTERED_MODEL_RENAMED = "registered_model.renamed"
    REGISTERED_MODEL_DELETED = "registered_model.deleted"
    REGISTERED_MODEL_TAG_SET = "registered_model.tag_set"
    REGISTERED_MODEL_TAG_DELETED = "registered_model.tag_deleted"
    REGISTERED_MODEL_ALIAS_SET = "registered_model.alias_set"
    REGISTERED_MODEL_ALIAS_DELETED = "registered_model.alias_deleted"

    MODEL_VERSION_CREATED = "model_version.created"
    MODEL_VERSION_UPDATED = "model_version.updated"
    MODEL_VERSION_STAGE_TRANSITIONED = "model_version.stage_transitioned"
    MODEL_VERSION_DELETED = "model_version.deleted"
    MODEL_VERSION_TAG_SET = "model_version.tag_set"
    MODEL_VERSION_TAG_DELETED = "model_version.tag_deleted"

    RUN_ARTIFACTS_RECORDED = "run.artifacts_recorded"
    RUN_ARTIFACT_UPLOADED = "run.artifact_uploaded"
    LOGGED_MODEL_ARTIFACTS_RECORDED = "logged_model.artifacts_recorded"
    LOGGED_MODEL_ARTIFACT_UPLOADED = "logged_model.artifact_uploaded"
    RUN_PURGED = "run.purged"
    EXPERIMENT_PURGED = "experiment.purged"
    LOGGED_MODEL_PURGED = "logged_model.purged"
    # seals (mlflow_prov/seals.py): on the sealed object's own chain
    RUN_SEALED = "run.sealed"
    RUN_UNSEALED = "run.unsealed"
    RUN_WRITE_REFUSED = "run.write_refused"
    EXPERIMENT_SEALED = "experiment.sealed"
    EXPERIMENT_UNSEALED = "experiment.unsealed"
    EXPERIMENT_WRITE_REFUSED = "experiment.write_refused"
    MODEL_VERSION_SEALED = "model_version.sealed"
    MODEL_VERSION_UNSEALED = "model_version.unsealed"
    MODEL_VERSION_WRITE_REFUSED = "model_version.write_refused"
    # GenAI (issue 19): prompts, traces, assessments, evaluation datasets, scorers, webhooks
    PROMPT_CREATED = "prompt.created"
    PROMPT_DELETED = "prompt.deleted"
    PROMPT_TAG_SET = "prompt.tag_set"
    PROMPT_TAG_DELETED = "prompt.tag_deleted"
    PROMPT_VERSION_CREATED = "prompt.version_created"
    PROMPT_VERSION_DELETED = "prompt.version_deleted"
    PROMPT_VERSION_TAG_SET = "prompt.version_tag_set"
    PROMPT_VERSION_TAG_DELETED = "prompt.version_tag_deleted"
    PROMPT_ALIAS_SET = "prompt.alias_set"
    PROMPT_ALIAS_DELETED = "prompt.alias_deleted"
    TRACE_STARTED = "trace.started"
    TRACE_SPANS_LOGGED = "trace.spans_logged"
    TRACE_TAG_SET = "trace.tag_set"
    TRACE_TAG_DELETED = "trace.tag_deleted"
    TRACE_DELETED = "trace.deleted"
    TRACE_PROMPTS_LINKED = "trace.prompts_linked"
    ASSESSMENT_CREATED = "trace.assessment_created"
    ASSESSMENT_UPDATED = "trace.assessment_updated"
    ASSESSMENT_DELETED = "trace.assessment_deleted"
    DATASET_CREATED = "evaluation_dataset.created"
    DATASET_DELETED = "evaluation_dataset.deleted"
    DATASET_RECORDS_UPSERTED = "evaluation_dataset.records_upserted"
    DATASET_RECORDS_DELETED = "evaluation_dataset.records_deleted"
    DATASET_TAGS_SET = "evaluation_dataset.tags_set"
    DATASET_TAG_DELETED = "evaluation_dataset.tag_deleted"
    DATASET_EXPERIMENTS_CHANGED = "evaluation_dataset.experiments_changed"
    SCORER_REGISTERED = "scorer.registered"
    SCORER_DELETED = "scorer.deleted"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    GATEWAY_SECRET_WRITTEN = "gateway.secret_written"
    STORE_WRITE = "store.write"  # any other write, by the generic describer


# Kinds that open a chain: the object was just created, so its chain has no head yet (the
# journal then inserts the head instead of moving it; see mlflow_prov/journal.py).
CHAIN_OPENING_KINDS = frozenset({EventKind.EXPERIMENT_CREATED, EventKind.RUN_CREATED,
                                 EventKind.LOGGED_MODEL_CREATED})

# Spellings written by mlflow-prov 0.1 journals, read as today's kinds.
LEGACY_KINDS: dict[str, EventKind] = {
    "metrics.logged": EventKind.RUN_METRICS_LOGGED,
    "params.logged": EventKind.RUN_PARAMS_LOGGED,
    "tags.set": EventKind.RUN_TAGS_SET,
    "tag.deleted": EventKind.RUN_TAG_DELETED,
    "inputs.logged": EventKind.RUN_INPUTS_LOGGED,
    "outputs.logged": EventKind.RUN_OUTPUTS_LOGGED,
    "logged_model.recorded": EventKind.RUN_LOGGED_MODEL_RECORDED,
    "traces.linked": EventKind.RUN_TRACES_LINKED,
    "traces.unlinked": EventKind.RUN_TRACES_UNLINKED,
}


def parse_kind(stored: str) -> EventKind | str:
    """The :class:`EventKind` for a stored kind (today's or a legacy spelling); an unknown
    kind (written by a newer version) is returned as it is rather than refused."""
    if stored in LEGACY_KINDS:
        return LEGACY_KINDS[stored]
    try:
        return EventKind(stored)
    except ValueError:
        return stored


# --- chain ids -------------------------------------------------------------------------------


class ChainKind(StrEnum):
    """The four kinds of hash chain: one per run, experiment, logged model, registered model."""

    RUN = "run"
    EXPERIMENT = "experiment"
    LOGGED_MODEL = "logged_model"
    REGISTERED_MODEL = "model"
    PROMPT = "prompt"
    TRACE = "trace"
    EVALUATION_DATASET = "evaluation_dataset"
    SCORER = "scorer"
    WEBHOOK = "webhook"
    GATEWAY = "gateway"
    STORE = "store"


def chain_id(kind: ChainKind, object_id: str) -> str:
    """``run:<run_id>``, ``experiment:<id>``, ``logged_model:<model_id>``, ``model:<name>``."""
    return f"{kind.value}:{object_id}"


def run_chain(run_id: str) -> str:
    return chain_id(ChainKind.RUN, run_id)


def experiment_chain(experiment_id: str) -> str:
    return chain_id(ChainKind.EXPERIMENT, str(experiment_id))


def logged_model_chain(model_id: str) -> str:
    return chain_id(ChainKind.LOGGED_MODEL, model_id)


def registered_model_chain(name: str) -> str:
    return chain_id(ChainKind.REGISTERED_MODEL, name)


def parse_chain(chain: str) -> tuple[ChainKind, str]:
    """``run:abc`` -> (ChainKind.RUN, 'abc'); ValueError for anything else."""
    kind, sep, object_id = chain.partition(":")
    if not sep or not object_id:
        raise ValueError(f"{chain!r} is not a chain id (kind:id)")
    return ChainKind(kind), object_id


# --- digests of what MLflow stored (see mlflow_prov.digests) ---------------------------------
# Payload fields of run events that prove MLflow's rows: written by capture, read by verify.
# {"run", "tags", "params"}: digests of the run's rows after the write, written by journals
# before payloads became the whole truth (docs/internals.md, "Journals from earlier versions")
STATE_FIELD = "state"
METRIC_DIGESTS_FIELD = "digests"  # {key: [row count, multiset digest]} of the rows written
# {model_id: {key: [row count, multiset digest]}} of the LoggedModel metric rows written
MODEL_METRIC_ROWS_FIELD = "rows"
CUT_FIELD = "cut"  # {key: {"length", "sha256"}} of values MLflow cut to its limit
# An export's record of a run chain's head, "<length>:<last hash>": the PROV attribute's local
# name (in the mlflowprov namespace) and the RO-Crate property's term and IRI.
JOURNAL_HEAD_ATTRIBUTE = "journalHead"
JOURNAL_HEAD_IRI = "https://w3id.org/mlflow-prov/ns#journalHead"


# --- contexts and metric sources ---------------------------------------------------------------

TRAINING = "training"
VALIDATION = "validation"
TESTING = "testing"
EVALUATION = "evaluation"

# Abbreviations users write, mapped to one spelling per context.
CONTEXT_SYNONYMS: dict[str, str] = {
    "train": TRAINING,
    "val": VALIDATION,
    "valid": VALIDATION,
    "test": TESTING,
    "eval": EVALUATION,
}

# Metric-key prefix -> context. Capture writes ``CONTEXT_KEY_PREFIXES[context] + key``;
# export maps every prefix here back to its context.
DEFAULT_CONTEXT_PREFIXES: dict[str, str] = {
    "train/": TRAINING,
    "val/": VALIDATION,
    "valid/": VALIDATION,
    "validation/": VALIDATION,
    "test/": TESTING,
    "eval/": EVALUATION,
}
CONTEXT_KEY_PREFIXES: dict[str, str] = {
    TRAINING: "train/",
    VALIDATION: "val/",
    TESTING: "test/",
    EVALUATION: "eval/",
}

# The MLflow dataset-input tag that carries ``log_input(..., context=...)``.
DATASET_CONTEXT_TAG = "mlflow.data.context"
# The run tag in which capture lists, comma-separated, the free-form contexts it wrote key
# prefixes for (``tuning`` -> ``tuning/loss``), so that export maps those prefixes back.
CONTEXTS_TAG = "mlflow_prov.contexts"
# Every tag mlflow-prov itself sets on a run (contexts, monitors, carbon settings) starts
# with this; views list them apart from the user's own tags.
OWN_TAG_PREFIX = "mlflow_prov."

SYSTEM_PREFIX = "system/"
CARBON_PREFIXES = ("carbon/", "codecarbon/")
CARBON_SEGMENT = "carbon"
# MLflow's tag naming a nested run's parent.
PARENT_RUN_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"  # MLflow keeps a run's name in its row and in this tag
# GenAI links MLflow keeps as tags and trace metadata (issue 19): the prompt versions a run or
# logged model used (a JSON list of {"name", "version"}), a trace's run and logged model
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"
TRACE_SOURCE_RUN_KEY = "mlflow.sourceRun"
TRACE_MODEL_ID_KEY = "mlflow.modelId"


def linked_prompts(value: Any) -> list[tuple[str, int]]:
    """A ``mlflow.linkedPrompts`` value (``[{"name": "qa", "version": "2"}]``, as text or
    parsed) as ``[("qa", 2)]``; anything else (a cut or hand-edited tag) links nothing."""
    try:
        items = json.loads(value) if isinstance(value, str) else value
        if not isinstance(items, list):
            return []
        return sorted({(str(i["name"]), int(i["version"])) for i in items
                       if isinstance(i, dict)})
    except (ValueError, TypeError, KeyError, ArithmeticError, RecursionError):
        return []  # 1e400 and Infinity overflow int(); a deep nest overflows the parser


# On a nested run without a carbon tracker of its own: the run whose tracker measured its time
# (each interval's energy is counted once, on the top-level run).
CARBON_COUNTED_IN_TAG = "mlflow_prov.carbon.counted_in"


def normalise_context(name: str | None) -> str | None:
    """Lower-case, strip, and map common abbreviations to one spelling; empty -> None."""
    if name is None or not name.strip():
        return None
    cleaned = name.strip().lower()
    return CONTEXT_SYNONYMS.get(cleaned, cleaned)


def context_key_prefix(context: str) -> str:
    """The key prefix capture writes for a context: ``train/`` for training, ``tuning/`` for a
    free-form ``tuning`` context (which export maps back, see :func:`context_from_key`)."""
    canonical = normalise_context(context) or TRAINING
    return CONTEXT_KEY_PREFIXES.get(canonical, f"{canonical}/")


def is_free_form_context(context: str) -> bool:
    """True for a context outside the four standard ones (its prefix must be declared in
    :data:`CONTEXTS_TAG` for export to recognise it)."""
    return normalise_context(context) not in CONTEXT_KEY_PREFIXES


def declared_contexts(tag_value: str | None) -> list[str]:
    """The contexts a :data:`CONTEXTS_TAG` value lists, normalised, in order, without repeats."""
    names = (normalise_context(part) for part in (tag_value or "").split(","))
    return list(dict.fromkeys(name for name in names if name))


def context_from_key(key: str, prefixes: Mapping[str, str] | None = None) -> str | None:
    """The context a metric key's prefix names (the longest matching prefix wins), from
    ``prefixes`` (prefix -> context; :data:`DEFAULT_CONTEXT_PREFIXES` when None)."""
    table = DEFAULT_CONTEXT_PREFIXES if prefixes is None else prefixes
    lowered = key.lower()
    matches = [p for p in table if lowered.startswith(p.lower())]
    if not matches:
        return None
    return normalise_context(table[max(matches, key=len)])


# --- secrets ---------------------------------------------------------------------------------

REDACTED = "[redacted]"

# A key names a secret when one of its words, or two adjacent words, are here (whole words:
# ``max_tokens``, ``tokenizer``, ``author`` stay visible).
SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "pwd", "secret", "token", "credential", "credentials",
    "cookie", "apikey", "accesskey", "privatekey", "secretkey", "authtoken", "clientsecret",
    "sessionid"})
SECRET_WORD_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"),
                               ("session", "id")})
KEY_WORD_BOUNDARY = re.compile(r"[-_./\s]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

# Values that have the shape of a credential, whatever their key. Every pattern runs in
# linear time on any input: a token class is never repeated unboundedly after a start that
# can recur inside the same run of characters (bounded ``{n}`` instead of ``{n,}``: a search
# only needs to know the credential is there, not where it ends).
CREDENTIAL_VALUE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"(?<![0-9A-Z])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])",  # AWS access key id
    r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{30}",  # Google API key
    r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16}",  # Stripe secret and restricted keys
    r"\bglpat-[A-Za-z0-9_-]{20}",  # GitLab personal access token
    r"\bgh[pousr]_[A-Za-z0-9]{30}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{30}",
    r"\bxox[abprs]-[A-Za-z0-9-]{10}",  # Slack
    r"\bsk-[A-Za-z0-9_-]{20}",  # OpenAI-style secret keys
    r"\bhf_[A-Za-z0-9]{30}",  # Hugging Face
    # JWT. It may start only where a run of token characters starts, so each run is scanned
    # once (``\b`` would also allow a start after every ``-`` of ``eyJ-eyJ-…``: quadratic).
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8}[A-Za-z0-9_-]*+\.eyJ[A-Za-z0-9_-]{8}",
    r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----",
    r"(?i)\bbearer\s{1,8}[A-Za-z0-9._~+/-]{16}",
    r"://[^/\s:@]{1,256}:[^/\s@]{1,256}@",  # URL with user:password@
    # A secret assigned inside a value: ``--password=hunter2``, ``token: abc``, ``my_pwd=x``.
    r"(?i)(?<![A-Za-z0-9])(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|auth[_-]?token|client[_-]?secret)\s{0,8}[=:]\s{0,8}\S",
))


def key_words(key: str) -> list[str]:
    """``openai.apiKey`` -> ``['openai', 'api', 'key']``."""
    return [w.lower() for w in KEY_WORD_BOUNDARY.split(key) if w]


@functools.lru_cache(maxsize=4096)  # keys repeat: every event has the same few field names
def is_secret_key(key: str) -> bool:
    """True when a key names something secret (``db_password``, ``HF_TOKEN``,
    ``openai.api_key``) by a whole word, not a substring (``max_tokens`` is no secret)."""
    words = key_words(key)
    return (any(w in SECRET_WORDS for w in words)
            or any(pair in SECRET_WORD_PAIRS for pair in zip(words, words[1:], strict=False)))


SHORTEST_CREDENTIAL = 5  # ``pwd=x``: no pattern matches anything shorter
# Every pattern above needs one of these (lower-cased) in the value: a value without any
# (a digest, a metric key, most names) is settled by substring tests instead of 17 searches.
CREDENTIAL_MARKERS = ("akia", "asia", "aiza", "k_live_", "k_test_", "glpat-", "gh",
                      "github_pat_", "xox",
                      "sk-", "hf_", "eyj", "-----begin", "bearer", ":", "=")


def looks_like_credential(value: str) -> bool:
    """True when a value has the shape of a known credential, whatever its key."""
    if len(value) < SHORTEST_CREDENTIAL:
        return False
    lowered = value.lower()
    if not any(marker in lowered for marker in CREDENTIAL_MARKERS):
        return False
    return any(p.search(value) for p in CREDENTIAL_VALUE_PATTERNS)


# The user info of a URL anywhere in a text (``https://user:token@host``, ``s3://KEY@bucket``):
# a scheme, ``://``, then up to the last ``@`` before any ``/``, space or quote (a password
# may hold a raw ``@``: ``postgresql://alice:p@ss@db``). Bounded, so a search looks at most
# 256 characters after each ``://`` (linear in the text's length).
URL_USERINFO = re.compile(r"(?<=://)[^/\s\"'<>]{1,256}@")


def without_userinfo(text: str) -> str:
    """``text`` with the user info of every URL in it removed (``https://u:pw@h/x`` ->
    ``https://h/x``): the user name of a data or database location is as private as the token
    that came with it, and the URL without it still names the place."""
    return URL_USERINFO.sub("", text) if "://" in text else text


def redact_text(text: str) -> str:
    """A text value as every output shows it: URL user info removed, then the whole value
    replaced by :data:`REDACTED` when what is left still looks like a credential (a search
    only knows where a credential starts, so a part of one is never shown)."""
    cleaned = without_userinfo(text)
    return REDACTED if looks_like_credential(cleaned) else cleaned


# --- units -----------------------------------------------------------------------------------


class Unit(NamedTuple):
    """A metric unit in the two vocabularies the writers need: UDUNITS (CF ``units``
    attribute) and QUDT (``unitCode`` of RO-Crate ``PropertyValue``s)."""

    udunits: str
    qudt: str


# Key suffixes as MLflow's ``system/`` metrics and codecarbon spell them. Longest first, so
# ``_megabytes`` wins over ``_bytes``. MLflow's megabytes are 10**6 bytes (psutil / 1e6).
UNIT_SUFFIXES: tuple[tuple[str, Unit], ...] = (
    ("_percentage", Unit("percent", "https://qudt.org/vocab/unit/PERCENT")),
    ("_kg_per_second", Unit("kg/s", "https://qudt.org/vocab/unit/KiloGM-PER-SEC")),
    ("_megabytes", Unit("Mbyte", "https://qudt.org/vocab/unit/MegaBYTE")),
    ("_gigabytes", Unit("Gbyte", "https://qudt.org/vocab/unit/GigaBYTE")),
    ("_kilobytes", Unit("kbyte", "https://qudt.org/vocab/unit/KiloBYTE")),
    ("_bytes", Unit("byte", "https://qudt.org/vocab/unit/BYTE")),
    ("_celsius", Unit("degC", "https://qudt.org/vocab/unit/DEG_C")),
    ("_joules", Unit("J", "https://qudt.org/vocab/unit/J")),
    ("_seconds", Unit("s", "https://qudt.org/vocab/unit/SEC")),
    ("_percent", Unit("percent", "https://qudt.org/vocab/unit/PERCENT")),
    ("_watts", Unit("W", "https://qudt.org/vocab/unit/W")),
    ("_kgco2eq", Unit("kg", "https://qudt.org/vocab/unit/KiloGM")),
    ("_kwh", Unit("kW h", "https://qudt.org/vocab/unit/KiloW-HR")),
    ("_mhz", Unit("MHz", "https://qudt.org/vocab/unit/MegaHZ")),
    ("_kg", Unit("kg", "https://qudt.org/vocab/unit/KiloGM")),
)


def unit_for_key(key: str) -> Unit | None:
    """The unit a metric key declares by its suffix, or None (user metrics rarely do)."""
    lowered = key.lower()
    for suffix, unit in UNIT_SUFFIXES:
        if lowered.endswith(suffix):
            return unit
    return None


# --- exported layout -------------------------------------------------------------------------

RUN_DIR_PREFIX = "run-"


def run_dir_name(run_id: str) -> str:
    """The folder of one run inside an experiment's export folder: ``run-<run_id>``."""
    return f"{RUN_DIR_PREFIX}{run_id}"


# --- yProv4ML compatibility (the prov4ml facade and import-yprov4ml) ------------------------

# Entry-point group under which the exporters register the function the capture room's
# prov4ml facade calls at end_run (capture never imports exporters; see mlflow_prov.prov4ml).
EXPORTER_ENTRY_POINT_GROUP = "mlflow_prov.exporter"
EXPORTER_ENTRY_POINT_NAME = "default"
PROV4ML_RANK_TAG = "prov4ml.global_rank"
PROV4ML_NAMESPACE_TAG = "prov4ml.user_namespace"
# The sha256 of the yProv4ML file a run was imported from (re-import finds it, no duplicate).
YPROV4ML_SOURCE_DIGEST_TAG = "mlflow_prov.imported_from.sha256"
YPROV4ML_SOURCE_PATH_TAG = "mlflow_prov.imported_from.path"
YPROV4ML_GENERATION_TAG = "mlflow_prov.imported_from.generation"


# --- payloads: one typed definition per event kind -------------------------------------------
# What each kind's payload holds, for the describers that write it (mlflow_prov/events.py)
# and every reader (verify's replay, log, pages, exports): mypy checks both sides against
# these. ``total=False`` fields are absent where the write could not know them (an old value
# MLflow did not load) or in journals written by earlier versions. Values are JSON.
class Cut(TypedDict):
    length: int
    sha256: str


class ExperimentCreated(TypedDict, total=False):
    name: str
    artifact_location: str | None
    tags: dict[str, str]
    creation_time: int  # absent in journals before whole rows


class ExperimentRenamed(TypedDict, total=False):
    old_name: str
    new_name: str


class ExperimentCascade(TypedDict):
    """``experiment.deleted`` and ``experiment.restored``: the runs that went with it."""

    run_ids: list[str]


class ExperimentTagSet(TypedDict, total=False):
    key: str
    value: str
    old_value: str | None


class ExperimentTagDeleted(TypedDict, total=False):
    key: str
    old_value: str | None


class InstalledDistributions(TypedDict, total=False):
    """``code.distributions`` of ``run.created`` (mlflow_prov/code_capture.py): the sorted
    ``name==version`` lines (absent from journals written before they were recorded), their
    count, and the SHA-256 of the lines each ending in a newline (an export's
    ``requirements.txt``)."""

    count: int
    sha256: str
    lines: list[str]


class CodeSection(TypedDict, total=False):
    """``code`` of ``run.created`` (mlflow_prov/code_capture.py)."""

    git: dict[str, Any] | None
    command: list[str]
    python: str
    distributions: InstalledDistributions
    artifacts: list[str]


class RunCreated(TypedDict, total=False):
    run_name: str
    user_id: str | None
    start_time: int | None
    tags: dict[str, str]
    environment: dict[str, Any] | None
    code: CodeSection | None
    run: dict[str, Any]  # every column of MLflow's runs row (stored_rows.RUN_COLUMNS)


class RunUpdated(TypedDict, total=False):
    old_status: str
    new_status: str | None
    end_time: int | None
    old_name: str
    new_name: str | None


class RunDeleted(TypedDict, total=False):
    deleted_time: int | None
    cause: str  # set when the run went with its experiment
    experiment_id: str


class RunMetricsLogged(TypedDict, total=False):
    keys: list[str]
    count: int
    step_min: int
    step_max: int
    time_min: int
    time_max: int
    digests: dict[str, list[Any]]  # METRIC_DIGESTS_FIELD: {key: [count, multiset digest]}
    datasets: list[dict[str, Any]]
    model_ids: list[str]


class RunParamsLogged(TypedDict, total=False):
    params: dict[str, str]
    cut: dict[str, Cut]


class RunTagsSet(TypedDict, total=False):
    tags: dict[str, str]
    cut: dict[str, Cut]
    old: dict[str, str | None]  # the values overwritten, None for a new key


class RunTagDeleted(TypedDict, total=False):
    key: str
    old_value: str | None


class DatasetSummary(TypedDict):
    name: str
    digest: str
    source_type: str
    source: str
    context: str | None


class RunInputsLogged(TypedDict):
    datasets: list[DatasetSummary]
    models: list[str]


class RunOutputsLogged(TypedDict):
    models: list[dict[str, Any]]


class RunLoggedModelRecorded(TypedDict):
    artifact_path: str
    model_uuid: str
    model_id: str | None
    flavors: list[str]


class RunTracesLinked(TypedDict):
    trace_ids: list[str]


class LoggedModelCreated(TypedDict, total=False):
    model_id: str
    name: str
    source_run_id: str | None
    model_type: str | None
    tags: dict[str, str]
    params: dict[str, str]
    model: dict[str, Any]  # every compared column (stored_rows.LOGGED_MODEL_COLUMNS)


class LoggedModelFinalized(TypedDict, total=False):
    model_id: str
    status: str
    stored_status: int


class LoggedModelTags(TypedDict, total=False):
    model_id: str
    tags: dict[str, str]
    key: str


class LoggedModelParams(TypedDict):
    model_id: str
    params: dict[str, str]


class LoggedModelMetricsLogged(TypedDict, total=False):
    model_ids: list[str]
    keys: list[str]
    count: int
    rows: dict[str, dict[str, list[Any]]]  # MODEL_METRIC_ROWS_FIELD


class RegistryEvent(TypedDict, total=False):
    """Every ``registered_model.*`` and ``model_version.*`` payload: the model's name and
    what the write set."""

    name: str
    new_name: str
    description: str | None
    tags: dict[str, str]
    key: str
    value: str
    alias: str
    version: int | None
    source: str
    run_id: str | None
    model_id: str | None
    stage: str
    archive_existing_versions: bool


Payload = (ExperimentCreated | ExperimentRenamed | ExperimentCascade | ExperimentTagSet
           | ExperimentTagDeleted | RunCreated | RunUpdated | RunDeleted | RunMetricsLogged
           | RunParamsLogged | RunTagsSet | RunTagDeleted | RunInputsLogged | RunOutputsLogged
           | RunLoggedModelRecorded | RunTracesLinked | LoggedModelCreated
           | LoggedModelFinalized | LoggedModelTags | LoggedModelParams
           | LoggedModelMetricsLogged | RegistryEvent)

PAYLOAD_TYPES: dict[EventKind, type] = {
    EventKind.EXPERIMENT_CREATED: ExperimentCreated,
    EventKind.EXPERIMENT_RENAMED: ExperimentRenamed,
    EventKind.EXPERIMENT_DELETED: ExperimentCascade,
    EventKind.EXPERIMENT_RESTORED: ExperimentCascade,
    EventKind.EXPERIMENT_TAG_SET: ExperimentTagSet,
    EventKind.EXPERIMENT_TAG_DELETED: ExperimentTagDeleted,
    EventKind.RUN_CREATED: RunCreated,
    EventKind.RUN_UPDATED: RunUpdated,
    EventKind.RUN_DELETED: RunDeleted,
    EventKind.RUN_RESTORED: RunDeleted,
    EventKind.RUN_METRICS_LOGGED: RunMetricsLogged,
    EventKind.RUN_PARAMS_LOGGED: RunParamsLogged,
    EventKind.RUN_TAGS_SET: RunTagsSet,
    EventKind.RUN_TAG_DELETED: RunTagDeleted,
    EventKind.RUN_INPUTS_LOGGED: RunInputsLogged,
    EventKind.RUN_OUTPUTS_LOGGED: RunOutputsLogged,
    EventKind.RUN_LOGGED_MODEL_RECORDED: RunLoggedModelRecorded,
    EventKind.RUN_TRACES_LINKED: RunTracesLinked,
    EventKind.RUN_TRACES_UNLINKED: RunTracesLinked,
    EventKind.LOGGED_MODEL_CREATED: LoggedModelCreated,
    EventKind.LOGGED_MODEL_FINALIZED: LoggedModelFinalized,
    EventKind.LOGGED_MODEL_DELETED: LoggedModelTags,
    EventKind.LOGGED_MODEL_TAGS_SET: LoggedModelTags,
    EventKind.LOGGED_MODEL_TAG_DELETED: LoggedModelTags,
    EventKind.LOGGED_MODEL_PARAMS_LOGGED: LoggedModelParams,
    EventKind.LOGGED_MODEL_METRICS_LOGGED: LoggedModelMetricsLogged,
    **{kind: RegistryEvent for kind in EventKind
       if kind.value.startswith(("registered_model.", "model_version."))},
}


# --- payloads: artifacts and purges ---------------------------------------------------------

# The kinds that say which artifact files a run or LoggedModel holds: a manifest replaces what
# was recorded before, an upload adds or replaces one file (mlflow_prov/artifact_records.py).
ARTIFACT_MANIFEST_KINDS = frozenset({EventKind.RUN_ARTIFACTS_RECORDED,
                                     EventKind.LOGGED_MODEL_ARTIFACTS_RECORDED})
ARTIFACT_UPLOAD_KINDS = frozenset({EventKind.RUN_ARTIFACT_UPLOADED,
                                   EventKind.LOGGED_MODEL_ARTIFACT_UPLOADED})
# The tombstones ``mlflow gc`` leaves, the last event of the purged object's chain.
PURGE_KINDS = frozenset({EventKind.RUN_PURGED, EventKind.EXPERIMENT_PURGED,
                         EventKind.LOGGED_MODEL_PURGED})


class ArtifactFile(TypedDict):
    """One artifact file: its path under the artifact root (``/``-separated), size, SHA-256."""

    path: str
    size: int
    sha256: str


class ArtifactsRecordedPayload(TypedDict):
    """``run.artifacts_recorded`` / ``logged_model.artifacts_recorded``: every file under the
    artifact root when the run ended or the model was finalized."""

    artifact_uri: str
    files: list[ArtifactFile]


class ArtifactUploadedPayload(ArtifactFile):
    """``run.artifact_uploaded`` / ``logged_model.artifact_uploaded``: one file uploaded
    through ``mlflow server``'s artifact proxy, hashed as its bytes arrived."""


class PurgedPayload(TypedDict):
    """``run.purged`` / ``experiment.purged`` / ``logged_model.purged``: the object's rows
    were permanently deleted (``mlflow gc``); its chain ends here."""

    purged_by: str


class LoggedModelPurgedPayload(PurgedPayload):
    model_id: str


PAYLOAD_TYPES.update({
    EventKind.RUN_ARTIFACTS_RECORDED: ArtifactsRecordedPayload,
    EventKind.LOGGED_MODEL_ARTIFACTS_RECORDED: ArtifactsRecordedPayload,
    EventKind.RUN_ARTIFACT_UPLOADED: ArtifactUploadedPayload,
    EventKind.LOGGED_MODEL_ARTIFACT_UPLOADED: ArtifactUploadedPayload,
    EventKind.RUN_PURGED: PurgedPayload,
    EventKind.EXPERIMENT_PURGED: PurgedPayload,
    EventKind.LOGGED_MODEL_PURGED: LoggedModelPurgedPayload,
})


# --- payloads: seals ---


class SealPayload(TypedDict, total=False):
    """``*.sealed`` and ``*.unsealed``: the target as a user names it (``runs:/ID``,
    ``models:/NAME/VERSION``, ``experiments:/ID``), the reason, and for a run sealed with its
    experiment the experiment's target (``by``); a model version's ``version``."""

    target: str
    reason: str
    by: str
    version: int


class WriteRefusedPayload(TypedDict, total=False):
    """``*.write_refused``: the store method refused, the event kind it would have written,
    the seal that refused it (who, when, why, target) and, for a model version, its number."""

    method: str
    attempted: str
    seal: dict[str, Any]
    version: int


PAYLOAD_TYPES.update({
    **{kind: SealPayload for kind in (EventKind.RUN_SEALED, EventKind.RUN_UNSEALED,
                                      EventKind.EXPERIMENT_SEALED, EventKind.EXPERIMENT_UNSEALED,
                                      EventKind.MODEL_VERSION_SEALED,
                                      EventKind.MODEL_VERSION_UNSEALED)},
    **{kind: WriteRefusedPayload for kind in (EventKind.RUN_WRITE_REFUSED,
                                              EventKind.EXPERIMENT_WRITE_REFUSED,
                                              EventKind.MODEL_VERSION_WRITE_REFUSED)},
})


# --- payloads: GenAI writes and the generic describer (issue 19) ---------------------------
# What each GenAI event's payload holds (mlflow_prov/events_genai.py writes them). User text
# (tag values, descriptions, assessment values, rationales) is redacted and cut like params;
# templates and serialized scorers are kept as {"length", "sha256"}; ``old_*`` is ``None``
# when MLflow loaded no earlier row in the write's session.


class TextDigest(TypedDict):
    length: int
    sha256: str


class StoreWritePayload(TypedDict):
    """``store.write``: a write only the generic describer knows."""

    store: str  # "tracking" or "registry"
    method: str
    ids: dict[str, Any]  # arguments naming entities (``*_id``, ``name``...), redacted
    arguments_sha256: str  # of the canonical arguments, secrets redacted first


class PromptCreatedPayload(TypedDict):
    name: str
    description: str | None
    tags: dict[str, Any]


class PromptVersionCreatedPayload(TypedDict):
    name: str
    version: int | None
    template: TextDigest | None
    description: str | None
    tags: dict[str, Any]
    model_config: Any
    response_format: TextDigest | None


class PromptTagPayload(TypedDict, total=False):
    """``prompt.tag_set``/``tag_deleted``, ``prompt.version_tag_set``/``version_tag_deleted``
    (the version ones carry ``version``)."""

    name: str
    key: str
    value: Any
    old_value: Any
    version: int


class PromptAliasPayload(TypedDict, total=False):
    """``prompt.alias_set`` (``version``) and ``prompt.alias_deleted``."""

    name: str
    alias: str
    version: int
    old_version: int | None


class PromptVersionDeletedPayload(TypedDict):
    name: str
    version: int


class TraceStartedPayload(TypedDict):
    trace_id: str
    state: str
    request_time: int
    execution_duration: int | None
    tags: dict[str, Any]
    metadata: dict[str, Any]
    assessments: int


class TraceSpansLoggedPayload(TypedDict):
    """One per trace per ``log_spans`` call: count and multiset digest of the span rows
    (``events_genai.span_row_hash``), root span ids."""

    trace_id: str
    count: int
    digest: str
    span_ids: list[str]


class TraceTagPayload(TypedDict, total=False):
    trace_id: str
    key: str
    value: Any
    old_value: Any


class TraceDeletedPayload(TypedDict, total=False):
    """By id (``trace_id``), or by age/count on chain ``trace:experiment/<id>``."""

    trace_id: str
    max_timestamp_millis: int | None
    max_traces: int | None


class TracePromptsLinkedPayload(TypedDict):
    trace_id: str
    prompts: list[dict[str, Any]]  # [{"name", "version"}]


class AssessmentFields(TypedDict, total=False):
    name: str | None
    value: Any
    rationale: str | None
    valid: bool | None
    source_type: str | None
    source_id: str | None
    metadata: dict[str, Any]


class AssessmentCreatedPayload(AssessmentFields, total=False):
    trace_id: str
    assessment_id: str
    assessment_type: str
    run_id: str | None
    span_id: str | None
    overrides: str | None
    overridden: AssessmentFields | None


class AssessmentChangedPayload(TypedDict, total=False):
    """``trace.assessment_updated`` (``old`` and ``new``) and ``trace.assessment_deleted``."""

    trace_id: str
    assessment_id: str
    old: AssessmentFields | None
    new: AssessmentFields


class DatasetPayload(TypedDict, total=False):
    """``evaluation_dataset.*``; ``records_upserted`` carries counts and the multiset digest
    of the record rows written (``events_genai.record_row_hash``)."""

    dataset_id: str
    name: str
    tags: dict[str, Any]
    experiment_ids: list[str]
    count: int
    inserted: int
    updated: int
    record_ids: list[str]
    digest: str
    key: str
    added: list[str]
    removed: list[str]


class ScorerPayload(TypedDict, total=False):
    name: str
    version: int | None
    serialized: TextDigest | None


class WebhookPayload(TypedDict, total=False):
    """``webhook.*``: the secret only as ``has_secret``/``secret_changed``."""

    webhook_id: str
    name: str | None
    description: str | None
    # the scheme and host, and the SHA-256 of the whole URL (a hook's path is its secret)
    url: dict[str, str] | None
    events: list[str] | None
    status: str | None
    has_secret: bool
    secret_changed: bool
    old: dict[str, Any]


class GatewaySecretPayload(TypedDict, total=False):
    """``gateway.secret_written``: the secret's id, name, provider and key names, never a
    value; the auth config redacted like params."""

    secret_id: str
    secret_name: str
    provider: str | None
    value_keys: list[str] | None
    auth_config: Any
    created_by: str | None
    updated_by: str | None
# Chains: ``prompt:<name>``, ``trace:<trace id>``, ``evaluation_dataset:<dataset id>``,
# ``scorer:<experiment id>/<name>``, ``webhook:<id>``, ``gateway:<secret id>`` and, for a write
# only the generic describer knows, ``store:<method>``.


def prompt_chain(name: str) -> str:
    return chain_id(ChainKind.PROMPT, name)


def trace_chain(trace_id: str) -> str:
    return chain_id(ChainKind.TRACE, trace_id)


def dataset_chain(dataset_id: str) -> str:
    return chain_id(ChainKind.EVALUATION_DATASET, dataset_id)


def scorer_chain(experiment_id: str, name: str) -> str:
    return chain_id(ChainKind.SCORER, f"{experiment_id}/{name}")


def webhook_chain(webhook_id: str) -> str:
    return chain_id(ChainKind.WEBHOOK, webhook_id)


def gateway_chain(object_id: str) -> str:
    return chain_id(ChainKind.GATEWAY, object_id)


def store_chain(method: str) -> str:
    return chain_id(ChainKind.STORE, method)


PAYLOAD_TYPES.update({
    EventKind.STORE_WRITE: StoreWritePayload,
    EventKind.PROMPT_CREATED: PromptCreatedPayload,
    EventKind.PROMPT_DELETED: PromptCreatedPayload,
    EventKind.PROMPT_VERSION_CREATED: PromptVersionCreatedPayload,
    EventKind.PROMPT_VERSION_DELETED: PromptVersionDeletedPayload,
    **{kind: PromptTagPayload for kind in (EventKind.PROMPT_TAG_SET, EventKind.PROMPT_TAG_DELETED,
                                           EventKind.PROMPT_VERSION_TAG_SET,
                                           EventKind.PROMPT_VERSION_TAG_DELETED)},
    EventKind.PROMPT_ALIAS_SET: PromptAliasPayload,
    EventKind.PROMPT_ALIAS_DELETED: PromptAliasPayload,
    EventKind.TRACE_STARTED: TraceStartedPayload,
    EventKind.TRACE_SPANS_LOGGED: TraceSpansLoggedPayload,
    EventKind.TRACE_TAG_SET: TraceTagPayload,
    EventKind.TRACE_TAG_DELETED: TraceTagPayload,
    EventKind.TRACE_DELETED: TraceDeletedPayload,
    EventKind.TRACE_PROMPTS_LINKED: TracePromptsLinkedPayload,
    EventKind.ASSESSMENT_CREATED: AssessmentCreatedPayload,
    EventKind.ASSESSMENT_UPDATED: AssessmentChangedPayload,
    EventKind.ASSESSMENT_DELETED: AssessmentChangedPayload,
    **{kind: DatasetPayload for kind in EventKind if kind.startswith("evaluation_dataset.")},
    EventKind.SCORER_REGISTERED: ScorerPayload,
    EventKind.SCORER_DELETED: ScorerPayload,
    **{kind: WebhookPayload for kind in EventKind if kind.startswith("webhook.")},
    EventKind.GATEWAY_SECRET_WRITTEN: GatewaySecretPayload,
})
