"""Every store write without a describer of its own still gets an event: the generic describer.

Why: MLflow adds write methods to its stores in most releases (the gateway, MCP servers,
review queues, issues). A write method nobody hooked would change rows with no history and
no integrity check. So a journaling store class, when it is defined, enumerates the write
methods of the MLflow store it extends (:func:`write_methods`) and wraps each one that has no
specific hook in a :class:`GenericHook`: its event (``store.write`` on chain
``store:<method>``) names the method, the entity ids found in the arguments and the SHA-256
of the canonical, redacted arguments. A method added by a future MLflow release is therefore
journaled the day it appears, until a specific describer replaces it.

A method is a write when its name is public and does not start with a read verb
(:data:`READ_PREFIXES`); a "write" that writes nothing (no DML in its transaction) leaves no
event, so a read misclassified here only costs the wrapper's call.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlflow.store.model_registry.abstract_store import AbstractStore as AbstractRegistryStore
from mlflow.store.tracking.abstract_store import AbstractStore as AbstractTrackingStore

from mlflow_prov.events import JOURNALED_THROUGH, Described, Hook, WriteContext
from mlflow_prov.journal import canonical_json
from mlflow_prov.vocabulary import (
    REDACTED,
    EventKind,
    is_secret_key,
    redact_text,
    store_chain,
)

# Public names that read (or compute) rather than write: the same list the hook-coverage test
# uses to find writes (tests/unit/test_hook_coverage.py).
READ_PREFIXES = ("get_", "search_", "list_", "find_", "query_", "_", "supports", "filter_",
                 "calculate", "batch_get", "sum_")
# Not writes at all: control of the client-side async queue.
ASYNC_QUEUE_CONTROLS = frozenset({"end_async_logging", "flush_async_logging",
                                  "shut_down_async_logging"})
# Argument names whose values identify what a write touched (``trace_id``, ``name``, ...).
ID_SUFFIXES = ("_id", "_ids", "_name")
ID_NAMES = frozenset({"name", "key", "version", "alias", "location"})
SHOWN_ID_CHARS = 250  # an id longer than this is cut (the arguments' digest still covers it)
_DEPTH_LIMIT = 8  # nested arguments deeper than this are digested as their text
# ``<object object at 0x7f...>``: MLflow's "not given" sentinels print their address, which
# differs between processes; the digest keeps only the type.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def write_methods(store_class: type) -> Iterator[str]:
    """The public write methods ``store_class`` has, by name, in a stable order."""
    for name, value in inspect.getmembers(store_class):
        if (callable(value) and not name.startswith(READ_PREFIXES)
                and name not in ASYNC_QUEUE_CONTROLS and not isinstance(value, type)):
            yield name


_MLFLOW_STORES = (AbstractTrackingStore, AbstractRegistryStore)
_OURS = "mlflow_prov."  # the journaling mixins' methods are hooked specifically already
# Public helpers that compute and never write, called per metric on the write path: a wrapper
# there would cost every metric a signature bind.
COMPUTATIONS = frozenset({"sanitize_metric_value", "resolve_endpoint_in_scorer"})
_GENERIC_MARK = "__mlflow_prov_generic__"


def unhooked_writes(cls: type) -> list[str]:
    """The write methods of ``cls`` (a store class) that nothing journals yet: not hooked by
    a specific describer (those live on the journaling mixins, in this package), not already
    wrapped generically by a base class, not a static helper, and
    not journaled through the private helpers they call (``log_batch``, ``log_metric``).
    A method ``cls`` defines itself is left to ``cls``."""
    if not issubclass(cls, _MLFLOW_STORES):
        return []
    found = []
    for name in write_methods(cls):
        owner = next(k for k in cls.__mro__ if name in vars(k))
        defined = vars(owner)[name]
        if (owner is cls or owner.__module__.startswith(_OURS) or name in JOURNALED_THROUGH
                or name in COMPUTATIONS or isinstance(defined, staticmethod | classmethod)
                or getattr(defined, _GENERIC_MARK, False)):
            continue
        found.append(name)
    return found


def mark_generic(method: Callable[..., Any]) -> Callable[..., Any]:
    setattr(method, _GENERIC_MARK, True)
    return method


@dataclass(frozen=True)
class OuterHook(Hook):
    """A hook for a public method MLflow implements by calling other hooked methods of the
    same store (``create_prompt`` calls ``create_registered_model``): while it runs, those
    calls join its write scope, so its describer, which knows what the call means, writes
    the one event instead of theirs."""


def absorbed_by_outer(scope: Any, store: Any) -> bool:
    """True when a hooked call runs inside an :class:`OuterHook`'s scope on the same store."""
    return scope is not None and scope.store is store and isinstance(scope.hook, OuterHook)


