"""The code and software a run was made with: git state, command line, installed distributions.

Recorded in the ``run.created`` journal event (its ``code`` section, beside ``environment``)
so a provenance record says which commit made a run, whether the working tree differed from
it (and by what: a SHA-256 of ``git diff HEAD``), how the process was started and which
distributions were installed (the sorted ``name==version`` lines and their SHA-256; exports
write them as the run's ``requirements.txt``, so a run's artifacts stay MLflow's). Everything
text is redacted as every output redacts (:func:`mlflow_prov.vocabulary.redact_text`): a
remote URL loses its user info, query and fragment (``https://user:token@host/x.git`` ->
``https://host/x.git``), and a command-line value after a secret-named option
(``--password x``, ``--token=x``) or shaped like a credential is replaced.

Cost: git is asked once per process and checkout (three ``git`` calls, each bounded by
:data:`GIT_TIMEOUT_S`), the distributions are listed once per process; later runs of the
process reuse both, so the working tree's state is the one seen at the process's first run.

On request, two files go to the run's artifacts after the run's row has committed, best
effort (a failure is logged, never raised into MLflow's ``create_run``): with
``MLFLOW_PROV_CAPTURE_REQUIREMENTS=true`` the distributions list also as an MLflow artifact
(:data:`REQUIREMENTS_ARTIFACT`), with ``MLFLOW_PROV_CAPTURE_DIFF=true`` the diff itself
(:data:`DIFF_ARTIFACT`, verbatim: it is the user's code). Each file's SHA-256 is the digest
the event records. Both are off by default: a run's artifacts stay exactly what the user
logged, as with plain MLflow.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import event as sa_event

from mlflow_prov.compat import run_artifact_repository
from mlflow_prov.vocabulary import REDACTED, CodeSection, is_secret_key, redact_text

__all__ = ["CAPTURE_DIFF_VARIABLE", "CAPTURE_REQUIREMENTS_VARIABLE", "DIFF_ARTIFACT",
           "REQUIREMENTS_ARTIFACT", "capture_code", "redact_command", "redact_remote"]

_logger = logging.getLogger(__name__)

CAPTURE_DIFF_VARIABLE = "MLFLOW_PROV_CAPTURE_DIFF"
CAPTURE_REQUIREMENTS_VARIABLE = "MLFLOW_PROV_CAPTURE_REQUIREMENTS"
ARTIFACT_FOLDER = "prov/code"
REQUIREMENTS_ARTIFACT = f"{ARTIFACT_FOLDER}/requirements.txt"
DIFF_ARTIFACT = f"{ARTIFACT_FOLDER}/diff.patch"
GIT_TIMEOUT_S = 10.0
_PENDING = "mlflow_prov.code_artifacts"
# ``--password x``, ``-p x``, ``--wandb_key x``: an option whose name says secret hides the
# next argument (besides the vocabulary's secret words: the short and key-named spellings
# command lines use).
_SECRET_OPTIONS = frozenset({"p", "pass", "key", "pw", "pwd"})
_OPTION = re.compile(r"^--?([A-Za-z][\w.-]*)$")
_OPTION_WITH_VALUE = re.compile(r"^(--?[A-Za-z][\w.-]*)=(.*)$", re.DOTALL)


# --- git ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GitState:
    """One checkout's state as recorded; ``diff`` kept only when it will be logged."""

    fields: dict[str, Any]
    diff: bytes | None


