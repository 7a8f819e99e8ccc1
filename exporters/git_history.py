"""``export --git REPO``: the commit history behind each run's commit, read with GitPython.

A run records the commit it was made from (the ``code`` section of its ``run.created`` event,
else MLflow's ``mlflow.source.git.commit`` tag). This module reads, from a local clone the
user names, the commits reachable from it, newest first, at most ``--git-depth`` of them,
with the files each changed against its first parent. :mod:`exporters.prov_git` turns them
into PROV. Authors and committers are people: with ``--pseudonymize`` their names and emails
become the export's pseudonyms; every text (summaries, paths, names) is redacted as every
output is (:func:`exporters.privacy.redact`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from exporters.errors import ExportError
from exporters.privacy import Pseudonymizer, redact
from exporters.records import RunRecord
from mlflow_prov.vocabulary import EventKind


@dataclass(frozen=True)
class GitPerson:
    """An author or committer: ``email`` (or the name when there is none) identifies them."""

    name: str | None
    email: str | None


@dataclass(frozen=True)
class FileChange:
    """One file a commit changed: ``change`` is git's letter (A, M, D, R, T); blobs are the
    file's content ids before and after (None where the file did not exist)."""

    path: str
    old_path: str | None
    change: str
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class GitCommit:
    """One commit: its parents (ids), people, times, first message line and file changes."""

    sha: str
    parents: tuple[str, ...]
    author: GitPerson
    committer: GitPerson
    authored: datetime
    committed: datetime
    summary: str
    files: tuple[FileChange, ...]


def open_repository(path: Path) -> Any:
    """The GitPython repository at ``path``; an :class:`ExportError` naming the fix when
    ``path`` holds none."""
    import git

    try:
        return git.Repo(path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ExportError(f"{path} is not a git repository; give the folder of a clone "
                          "(the one holding .git)") from None


def run_commit(run: RunRecord) -> str | None:
    """The commit a run was made from: its journal's code section, else MLflow's tag."""
    created = next((e.payload for e in run.history if e.kind == EventKind.RUN_CREATED), {})
    git = (created.get("code") or {}).get("git") or {}
    commit = git.get("commit") or run.git_commit
    return commit if isinstance(commit, str) and commit else None


class GitHistoryReader:
    """One repository, read once per export: each commit is converted at most once however
    many runs share its history."""

    def __init__(self, path: Path, depth: int, pseudonymize: Pseudonymizer) -> None:
        self.repo = open_repository(path)
        self.depth = depth
        self.pseudonymize = pseudonymize
        self._commits: dict[str, GitCommit] = {}
        self._histories: dict[str, tuple[GitCommit, ...]] = {}

    def history(self, commit: str) -> tuple[GitCommit, ...]:
        """The commits reachable from ``commit``, newest first, at most ``depth``; none when
        the repository does not have it (another clone, or history rewritten)."""
        if commit not in self._histories:
            import git

            try:
                found = list(self.repo.iter_commits(commit, max_count=self.depth))
            except (git.GitCommandError, ValueError):
                found = []
            self._histories[commit] = tuple(self._convert(c) for c in found)
        return self._histories[commit]

    def attach(self, record: RunRecord) -> RunRecord:
        """``record`` with the history behind its commit."""
        commit = run_commit(record)
        return replace(record, git_history=self.history(commit)) if commit else record

    def _convert(self, commit: Any) -> GitCommit:
        if commit.hexsha not in self._commits:
            self._commits[commit.hexsha] = redact(GitCommit(
                sha=commit.hexsha, parents=tuple(p.hexsha for p in commit.parents),
                author=self._person(commit.author), committer=self._person(commit.committer),
                authored=commit.authored_datetime, committed=commit.committed_datetime,
                summary=str(commit.summary), files=_changes(commit)))
        return self._commits[commit.hexsha]

    def _person(self, actor: Any) -> GitPerson:
        return GitPerson(name=self.pseudonymize(actor.name or None, "user"),
                         email=self.pseudonymize(actor.email or None, "email"))


def _changes(commit: Any) -> tuple[FileChange, ...]:
    """The files ``commit`` changed against its first parent (all its files for a root)."""
    if not commit.parents:  # every file of a root commit is added by it
        return tuple(sorted((FileChange(path=item.path, old_path=None, change="A",
                                        old_blob=None, new_blob=item.hexsha)
                             for item in commit.tree.traverse() if item.type == "blob"),
                            key=lambda c: c.path))
    changes = []
    for diff in commit.parents[0].diff(commit):
        change = diff.change_type or "M"
        changes.append(FileChange(
            path=diff.b_path or diff.a_path, old_path=diff.a_path if change == "R" else None,
            change=change, old_blob=diff.a_blob.hexsha if diff.a_blob else None,
            new_blob=diff.b_blob.hexsha if diff.b_blob else None))
    return tuple(sorted(changes, key=lambda c: c.path))


def open_reader(path: Path | None, depth: int,
                pseudonymize: Pseudonymizer) -> GitHistoryReader | None:
    """The export's reader for ``--git``, or None without it."""
    return None if path is None else GitHistoryReader(path, depth, pseudonymize)
