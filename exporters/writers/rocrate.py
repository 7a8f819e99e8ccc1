"""Process Run Crates (RO-Crate 1.1, Process Run Crate 0.5): a run, packaged to share.

Per run ``<experiment dir>/run-<run_id>.crate.zip`` and per experiment
``<experiment dir>/experiment.crate.zip`` (folders ``*.crate/`` with ``crate_as_folder``).
A crate holds the files the other writers produced (``prov.json``, ``graph.svg``,
``metrics.nc`` ...), the run's artifacts, and one ``CreateAction`` per run: the training code
as ``instrument``, the user as ``agent``, params and datasets as ``object``, files as
``result``, energy and emissions (``system/carbon/*`` metrics) as ``resourceUsage``.

RO-Crate 1.1 because Process Run Crate 0.5 is defined on it (the 1.3 default fails the
profile). Its JSON-LD context lacks ``sha256`` and ``resourceUsage``, so both terms are added
inline, with ``journalHead`` and ``sanitized`` (a run time clamped to years 1-9999, with
MLflow's raw value, as ``mlflowprov:sanitized`` says in the PROV files). Artifacts above
``max_artifact_bytes`` (or never hashed) are referenced by their URI with their size instead
of being copied.
"""

from __future__ import annotations

import hashlib
import mimetypes
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlparse

from prov.model import ProvDocument
from rocrate.model.contextentity import ContextEntity
from rocrate.model.file import File
from rocrate.rocrate import ROCrate

from exporters.artifacts import ArtifactCache, sha256_file
from exporters.errors import WriterError
from exporters.layout import (
    CRATE_ARTIFACTS_DIR,
    EXPERIMENT_STEM,
    crate_path,
    is_crate,
    run_dir_name,
)
from exporters.options import WriterContext
from exporters.prov_model import MLFLOWPROV
from exporters.records import ArtifactRecord, ExperimentRecord, MetricSummary, RunRecord
from exporters.sanitize import ClampedTime, time_note
from mlflow_prov.vocabulary import JOURNAL_HEAD_ATTRIBUTE, JOURNAL_HEAD_IRI, unit_for_key

PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
EXTRA_TERMS = {"sha256": "http://schema.org/sha256",
               "resourceUsage": "https://w3id.org/ro/terms/workflow-run#resourceUsage",
               JOURNAL_HEAD_ATTRIBUTE: JOURNAL_HEAD_IRI,
               "sanitized": MLFLOWPROV["sanitized"].uri}
# The profile allows only completed and failed; a run still going gets no actionStatus.
ACTION_STATUS = {"FINISHED": "http://schema.org/CompletedActionStatus",
                 "FAILED": "http://schema.org/FailedActionStatus",
                 "KILLED": "http://schema.org/FailedActionStatus"}
ENCODING_FORMATS = {".nc": "application/x-netcdf", ".json": "application/json",
                    ".jsonld": "application/ld+json", ".provn": "text/provenance-notation",
                    ".dot": "text/vnd.graphviz", ".svg": "image/svg+xml", ".csv": "text/csv",
                    ".txt": "text/plain", ".md": "text/markdown", ".yaml": "application/yaml",
                    ".yml": "application/yaml", ".pt": "application/octet-stream",
                    ".pkl": "application/octet-stream", ".html": "text/html"}
LICENSE_TAG = "license"
NO_LICENSE = ("No license was recorded in MLflow (set a 'license' tag on the run or "
              "experiment, e.g. an SPDX id); ask the owner of the run before reuse.")


