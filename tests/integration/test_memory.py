"""The export streams: peak memory follows the largest series, not the experiment.

A small run of ``benchmarks/bench_metrics_export.py`` (which does the same with >= 2 million
points): exporting 2 runs x 2 series must not need more Python heap than exporting 1 series,
give or take half of what one series costs to read.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _benchmark() -> ModuleType:
    path = REPO_ROOT / "benchmarks" / "bench_metrics_export.py"
    spec = importlib.util.spec_from_file_location("bench_metrics_export", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_export_peak_memory_is_bounded_by_one_series(tmp_path):
    result = _benchmark().run(tmp_path, runs=2, series=2, points=4000)
    single = result["single_series"]["traced_peak_bytes"]
    assert result["export_many"]["traced_peak_bytes"] < result["series"] * single / 2, result
    assert result["traced_growth_bytes"] < single / 2, result
    assert result["bounded"]
