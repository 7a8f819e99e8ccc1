"""Offline validators for exported files: CF (compliance-checker) and RO-Crate (roc-validator).

Both run without network access. roc-validator fetches each crate's JSON-LD ``@context``
over HTTP, so its cache is seeded first from ``../shared/rocrate/`` (relative to the repository
root) by that folder's ``seed_validator_cache.py``; tests skip with a reason when the shared
folder is absent instead of failing on a missing network.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
ROCRATE_SHARED = SHARED / "rocrate"
YPROV4ML_SAMPLES = SHARED / "samples" / "yprov4ml"
PROCESS_RUN_PROFILE = "process-run-crate-0.5"


def shared_path(path: Path) -> Path:
    """``path`` if it exists, else skip the test naming what is missing."""
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared folder beside the repository "
                    "(../shared) is needed for this test")
    return path


def cf_issues(path: Path, standard: str = "cf:1.11") -> dict[str, list[str]]:
    """compliance-checker's messages for ``path`` by priority: ``high``, ``medium``, ``low``.

    Raises AssertionError when the checker itself errors (it crashes on some layouts).
    """
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite.load_all_available_checkers()
    report = path.with_suffix(".cf-report.json")
    try:
        ComplianceChecker.run_checker(str(path), [standard], 0, "normal",
                                      output_filename=str(report), output_format="json")
        result = json.loads(report.read_text())[standard]
    finally:
        report.unlink(missing_ok=True)
    if result.get("errors"):
        raise AssertionError(f"compliance-checker failed on {path}: {result['errors']}")
    return {level: [f"{item['name']}: {msg}" for item in result[f"{level}_priorities"]
                    for msg in item["msgs"]]
            for level in ("high", "medium", "low")}


def seed_rocrate_cache(directory: Path) -> Path:
    """Seed roc-validator's HTTP cache in ``directory``; returns the cache path prefix."""
    script = shared_path(ROCRATE_SHARED / "seed_validator_cache.py")
    cache = directory / "rocrate-validator-cache"
    subprocess.run([sys.executable, str(script), str(cache)], check=True,
                   capture_output=True, text=True)
    return cache


@dataclass(frozen=True)
class CrateReport:
    """roc-validator's verdict at one level, with the issues as readable lines."""

    passed: bool
    issues: list[str]


def validate_crate(crate: Path, cache: Path, level: str = "REQUIRED",
                   profile: str = PROCESS_RUN_PROFILE) -> CrateReport:
    """Validate a crate folder or zip offline at ``level`` (REQUIRED, RECOMMENDED)."""
    from rocrate_validator import models, services

    settings = models.ValidationSettings(
        rocrate_uri=str(crate), profile_identifier=profile, requirement_severity=level,
        offline=True, cache_path=cache)
    result = services.validate(settings)
    issues = [f"{issue.severity.name} {issue.check.identifier}: {issue.message}"
              for issue in result.get_issues()]
    return CrateReport(passed=result.passed(), issues=issues)
