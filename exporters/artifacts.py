"""One export's artifact files: read in place when local, downloaded once when remote, and
hashed by one helper.

Why one cache: reading a run (sizes and SHA-256 for PROV) and packing a crate (the bytes)
both need each artifact. Each fetching on its own downloaded every remote artifact twice,
with two hashing helpers and two error policies. Now :func:`exporters.collect.run_record`
hashes through :meth:`ArtifactCache.digest`, which keeps a download only while a later
writer will want it (``keep``, decided by the export from its formats and
``--max-artifact-bytes``), and the RO-Crate writer asks the same cache for the file.

Remote files are fetched one at a time through the artifact repository
(:mod:`exporters.compat`): no progress bar per file, and no process-wide environment
variable changed to hide one.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from exporters.compat import artifact_repository, download_file


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, streamed (any size): the export's one hashing helper."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def local_path(uri: str) -> Path | None:
    """The file behind a ``file:`` URI or a plain path; ``None`` for remote schemes and for
    ``file://host/…`` URIs naming another machine."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file") and not parts.netloc:
        return Path(unquote(parts.path))
    return None


def artifact_uri(root_uri: str, path: str) -> str:
    """The URI of artifact ``path`` under a run's artifact root."""
    return f"{root_uri.rstrip('/')}/{path}"


def _keep_nothing(size: int) -> bool:
    return False


def _existing(local: Path) -> Path:
    if not local.is_file():
        raise FileNotFoundError(2, "no such artifact file", str(local))
    return local


class ArtifactCache:
    """The artifact files of one export. Use as a context manager: downloads live in one
    temporary folder, removed at exit. Raises ``MlflowException`` or ``OSError`` on fetch."""

    def __init__(self, tracking_uri: str,
                 keep: Callable[[int], bool] = _keep_nothing) -> None:
        self.tracking_uri = tracking_uri
        self.keep = keep
        self._scratch: Path | None = None
        self._files: dict[str, Path] = {}
        self._downloads = 0
        self._repositories: dict[str, Any] = {}

    def __enter__(self) -> ArtifactCache:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Delete every download."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch, self._files = None, {}

    def fetch(self, root_uri: str, path: str) -> Path:
        """Artifact ``path`` of the run whose artifact root is ``root_uri`` as a local file:
        the file itself when local, else a download made once and reused. Each download gets
        a folder of its own: ``a/model.pkl`` and ``b/model.pkl`` must not share a path."""
        uri = artifact_uri(root_uri, path)
        local = local_path(uri)
        if local is not None:
            return _existing(local)
        if uri not in self._files:
            self._downloads += 1
            target = self._scratch_dir() / str(self._downloads) / Path(path).name
            self._files[uri] = download_file(self._repository(root_uri), path, target)
        return self._files[uri]

    def fetch_uri(self, uri: str, path: str) -> Path:
        """:meth:`fetch` by the full URI an ``ArtifactRecord`` carries (its ``path`` is the
        URI's tail, relative to the run's artifact root)."""
        local = local_path(uri)
        if local is not None:
            return _existing(local)
        return self.fetch(uri.removesuffix(f"/{path}"), path)

    def digest(self, root_uri: str, path: str) -> tuple[int, str]:
        """(size, SHA-256) of one artifact; its download is kept only if ``keep(size)``."""
        file = self.fetch(root_uri, path)
        size, sha256 = file.stat().st_size, sha256_file(file)
        if not self.keep(size):
            self.release(root_uri, path)
        return size, sha256

    def release(self, root_uri: str, path: str) -> None:
        """Delete the download of one artifact (local files are never touched)."""
        downloaded = self._files.pop(artifact_uri(root_uri, path), None)
        if downloaded is not None:
            shutil.rmtree(downloaded.parent, ignore_errors=True)

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="mlflow-prov-artifacts-"))
        return self._scratch

    def _repository(self, root_uri: str) -> Any:
        if root_uri not in self._repositories:
            self._repositories[root_uri] = artifact_repository(root_uri, self.tracking_uri)
        return self._repositories[root_uri]
