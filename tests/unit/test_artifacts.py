"""The export's one artifact cache, against a real store: remote files are downloaded once,
kept only while a writer will pack them, and fetched without touching the environment."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from mlflow_runs import client_for, new_run

from exporters.artifacts import ArtifactCache, sha256_file


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """A run holding ``a/model.bin`` and ``b/model.bin`` (same name, different bytes);
    only the first test changes ``a`` at the source."""
    tmp_path = tmp_path_factory.mktemp("artifact-cache")
    client = client_for(tmp_path)
    run_id = new_run(client, "cache", tmp_path)
    for folder, data in (("a", b"one"), ("b", b"two")):
        source = tmp_path / "src" / folder / "model.bin"
        source.parent.mkdir(parents=True)
        source.write_bytes(data)
        client.log_artifact(run_id, str(source), artifact_path=folder)
    stored = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    return client.tracking_uri, run_id, stored


def test_a_remote_artifact_is_downloaded_once_for_hashing_and_packing(two_models):
    tracking_uri, run_id, stored = two_models
    root = f"runs:/{run_id}"  # not a local path: fetched through the artifact repository
    environment = dict(os.environ)
    with ArtifactCache(tracking_uri, keep=lambda size: True) as cache:
        assert cache.digest(root, "a/model.bin") == (3, hashlib.sha256(b"one").hexdigest())
        (stored / "a" / "model.bin").write_bytes(b"changed at the source")
        packed = cache.fetch_uri(f"{root}/a/model.bin", "a/model.bin")
        assert packed.read_bytes() == b"one"  # the download made while hashing, reused
        assert cache.fetch(root, "b/model.bin").read_bytes() == b"two"  # its own folder
        scratch = packed.parents[1]
    assert not scratch.exists()
    assert dict(os.environ) == environment


def test_a_download_no_writer_needs_is_deleted_after_hashing(two_models):
    tracking_uri, run_id, _ = two_models
    with ArtifactCache(tracking_uri, keep=lambda size: size > 100) as cache:
        size, digest = cache.digest(f"runs:/{run_id}", "b/model.bin")
        assert (size, digest) == (3, hashlib.sha256(b"two").hexdigest())
        leftovers = [p for p in Path(cache._scratch_dir()).rglob("*") if p.is_file()]
    assert leftovers == []


def test_local_artifacts_are_read_in_place_and_never_deleted(two_models):
    tracking_uri, run_id, stored = two_models
    with ArtifactCache(tracking_uri) as cache:
        assert cache.fetch(stored.as_uri(), "b/model.bin") == stored / "b" / "model.bin"
        cache.digest(stored.as_uri(), "b/model.bin")
    assert sha256_file(stored / "b" / "model.bin") == hashlib.sha256(b"two").hexdigest()
