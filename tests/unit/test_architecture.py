"""The two rooms: capture never imports the exporters; exporters read MLflow only through its
public API and the journal's read API. Checked on the source, so a stray import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MLFLOW = {"mlflow", "mlflow.entities", "mlflow.exceptions", "mlflow.artifacts",
                 "mlflow.tracking", "mlflow.utils.file_utils"}
JOURNAL_READ_API = {# a server database's one-line fail-fast check, shared by export (issue 10)
                    "mlflow_prov.preflight": {"check_database", "DatabaseUnavailableError"},
                    "mlflow_prov.journal": {"read_events", "verify_chain",
                                            "require_existing_store",
                                            "JournalUnavailableError", "JournalEvent",
                                            "read_events_page", "EventPage",
                                            "read_events_paged",
                                            "chain_heads", "chain_hash_at", "chain_head",
                                            "read_event_hashes"},
                    # documented fast read of MLflow's run tables, for verify (issue 10)
                    "mlflow_prov.stored_rows": {"open_store", "read_runs", "read_run_rows",
                                                "RunRows", "RUN_COLUMNS",
                                                "UnknownSchemaError", "read_experiment_rows",
                                                "EXPERIMENT_COLUMNS", "newest_metric_rows",
                                                # LoggedModels, registry, datasets (issue 17)
                                                "read_logged_model_rows", "LoggedModelRows",
                                                "model_metrics_digest", "read_registry_rows",
                                                "RegistryRows", "read_dataset_inputs",
                                                "DatasetInput"},
                    # documented fast read of MLflow's GenAI tables, for verify (issue 19)
                    "mlflow_prov.genai_rows": {"read_assessments", "read_dataset_records",
                                               "read_prompt_aliases", "read_prompt_templates",
                                               "read_span_digests", "read_trace_infos"},
                    # which series changed since written, for an export's check (issue 12)
                    "mlflow_prov.series_summaries": {"series_marks", "SeriesMark"},
                    # documented fast read of MLflow's metric tables, for export (issue 12)
                    "mlflow_prov.fast_read": {"open_reader", "MetricReader", "RawSeries",
                                              "SeriesSummary", "KNOWN_SCHEMAS",
                                              "refresh_statistics"},
                    # lineage kept at write time, read by the one lineage (issue 20)
                    "mlflow_prov.lineage_edges": {"open_lineage", "LineageReader",
                                                  "MemoryReader", "EdgeRow", "NodeRow",
                                                  "node_id", "backfill_rows", "source_uri",
                                                  "PARENT_RUN_TAG"},
                    # the stored form of a metric row, one for capture and verify (issue 22)
                    "mlflow_prov.digests": {"EMPTY_DIGEST", "add_digests", "metric_row_hash",
                                            "multiset_digest", "pairs_digest",
                                            "record_digest", "stored_float", "stored_integer",
                                            "unnormalised_metric_row_hash"},
                    # one OpenLineage event builder for the live emitter and export (issue 21)
                    "mlflow_prov.openlineage_events": {
                        "TERMINAL_EVENTS", "LineageDataset", "MetricFacts", "RunFacts",
                        "artifact_name", "dataset_name", "logged_model_name",
                        "model_version_name", "run_events", "schema_fields"},
                    # the prov server app journals artifact uploads it sees (issue 18)
                    "mlflow_prov.artifact_uploads": {"attach_upload_recording",
                                                     "record_asgi_uploads"},
                    # seals: capture's API that seals and reads seals, for the CLI and the
                    # /prov/ app (issue 21)
                    "mlflow_prov.seals": {"seal", "unseal", "read_seal", "who_text",
                                          "SealTargetError", "SealChange"},
                    # undecoded rows for log, metric stretches summed for timelines (issue 20)
                    "mlflow_prov.journal_scan": {"RawEvent", "scan_rows", "StretchStats",
                                                 "KeyStats", "stretch_end", "stretch_stats",
                                                 "merge_stretches", "scan_columns",
                                                 "whole_stretch"}}
SHARED_VOCABULARY = "mlflow_prov.vocabulary"  # both rooms' words: exporters may import any
# The export room's one door to MLflow internals, each under a contract test; it shares the
# contract machinery of capture's compat module.
EXPORT_COMPAT = "exporters/compat.py"
COMPAT_MACHINERY = ("mlflow_prov.compat", {"CompatError", "Contract", "contract"})


def _imports(package: str) -> list[tuple[Path, str, list[str]]]:
    """(file, module, imported names) for every import statement under ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((path, node.module, [alias.name for alias in node.names]))
    return found


def test_capture_never_imports_exporters():
    offenders = [f"{path.relative_to(ROOT)}: {module}" for path, module, _ in
                 _imports("mlflow_prov") if module.split(".")[0] == "exporters"]
    assert not offenders, offenders


def _breaks_the_read_boundary(module: str, names: list[str]) -> bool:
    top = module.split(".")[0]
    if top == "mlflow":
        return module not in PUBLIC_MLFLOW
    if module == SHARED_VOCABULARY:
        return False
    if top == "mlflow_prov":
        return not names or not set(names) <= JOURNAL_READ_API.get(module, set())
    return False


def test_exporters_use_public_mlflow_and_the_journal_read_api():
    offenders = [f"{path.relative_to(ROOT)}: {module} {names}"
                 for path, module, names in _imports("exporters")
                 if _breaks_the_read_boundary(module, names)
                 and not _compat_door(path, module, names)]
    assert not offenders, offenders


def _compat_door(path: Path, module: str, names: list[str]) -> bool:
    if path.relative_to(ROOT).as_posix() != EXPORT_COMPAT:
        return False
    return module.split(".")[0] == "mlflow" or (
        module == COMPAT_MACHINERY[0] and set(names) <= COMPAT_MACHINERY[1])


CAPTURE_COMPAT = "mlflow_prov/compat.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_mlflow_uses(path: Path) -> list[str]:
    """The private MLflow names a file reaches: a private module or name in an import from
    ``mlflow``, or a private attribute of a name such an import bound."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bound: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "mlflow":
            names = [alias.name for alias in node.names]
            if any(_private(part) for part in node.module.split(".")) or any(map(_private,
                                                                                 names)):
                found.append(f"from {node.module} import {', '.join(names)}")
            bound |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mlflow":
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"import {alias.name}")
                    bound.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) \
                and isinstance(node.value, ast.Name) and node.value.id in bound:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_capture_reaches_mlflow_internals_only_through_its_compat_module():
    """The rule the exporters' test above checks for their room, for capture's: every private
    MLflow name it touches is in ``mlflow_prov/compat.py``, under a contract test."""
    offenders = [f"{path.relative_to(ROOT)}: {use}"
                 for path in sorted((ROOT / "mlflow_prov").rglob("*.py"))
                 if path.relative_to(ROOT).as_posix() != CAPTURE_COMPAT
                 for use in _private_mlflow_uses(path)]
    assert not offenders, offenders
