"""One resolver: from what a user types (or a page links) to the lineage node it names.

Accepted: a run id or a unique prefix of one (every output prints them shortened),
``runs:/<run_id>/<path>``, ``models:/<model_id>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>``, ``prompts:/<name>/<version>``, ``prompts:/<name>@<alias>``,
``<run_id>/<path>`` (an artifact, as the pages link it), a
dataset digest or a unique prefix of one (``sha256:`` in front is allowed), or a dataset's
name. Each look-up is one indexed query on a prov store.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from exporters.lineage.keys import (
    DATASET,
    RUN,
    NodeKey,
    artifact_key,
    model_key,
    prompt_key,
    version_key,
)
from exporters.lineage.sources import LineageError
from mlflow_prov.lineage_edges import LineageReader

RUNS_SCHEME, MODELS_SCHEME, SHA256_PREFIX = "runs:/", "models:/", "sha256:"
PROMPTS_SCHEME = "prompts:/"


class UnknownNodeError(LineageError):
    """The text is well formed but names nothing in this store."""


class AmbiguousNodeError(LineageError):
    """The text is a prefix (or name) of more than one node; ``candidates`` are their ids."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


HELP = ("give a run id (or a unique prefix), models:/<model_id>, models:/<name>/<version>, "
        "models:/<name>@<alias>, prompts:/<name>/<version>, runs:/<run_id>/<path> or a "
        "dataset digest or name")


def resolve(reader: LineageReader, text: str, client: MlflowClient | None = None) -> NodeKey:
    """The node ``text`` names; :class:`LineageError` with one line saying why not."""
    text = text.strip()
    if text.startswith(RUNS_SCHEME):
        return _artifact(reader, text)
    if text.startswith(MODELS_SCHEME):
        return _model(reader, text, client)
    if text.startswith(PROMPTS_SCHEME):
        return _prompt(reader, text, client)
    return _by_prefix(reader, text)


def _known(reader: LineageReader, key: NodeKey) -> bool:
    return key.id in reader.nodes([key.id])


def _artifact(reader: LineageReader, text: str) -> NodeKey:
    run_id, _, path = text.removeprefix(RUNS_SCHEME).partition("/")
    if not run_id or not path.strip("/"):
        raise LineageError(f"{text!r} is not a run artifact URI; write runs:/<run_id>/<path>")
    run = _by_prefix(reader, run_id, kinds=(RUN,))
    return artifact_key(run.ref, path)


def _model(reader: LineageReader, text: str, client: MlflowClient | None) -> NodeKey:
    rest = text.removeprefix(MODELS_SCHEME).strip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if client is None:
            raise LineageError(f"cannot look up alias {alias!r} here; name the version: "
                               f"models:/{name}/<version>")
        try:
            rest = f"{name}/{client.get_model_version_by_alias(name, alias).version}"
        except MlflowException as exc:
            raise UnknownNodeError(f"no model {name!r} with alias {alias!r}: "
                                   f"{exc.message}") from exc
    if "/" in rest:
        name, _, number = rest.rpartition("/")
        key = version_key(name, number)
        if not _known(reader, key):
            raise UnknownNodeError(f"no registered model version {text}; check the name and "
                               "version (mlflow models list)")
        return key
    key = model_key(rest)
    if not _known(reader, key):
        raise UnknownNodeError(f"no logged model {rest!r} in this store; check the model id in "
                           f"{text}")
    return key


def _prompt(reader: LineageReader, text: str, client: MlflowClient | None) -> NodeKey:
    """``prompts:/<name>/<version>`` or ``prompts:/<name>@<alias>``, as MLflow writes them."""
    rest = text.removeprefix(PROMPTS_SCHEME).strip("/")
    name, at, alias = rest.partition("@")
    if at:
        if client is None:
            raise LineageError(f"cannot look up alias {alias!r} here; name the version: "
                               f"prompts:/{name}/<version>")
        try:
            number = str(client.get_prompt_version_by_alias(name, alias).version)
        except MlflowException as exc:  # one answer whether the prompt or the alias is missing
            raise UnknownNodeError(f"no prompt {name!r} with alias {alias!r}") from exc
    else:
        name, _, number = rest.rpartition("/")
    if not name or not (number.isascii() and number.isdigit()):
        raise LineageError(f"{text!r} names no prompt version; write "
                           "prompts:/<name>/<version> or prompts:/<name>@<alias>")
    key = prompt_key(name, int(number))
    if not _known(reader, key):
        raise UnknownNodeError(f"no prompt version {text} in this store's lineage; check the "
                               "name and version (mlflow.genai.load_prompt)")
    return key


def _by_prefix(reader: LineageReader, text: str,
               kinds: tuple[str, ...] = (RUN, DATASET)) -> NodeKey:
    """A run id or dataset digest, whole or a unique prefix; else a dataset's name."""
    if "/" in text and RUN in kinds and DATASET in kinds:
        run_id, _, path = text.partition("/")
        return artifact_key(_by_prefix(reader, run_id, kinds=(RUN,)).ref, path)
    digest = text.removeprefix(SHA256_PREFIX)
    for kind, ref in ((RUN, text), (DATASET, digest)):
        if kind in kinds and ref and _known(reader, NodeKey(kind, ref)):
            return NodeKey(kind, ref)
    matches = [m for kind, ref in ((RUN, text), (DATASET, digest)) if kind in kinds and ref
               for m in reader.find(kind, ref)]
    if not matches and DATASET in kinds and text:
        matches = reader.find_labelled(DATASET, text)
    if len(matches) == 1:
        return NodeKey.parse(matches[0])
    if matches:
        raise AmbiguousNodeError(f"{text!r} matches more than one run or dataset "
                                 f"({', '.join(matches)}); give more of it", matches)
    what = "run id" if kinds == (RUN,) else "run id, dataset digest or name"
    raise UnknownNodeError(f"{text!r} is no {what} in this store; {HELP}")

