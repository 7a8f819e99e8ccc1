"""``--compress`` / ``use_compressor``: each exported run folder also as one zip, as yProv4ML did.

yProv4ML's ``use_compressor`` left a zip of the run's provenance folder beside it, which is what
its users archive and send around; the folder stays for tools that read it in place. The zip
holds the folder itself (``run-<id>/...``), so unpacking it anywhere recreates the export.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from mlflow_prov.vocabulary import RUN_DIR_PREFIX


def compress_run_folders(experiment_dir: Path, files: Iterable[Path]) -> list[Path]:
    """Zip every run folder that ``files`` (an export's output) lies in; returns the zips."""
    base = experiment_dir.resolve()
    folders = set()
    for path in files:
        try:
            top = path.resolve().relative_to(base).parts[0]
        except (ValueError, IndexError):
            continue
        if top.startswith(RUN_DIR_PREFIX) and (base / top).is_dir():
            folders.add(top)
    return [Path(shutil.make_archive(str(base / name), "zip", root_dir=base, base_dir=name))
            for name in sorted(folders)]