def encoding_format(name: str) -> str:
    """The IANA media type for a file name; octet-stream when nothing better is known."""
    suffix = Path(name).suffix.lower()
    return (ENCODING_FORMATS.get(suffix) or mimetypes.guess_type(name)[0]
            or "application/octet-stream")


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 with milliseconds (MLflow's resolution) and an explicit offset: the form the
    Process Run Crate profile's pattern accepts."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds") if value else None


def _ref(ids: Sequence[str]) -> dict[str, str] | list[dict[str, str]]:
    """A JSON-LD reference: a single object for one id (RO-Crate 1.1 prefers it), else a list."""
    refs = [{"@id": i} for i in ids]
    return refs[0] if len(refs) == 1 else refs




def _is_web_url(text: str | None) -> TypeGuard[str]:
    return bool(text) and urlparse(text).scheme in ("http", "https")


class _CrateBuilder:
    """Assembles one crate. Remote artifacts come from the export's :class:`ArtifactCache`,
    which keeps them until the crate is written (rocrate copies sources only at write time)."""

    def __init__(self, name: str, description: str, license_tag: str | None,
                 max_artifact_bytes: int | None, artifacts: ArtifactCache) -> None:
        self.crate = ROCrate(version="1.1")
        self.crate.metadata.extra_terms.update(EXTRA_TERMS)
        self.max_artifact_bytes = max_artifact_bytes
        self.artifacts = artifacts
        self.actions: list[str] = []
        root = self.crate.root_dataset
        root["name"] = name
        root["description"] = description
        root["datePublished"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
        root["conformsTo"] = {"@id": PROFILE}
        root["license"] = self._license(license_tag)
        self._add_entity(PROFILE, {"@type": "CreativeWork", "name": "Process Run Crate",
                                   "version": "0.5"})

    def _add_entity(self, identifier: str, properties: dict[str, Any]) -> str:
        """Add a contextual entity once (ids are shared across runs) and return its id."""
        if self.crate.get(identifier) is None:
            self.crate.add(ContextEntity(self.crate, identifier, properties=properties))
        return identifier

    def _license(self, tag: str | None) -> str | dict[str, str]:
        """The license a ``license`` tag names (a URL or an SPDX id), else a text saying none
        was recorded: the crate must have one, and the export cannot know the real one."""
        if not tag:
            return NO_LICENSE
        if _is_web_url(tag) or " " not in tag.strip():
            url = tag if _is_web_url(tag) else f"https://spdx.org/licenses/{tag.strip()}"
            return {"@id": self._add_entity(url, {"@type": "CreativeWork", "name": tag})}
        return tag

    def add_file(self, path: Path, dest: str, description: str | None = None,
                 sha256: str | None = None) -> str:
        """Copy a local file into the crate with its size, media type and digest (hashed
        here unless the caller already knows it)."""
        properties = {"name": Path(dest).name, "contentSize": str(path.stat().st_size),
                      "encodingFormat": encoding_format(dest),
                      "sha256": sha256 or sha256_file(path)}
        if description:
            properties["description"] = description
        entity: File = self.crate.add_file(path, dest_path=dest, properties=properties)
        return entity.id

    def add_artifact(self, artifact: ArtifactRecord, dest: str) -> str:
        """Copy an artifact into the crate, or reference it by URI when it is too big,
        was never hashed, or cannot be fetched."""
        too_big = (self.max_artifact_bytes is not None and artifact.size is not None
                   and artifact.size > self.max_artifact_bytes)
        source = None if too_big or artifact.sha256 is None else self._fetch(artifact)
        if source is None:
            return self._reference(artifact)
        return self.add_file(source, dest, description=f"MLflow artifact {artifact.path}",
                             sha256=artifact.sha256)

    def _fetch(self, artifact: ArtifactRecord) -> Path | None:
        """The artifact as a local file, from the export's cache (the download made while
        hashing, when the export kept it); None when it cannot be read any more."""
        from mlflow.exceptions import MlflowException

        try:
            return self.artifacts.fetch_uri(artifact.uri, artifact.path)
        except (MlflowException, OSError):
            return None

    def _reference(self, artifact: ArtifactRecord) -> str:
        """A web-based data entity: the artifact stays where MLflow keeps it."""
        properties = {"name": Path(artifact.path).name,
                      "description": f"MLflow artifact {artifact.path}, not copied "
                                     "(larger than --max-artifact-bytes or not readable)",
                      "encodingFormat": encoding_format(artifact.path)}
        if artifact.size is not None:
            properties["contentSize"] = str(artifact.size)
        if artifact.sha256:
            properties["sha256"] = artifact.sha256
        entity = self.crate.add_file(artifact.uri, fetch_remote=False, properties=properties)
        return entity.id

    def add_run(self, run: RunRecord, result_ids: Sequence[str]) -> str:
        """The run's CreateAction, with everything it links to."""
        action_id = f"#run-{run.run_id}"
        properties: dict[str, Any] = {
            "@type": "CreateAction",
            "name": f"MLflow run {run.name or run.run_id}",
            "description": f"MLflow run {run.run_id} of experiment {run.experiment_id}, "
                           f"status {run.status}",
            "identifier": run.run_id,
            "instrument": {"@id": self._instrument(run)},
        }
        if run.status in ("FAILED", "KILLED"):
            properties["error"] = f"MLflow run status {run.status}"
        optional = {"startTime": _iso(run.start_time), "endTime": _iso(run.end_time),
                    "actionStatus": ACTION_STATUS.get(run.status),
                    JOURNAL_HEAD_ATTRIBUTE: run.journal_head,
                    "sanitized": [time_note(name, value) for name, value in (
                        ("startTime", run.start_time), ("endTime", run.end_time))
                        if isinstance(value, ClampedTime)]}
        properties.update({k: v for k, v in optional.items() if v})
        links = {"agent": [self._agent(run.user)] if run.user else [],
                 "object": self._objects(run), "result": list(result_ids),
                 "resourceUsage": self._resource_usage(run)}
        properties.update({k: _ref(v) for k, v in links.items() if v})
        self._add_entity(action_id, properties)
        self.actions.append(action_id)
        return action_id

    def _instrument(self, run: RunRecord) -> str:
        """The training code as a SoftwareApplication, identified by its repository URL when
        MLflow recorded one (the profile wants an absolute id)."""
        name = run.source_name or run.entry_point or "training code"
        identifier = run.git_repo_url if _is_web_url(run.git_repo_url) else \
            f"#software-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
        properties: dict[str, Any] = {"@type": "SoftwareApplication",
                                      "name": Path(name).name or name}
        if run.git_commit:
            properties["softwareVersion"] = run.git_commit
        if _is_web_url(run.git_repo_url):
            properties["url"] = run.git_repo_url
        if run.source_type:
            properties["description"] = f"MLflow source type {run.source_type}: {name}"
        return self._add_entity(identifier, properties)

    def _agent(self, user: str) -> str:
        return self._add_entity(f"#person-{user}", {"@type": "Person", "name": user})

    def _objects(self, run: RunRecord) -> list[str]:
        params = [self._add_entity(f"#run-{run.run_id}-param-{name}",
                                   {"@type": "PropertyValue", "name": name, "value": value})
                  for name, value in sorted(run.params.items())]
        datasets = [self._add_entity(
            f"#dataset-{ds.digest}-{ds.name}",
            {"@type": "CreativeWork", "name": ds.name, "identifier": ds.digest,
             "description": f"MLflow dataset ({ds.source_type}) {ds.source}"
                            + (f", context {ds.context}" if ds.context else "")})
            for ds in run.datasets]
        return params + datasets

    def _resource_usage(self, run: RunRecord) -> list[str]:
        """Energy and emissions totals: the last value of each ``system/carbon/*`` series
        (codecarbon's values are cumulative)."""
        return [self._usage_entity(run, summary) for summary in run.metrics
                if summary.source == "carbon"]

    def _usage_entity(self, run: RunRecord, summary: MetricSummary) -> str:
        properties: dict[str, Any] = {"@type": "PropertyValue", "name": summary.key,
                                      "value": summary.last}
        unit = unit_for_key(summary.key)
        if unit:
            properties["unitCode"] = unit.qudt
        return self._add_entity(f"#run-{run.run_id}-usage-{summary.key}", properties)

    def write(self, target: Path, as_folder: bool) -> Path:
        self.crate.root_dataset["mentions"] = _ref(self.actions)
        if as_folder:
            if target.exists():
                shutil.rmtree(target)
            self.crate.write(target)
        else:
            target.unlink(missing_ok=True)
            self.crate.write_zip(target)
        return target


def _experiment_files(written: Sequence[Path], exp_dir: Path) -> dict[str, Path]:
    """Crate path -> file for every file this export wrote (``ctx.written``), crates aside:
    the folder may still hold an earlier export's files, which are not this crate's."""
    return {_relative(p, exp_dir): p for p in written if p.is_file() and not is_crate(p)}


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


class RoCrateWriter:
    """Document writer ``rocrate``: runs last and packs what the others wrote."""

    @contextmanager
    def _builder(self, ctx: WriterContext, name: str, description: str,
                 license_tag: str | None) -> Iterator[_CrateBuilder]:
        with nullcontext(ctx.artifacts) if ctx.artifacts else ArtifactCache(
                ctx.tracking_uri) as artifacts:
            yield _CrateBuilder(name, description, license_tag, ctx.options.max_artifact_bytes,
                                artifacts)

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        """``run-<id>.crate.zip`` beside the run folder, holding ``ctx.written`` and artifacts.

        Named after the run folder (:mod:`exporters.layout`)."""
        target = crate_path(run_dir.parent, run_dir_name(run.run_id), ctx.options.crate_as_folder)
        with self._builder(ctx, f"MLflow run {run.name or run.run_id}",
                           f"Process Run Crate of MLflow run {run.run_id} "
                           f"(experiment {run.experiment_id})",
                           run.tags.get(LICENSE_TAG)) as builder:
            results = [builder.add_file(p, _relative(p, run_dir)) for p in ctx.written
                       if p.is_file() and not is_crate(p)]
            results += self._artifacts(builder, run, CRATE_ARTIFACTS_DIR)
            builder.add_run(run, results)
            return [self._write(builder, target, ctx)]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        """``experiment.crate.zip``: the experiment's files at the root, each run's exported
        files and artifacts under ``run-<id>/``, one CreateAction per run."""
        target = crate_path(exp_dir, EXPERIMENT_STEM, ctx.options.crate_as_folder)
        with self._builder(ctx, f"MLflow experiment {experiment.name}",
                           f"Process Run Crate of MLflow experiment {experiment.experiment_id}"
                           f" ({len(runs)} runs)",
                           experiment.tags.get(LICENSE_TAG)) as builder:
            files = _experiment_files(ctx.written, exp_dir)
            ids = {dest: builder.add_file(path, dest) for dest, path in sorted(files.items())}
            for run in runs:
                prefix = run_dir_name(run.run_id)
                results = [i for dest, i in ids.items() if dest.startswith(f"{prefix}/")]
                results += self._artifacts(builder, run, f"{prefix}/{CRATE_ARTIFACTS_DIR}")
                builder.add_run(run, results)
            return [self._write(builder, target, ctx)]

    @staticmethod
    def _artifacts(builder: _CrateBuilder, run: RunRecord, prefix: str) -> list[str]:
        return [builder.add_artifact(a, f"{prefix}/{a.path}") for a in run.artifacts]

    @staticmethod
    def _write(builder: _CrateBuilder, target: Path, ctx: WriterContext) -> Path:
        try:
            return builder.write(target, ctx.options.crate_as_folder)
        except OSError as exc:
            raise WriterError(f"cannot write RO-Crate {target}: {exc}") from exc

