"""Offline validators for exported files: CF (compliance-checker) and RO-Crate (roc-validator).

Both run without network access. roc-validator fetches each crate's JSON-LD ``@context``
over HTTP through a requests-cache session, so its cache is seeded first
(:func:`seed_rocrate_cache`) from the context files in ``tests/data/rocrate/`` (the RO-Crate
1.1 specification's own file, Apache-2.0) and the rocrate package (1.3).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ROCRATE_CONTEXT_1_1 = DATA / "rocrate" / "context-1.1.jsonld"
YPROV4ML_SAMPLES = DATA / "yprov4ml" / "samples"
PROCESS_RUN_PROFILE = "process-run-crate-0.5"


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


def _rocrate_contexts() -> dict[str, Path]:
    import rocrate

    return {"https://w3id.org/ro/crate/1.1/context": ROCRATE_CONTEXT_1_1,
            "https://w3id.org/ro/crate/1.3/context":
                Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"}


def seed_rocrate_cache(directory: Path) -> Path:
    """Seed roc-validator's HTTP cache in ``directory`` with the RO-Crate contexts, served from
    local files through a transport adapter; returns the cache path prefix (roc-validator
    opens ``<prefix>.sqlite``), so later validations never touch the network."""
    import requests_cache
    from requests.adapters import HTTPAdapter
    from urllib3.response import HTTPResponse

    contexts = _rocrate_contexts()

    class LocalFiles(HTTPAdapter):
        def send(self, request, **kwargs):
            raw = HTTPResponse(body=io.BytesIO(contexts[request.url].read_bytes()), status=200,
                               preload_content=False, request_url=request.url,
                               headers={"Content-Type": "application/ld+json"})
            return self.build_response(request, raw)

    cache = directory / "rocrate-validator-cache"
    cache.parent.mkdir(parents=True, exist_ok=True)
    session = requests_cache.CachedSession(cache_name=str(cache), backend="sqlite",
                                           expire_after=-1, allowable_methods=("GET",))
    session.mount("https://", LocalFiles())
    for url in contexts:
        session.get(url).raise_for_status()
        assert session.cache.contains(url=url), f"{url} was not cached"
    session.close()
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