@dataclass(frozen=True)
class GenericHook(Hook):
    """A hook that keeps every argument of the call (a generic describer declares none)."""

    def bind(self, signature: inspect.Signature, store: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> dict[str, Any] | None:
        try:
            bound = signature.bind(store, *args, **kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        return dict(list(bound.arguments.items())[1:])


def generic_hook(method: str, store_kind: str) -> GenericHook:
    """The hook for ``method`` of a ``store_kind`` ("tracking" or "registry") store."""

    def describe(ctx: WriteContext, **arguments: Any) -> Described:
        return generic_event(store_kind, method, arguments)

    describe.__name__ = f"generic_{method}"
    return GenericHook(describe)


def generic_event(store_kind: str, method: str, arguments: dict[str, Any]) -> Described:
    """``store.write``: the method, the ids it was called with, the arguments' digest."""
    ids = entity_ids(arguments)
    experiment_id = ids.get("experiment_id")
    run_id = ids.get("run_id")
    return Described(store_chain(method), EventKind.STORE_WRITE, {
        "store": store_kind, "method": method, "ids": ids,
        "arguments_sha256": arguments_digest(arguments)},
        experiment_id if isinstance(experiment_id, str) else None,
        run_id if isinstance(run_id, str) else None)


def entity_ids(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments that name entities (``*_id``, ``*_ids``, ``name``, ``alias``...), as
    redacted text: a secret's name is shown, never a value that looks like a credential."""
    found: dict[str, Any] = {}
    for name, value in arguments.items():
        if not (name in ID_NAMES or name.endswith(ID_SUFFIXES)):
            continue
        if is_secret_key(name) and not name.endswith(("_id", "_ids")):  # a secret's id is shown
            continue
        if isinstance(value, str | int) and not isinstance(value, bool):
            found[name] = _shown_id(value)
        elif isinstance(value, list | tuple | set | frozenset) and all(
                isinstance(item, str | int) for item in value):
            found[name] = sorted(_shown_id(item) for item in value)
    return found


def _shown_id(value: str | int) -> str:
    return redact_text(str(value))[:SHOWN_ID_CHARS]


def arguments_digest(arguments: dict[str, Any]) -> str:
    """SHA-256 of the arguments' canonical JSON, secrets replaced by :data:`REDACTED` first
    (a digest of a short secret could be confirmed by guessing)."""
    return hashlib.sha256(canonical_json(plain(arguments)).encode("utf-8")).hexdigest()


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data with every secret redacted: entities through their
    ``to_dictionary``/``to_dict``, dataclasses and pydantic models by field, enums by value;
    a key naming a secret gets :data:`REDACTED`, and so does text shaped like a credential."""
    if depth > _DEPTH_LIMIT:
        return redact_text(str(value))
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, enum.Enum):
        return plain(value.value, depth + 1)
    if isinstance(value, dict):
        return {str(k): REDACTED if is_secret_key(str(k)) else plain(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(item, depth + 1) for item in value]
        return sorted(items, key=canonical_json) if isinstance(value, set | frozenset) else items
    return plain(_as_mapping(value), depth + 1)


def _as_mapping(value: Any) -> Any:
    converter: Callable[[], Any] | None = (getattr(value, "to_dictionary", None)
                                           or getattr(value, "to_dict", None)
                                           or getattr(value, "model_dump", None))
    if converter is not None:
        try:
            return converter()
        except (TypeError, ValueError, AttributeError):
            return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return _ADDRESS.sub("", str(value))
