"""Fresh empty stores in milliseconds: one migrated template per process, copied per test.

MLflow creates and migrates a new sqlite database on first use, which takes 1-3 s; most
tests want an empty store and nothing else from that step. The first call here lets MLflow
(and mlflow-prov, for ``prov://``) create one real store in a private folder; every call
copies its database file, so each test still gets a store of its own, as MLflow left it.

The one thing in a fresh store that names its own place is the Default experiment's
artifact location; each copy gets the location MLflow would have written for it (and the
copy's own creation time), so runs logged into experiment 0 keep their artifacts beside the
copy, never in the template. Tests about what happens when a store is first created or
migrated open a path of their own instead.

:func:`prebuild` (called by the root conftest as the run starts) makes the templates in a
second process while pytest imports and collects the tests; a template that process has not
finished when a test first needs it is made here instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DB_FILE = "mlflow.db"  # the database inside a prov:/// store folder

KINDS = ("sqlite", "prov")

_lock = threading.Lock()
_templates: dict[str, tuple[Path, Path]] = {}  # kind -> (database file, path it names)
_prebuilding: tuple[subprocess.Popen, Path] | None = None


def prebuild() -> None:
    """Start making every kind of template in another process (it overlaps the collection
    on a machine with a second core); :func:`prov_store` and :func:`sqlite_store` use them."""
    global _prebuilding
    root = Path(tempfile.mkdtemp(prefix="mlflow-prov-templates-"))
    atexit.register(shutil.rmtree, root, True)
    process = subprocess.Popen([sys.executable, __file__, str(root), *KINDS],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(_stop, process)
    _prebuilding = process, root


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:  # a run that needed no store ended first
        process.kill()
        process.wait()


def prov_store(directory: Path) -> str:
    """``prov://<directory>``: an empty, migrated prov store already in ``directory``."""
    template, named = _template("prov")
    directory.mkdir(parents=True)
    _copy(template, directory / DB_FILE, named, directory)
    return f"prov://{directory}"


def sqlite_store(database: Path) -> str:
    """``sqlite:///<database>``: an empty, migrated plain MLflow store, its Default
    experiment's artifacts under the working directory (``./mlruns``), as MLflow does."""
    assert not database.exists(), f"{database} already holds a store"
    template, named = _template("sqlite")
    database.parent.mkdir(parents=True, exist_ok=True)
    _copy(template, database, named, Path.cwd())
    return f"sqlite:///{database}"


def _template(kind: str) -> tuple[Path, Path]:
    with _lock:
        if kind not in _templates:
            _templates[kind] = _prebuilt(kind) or _build(kind)
        return _templates[kind]


def _prebuilt(kind: str) -> tuple[Path, Path] | None:
    """The template :func:`prebuild`'s process has made, or None when it has not (yet): the
    caller then makes one here at once (and an error shows in the test that needed it)."""
    if _prebuilding is None:
        return None
    _, root = _prebuilding
    done = root / kind / "named"  # written once that kind's template is complete
    if not done.is_file():
        return None
    database = root / kind / (f"store/{DB_FILE}" if kind == "prov" else DB_FILE)
    return database, Path(done.read_text(encoding="utf-8"))


def _build(kind: str, root: Path | None = None) -> tuple[Path, Path]:
    from mlflow import MlflowClient
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if root is None:
        root = Path(tempfile.mkdtemp(prefix=f"mlflow-prov-{kind}-template-"))
        atexit.register(shutil.rmtree, root, True)
    else:
        root.mkdir()
    if kind == "prov":
        uri, database, named = f"prov://{root / 'store'}", root / "store" / DB_FILE, root / "store"
    else:
        uri, database, named = f"sqlite:///{root / DB_FILE}", root / DB_FILE, root
    previous = Path.cwd()
    os.chdir(root)  # a plain store's Default experiment points into the working directory
    try:
        MlflowClient(uri).search_experiments()
    finally:
        os.chdir(previous)
    for cached in [key for key in SqlAlchemyStore._engine_map if str(root) in key]:
        SqlAlchemyStore._engine_map.pop(cached).dispose()
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the one file
        (location,) = connection.execute(
            "SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchone()
    finally:
        connection.close()
    assert str(named) in location, (
        f"the Default experiment's artifacts are at {location!r}, not under {named}: "
        "update store_templates for the new layout")
    return database, named


def _copy(template: Path, database: Path, named: Path, place: Path) -> None:
    shutil.copyfile(template, database)
    connection = sqlite3.connect(database)
    try:
        with connection:
            (location,) = connection.execute(
                "SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchone()
            now = int(time.time() * 1000)
            connection.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                "last_update_time = ? WHERE experiment_id = 0",
                (location.replace(str(named), str(place), 1), now, now))
    finally:
        connection.close()


if __name__ == "__main__":  # prebuild()'s process: python store_templates.py ROOT KIND...
    for made in sys.argv[2:]:
        _, named_path = _build(made, Path(sys.argv[1]) / made)
        marker = Path(sys.argv[1]) / made / "named"
        partial = marker.with_suffix(".partial")
        partial.write_text(str(named_path), encoding="utf-8")
        partial.replace(marker)  # whole or absent, whenever the tests look