def _git(directory: str, *args: str) -> bytes | None:
    """``git args`` in ``directory``: its output, or None when git is missing, fails or
    takes longer than :data:`GIT_TIMEOUT_S` (a capture must never hang a run's creation)."""
    try:
        done = subprocess.run(["git", "-C", directory, *args], capture_output=True,
                              timeout=GIT_TIMEOUT_S, check=False,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0",
                                   "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def redact_remote(url: str) -> str:
    """A remote URL without what could authenticate: user info, query and fragment
    (``https://oauth2:glpat-x@host/p.git?private_token=y`` -> ``https://host/p.git``);
    scp-like ``git@host:path`` keeps its user, a login name and no secret."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return redact_text(url)


def _branch_and_commit(status: bytes) -> tuple[str | None, str | None, bool]:
    """From ``git status --porcelain=v2 --branch``: branch, commit, and whether any entry
    (a change or an untracked file) makes the tree dirty."""
    branch = commit = None
    dirty = False
    for line in status.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif line and not line.startswith("#"):
            dirty = True
    return (None if branch == "(detached)" else branch,
            None if commit == "(initial)" else commit, dirty)


def _remote(directory: str) -> str | None:
    """``origin``'s URL, else the first remote's, credentials stripped."""
    listing = _git(directory, "config", "--get-regexp", r"^remote\..*\.url$")
    if not listing:
        return None
    urls = dict(line.split(" ", 1) for line in listing.decode("utf-8", "replace").splitlines()
                if " " in line)
    url = urls.get("remote.origin.url") or next(iter(urls.values()), None)
    return redact_remote(url) if url else None


@functools.cache
def git_state(directory: str, keep_diff: bool) -> GitState | None:
    """The checkout containing ``directory``, or None outside one (or without git)."""
    status = _git(directory, "status", "--porcelain=v2", "--branch")
    if status is None:
        return None
    branch, commit, dirty = _branch_and_commit(status)
    diff = _git(directory, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff") \
        if commit else None
    fields = {"commit": commit, "branch": redact_text(branch) if branch else None,
              "remote": _remote(directory), "dirty": dirty,
              "diff_sha256": hashlib.sha256(diff).hexdigest() if diff is not None else None}
    return GitState(fields, diff if keep_diff and diff else None)


def _source_directory() -> str:
    """Where the run's code is: the main script's folder (as MLflow's own
    ``mlflow.source.git.commit`` tag), else the working directory."""
    main = sys.argv[0] if sys.argv else ""
    if main and os.path.isfile(main):
        return os.path.dirname(os.path.abspath(main))
    return os.getcwd()


# --- command line and distributions ---------------------------------------------------------

def redact_command(argv: list[str]) -> list[str]:
    """The command line as recorded: the value of a secret-named option (``--password x``,
    ``--api-key=x``) and any argument shaped like a credential become :data:`REDACTED`."""
    shown: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            shown.append(REDACTED)
            hide_next = False
            continue
        with_value = _OPTION_WITH_VALUE.match(argument)
        if with_value and _secret_option(with_value[1].lstrip("-")):
            shown.append(f"{with_value[1]}={REDACTED}")
            continue
        option = _OPTION.match(argument)
        hide_next = bool(option and _secret_option(option[1]))
        shown.append(redact_text(argument))
    return shown


def _secret_option(name: str) -> bool:
    lowered = name.lower()
    return (is_secret_key(name) or lowered in _SECRET_OPTIONS
            or lowered.endswith(("_key", "-key", ".key")))


def prepare() -> None:
    """Read the checkout and the distributions now, before a write's transaction: the first
    :func:`capture_code` of a process then runs no ``git`` while MLflow holds its locks."""
    git_state(_source_directory(), _enabled(CAPTURE_DIFF_VARIABLE))
    requirements()


@functools.cache
def requirements() -> bytes:
    """The installed distributions, one sorted ``name==version`` line each (pip's freeze
    form): the file logged as :data:`REQUIREMENTS_ARTIFACT` and hashed in the event.

    Read from the metadata folders' names on ``sys.path`` (``scikit_learn-1.9.1.dist-info``,
    ``x-1.0-py3.11.egg-info``), as :func:`importlib.metadata.distributions` finds them, but
    without parsing each one's metadata file: one folder listing instead of ~0.2 s."""
    lines = set()
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            stem = name.removesuffix(".dist-info").removesuffix(".egg-info")
            project, _, version = stem.partition("-")
            if stem != name and project and version:
                lines.add(f"{project}=={version.split('-')[0]}")
    return "".join(f"{line}\n" for line in sorted(lines, key=str.lower)).encode("utf-8")


def _enabled(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


# --- the event's section and its artifacts ----------------------------------------------------

def capture_code(session: Any, artifact_uri: str | None) -> CodeSection:
    """The ``code`` section of a ``run.created`` event. Its files are logged to
    ``artifact_uri`` once ``session`` commits (never inside the write's transaction)."""
    keep_diff = _enabled(CAPTURE_DIFF_VARIABLE)
    with_requirements = _enabled(CAPTURE_REQUIREMENTS_VARIABLE)
    state = git_state(_source_directory(), keep_diff)
    listing = requirements()
    files = {REQUIREMENTS_ARTIFACT: listing} if with_requirements else {}
    if state is not None and state.diff is not None:
        files[DIFF_ARTIFACT] = state.diff
    if files and artifact_uri:
        _after_commit(session, artifact_uri, files)
    return {
        "git": dict(state.fields) if state is not None else None,
        "command": redact_command(list(sys.orig_argv)),
        "python": platform.python_version(),
        "distributions": {"count": listing.count(b"\n"),
                          "sha256": hashlib.sha256(listing).hexdigest(),
                          "lines": listing.decode("utf-8").splitlines()},
        "artifacts": sorted(files),
    }


def _after_commit(session: Any, artifact_uri: str, files: dict[str, bytes]) -> None:
    """Log ``files`` when ``session``'s transaction commits (once, however often a retried
    transaction described the run)."""
    first = _PENDING not in session.info
    session.info[_PENDING] = (artifact_uri, files)
    if first:
        sa_event.listen(session, "after_commit", _log_pending, once=True)


def _log_pending(session: Any) -> None:
    artifact_uri, files = session.info.pop(_PENDING, (None, {}))
    if artifact_uri:
        log_files(artifact_uri, files)


def log_files(artifact_uri: str, files: dict[str, bytes]) -> None:
    """Write each file under the run's artifact root; a failure is logged, not raised: the
    run exists and its event records the digests whether or not the copies arrive."""
    try:
        repository = run_artifact_repository(artifact_uri)
        with tempfile.TemporaryDirectory(prefix="mlflow-prov-code-") as folder:
            for path, content in files.items():
                local = Path(folder, path)
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(content)
                repository.log_artifact(str(local), os.path.dirname(path))
    except Exception as error:  # any artifact store's error: the run must not fail for it
        _logger.warning("mlflow-prov: could not log the code files of run artifacts at %s: "
                        "%s", redact_text(artifact_uri), error)
