"""Where an export puts things: folder and file names, in one place.

Why: the export loop creates the folders, each writer names its files, the RO-Crate writer
packs them by path and the getters find them again. When each spelled ``run-<id>`` or
``prov.json`` itself, a change in one place silently broke the others (a crate that packs
nothing, a getter that finds no file). Every path of the exported tree is built here::

    OUT/<experiment>/                         experiment_dir()
        experiment.prov.json, experiment.provn, experiment.dot, experiment.svg, ...
        experiment.crate.zip                  crate_path(exp_dir, EXPERIMENT_STEM, ...)
        run-<run_id>/                         run_dir()
            prov.json, prov.provn, graph.dot, graph.svg, graph.html, prov.ttl, card.md, ...
            metrics.nc | metrics/<key>.csv | metrics.zarr
            transparency-log.json             LOG_PROOFS_FILE (export --checkpoint)
            requirements.txt                  REQUIREMENTS_FILE (the recorded distributions)
        run-<run_id>.crate.zip                crate_path(exp_dir, run_dir_name(...), ...)

The ``run-`` prefix itself is :func:`mlflow_prov.vocabulary.run_dir_name`, shared with capture.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from mlflow_prov.vocabulary import REDACTED
from mlflow_prov.vocabulary import run_dir_name as _run_folder

# --- document files (run file, experiment file) -------------------------------------------------
PROV_JSON = ("prov.json", "experiment.prov.json")
PROVN = ("prov.provn", "experiment.provn")
DOT = ("graph.dot", "experiment.dot")
SVG = ("graph.svg", "experiment.svg")
HTML = ("graph.html", "experiment.html")
PROVO_TURTLE = ("prov.ttl", "experiment.ttl")
JSONLD = ("prov.jsonld", "experiment.jsonld")
PROV_XML = ("prov.xml", "experiment.prov.xml")
CARD = ("card.md", "experiment.card.md")

# --- metric files, inside a run folder ------------------------------------------------------------
NETCDF_FILE = "metrics.nc"
CSV_DIR = "metrics"
ZARR_STORE = "metrics.zarr"

# --- crates ------------------------------------------------------------------------------------
EXPERIMENT_STEM = "experiment"
CRATE_FOLDER_SUFFIX = ".crate"
CRATE_ZIP_SUFFIX = ".crate.zip"
CRATE_ARTIFACTS_DIR = "artifacts"

# --- transparency-log proofs, inside a run folder (and so in its crates) ------------------------
LOG_PROOFS_FILE = "transparency-log.json"

# --- the installed distributions a run's creation recorded, inside a run folder -------------------
REQUIREMENTS_FILE = "requirements.txt"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_MAX_NAME = 80


def safe_name(text: str, fallback: str) -> str:
    """A folder name from a user string: ASCII letters, digits, ``._-`` only, never ``..``;
    a short hash of the original keeps two different names from colliding."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _DOTS.sub(".", _UNSAFE.sub("_", ascii_text)).strip("._-")[:_MAX_NAME] or fallback
    if slug != text:
        slug = f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"
    return slug


def experiment_dir(out_dir: Path, name: str, experiment_id: str) -> Path:
    """``OUT/<experiment name, made safe>``; ``OUT/experiment-<id>`` for a name that was
    redacted (it looked like a credential), so that two such experiments stay apart."""
    if name == REDACTED:
        return out_dir / f"experiment-{experiment_id}"
    return out_dir / safe_name(name, f"experiment-{experiment_id}")


def run_dir_name(run_id: str) -> str:
    """``run-<run_id>`` (MLflow run ids are hex, so making them safe leaves them as they are)."""
    return _run_folder(safe_name(run_id, "unknown"))


def run_dir(exp_dir: Path, run_id: str) -> Path:
    """The folder of one run's files inside the experiment's folder."""
    return exp_dir / run_dir_name(run_id)


def crate_path(directory: Path, stem: str, as_folder: bool) -> Path:
    """``<stem>.crate.zip``, or the folder ``<stem>.crate`` when crates are written unpacked."""
    return directory / (stem + (CRATE_FOLDER_SUFFIX if as_folder else CRATE_ZIP_SUFFIX))


def is_crate(path: Path) -> bool:
    """A crate an export made (or a file inside an unpacked one)."""
    return path.name.endswith((CRATE_ZIP_SUFFIX, CRATE_FOLDER_SUFFIX)) or any(
        p.name.endswith(CRATE_FOLDER_SUFFIX) for p in path.parents)
