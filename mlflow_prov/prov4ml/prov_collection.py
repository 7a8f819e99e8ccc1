"""``python -m mlflow_prov.prov4ml.prov_collection --experiment_path DIR --output_dir OUT``.

The seeds' command: one PROV-JSON document linking every PROV-JSON file found under an
experiment folder (one per rank or per run), as members of a ``prov:Collection``, each with
its relative location and sha256. Written to ``OUT/prov_collection.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from mlflow_prov.prov4ml.script import run_script

COLLECTION_FILE = "prov_collection.json"
NAMESPACE = "https://w3id.org/mlflow-prov/ns#"


def _is_prov_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and any(k in data for k in ("entity", "activity", "bundle"))


def write_collection(experiment_path: Path, output_dir: Path) -> Path:
    """Write the collection document; raises ValueError when there is nothing to collect."""
    from prov.constants import PROV_TYPE
    from prov.model import PROV, ProvDocument

    if not experiment_path.is_dir():
        raise ValueError(f"{experiment_path}: not a folder")
    output = output_dir / COLLECTION_FILE
    members = sorted(p for p in experiment_path.rglob("*.json")
                     if p.resolve() != output.resolve() and _is_prov_json(p))
    if not members:
        raise ValueError(f"{experiment_path}: no PROV-JSON file under it")
    document = ProvDocument()
    ns = document.add_namespace("mlflowprov", NAMESPACE)
    collection = document.entity(ns[f"collection/{experiment_path.name}"], {
        PROV_TYPE: PROV["Collection"], "prov:label": experiment_path.name})
    for path in members:
        relative = path.relative_to(experiment_path).as_posix()
        member = document.entity(ns[f"file/{relative}"], {
            "prov:label": path.name, "prov:location": relative,
            ns["sha256"]: hashlib.sha256(path.read_bytes()).hexdigest()})
        document.hadMember(collection, member)
    output_dir.mkdir(parents=True, exist_ok=True)
    output.write_text(str(document.serialize(format="json", indent=2)), encoding="utf-8")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_prov.prov4ml.prov_collection",
                                     description="Link every PROV-JSON of an experiment "
                                                 "folder in one collection document.")
    parser.add_argument("--experiment_path", required=True, type=Path,
                        help="folder holding the PROV-JSON files (searched recursively)")
    parser.add_argument("--output_dir", required=True, type=Path,
                        help=f"folder to write {COLLECTION_FILE} into")
    return run_script(parser, lambda a: write_collection(a.experiment_path, a.output_dir), argv)


if __name__ == "__main__":
    sys.exit(main())
