"""The getters over the yProv4ML compatibility corpus (tests/data/yprov4ml, see make_corpus.py).

Every metric of every document is read or refused exactly as ``expected.json`` says; the only
refusals allowed are a truncated inline list without its full copy and a missing file.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from exporters import getters
from exporters.getters import ProvenanceReadError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "yprov4ml"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text())
CASES = [(doc, key) for doc, metrics in EXPECTED.items() for key in metrics]


def _same(actual: object, expected: object) -> bool:
    if expected == "nan":
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, float):
        return actual == pytest.approx(expected, rel=1e-6)
    return actual == expected


@pytest.mark.parametrize(("document", "key"), CASES, ids=[f"{d}::{k}" for d, k in CASES])
def test_every_metric_is_read_or_refused_as_expected(document, key):
    want = EXPECTED[document][key]
    doc = getters.load(CORPUS / document)
    if want["status"] == "refused":
        with pytest.raises(ProvenanceReadError, match=want["reason"]):
            getters.get_metric(doc, key)
        return
    series = getters.get_metric(doc, key)
    assert list(series.columns) == ["step", "timestamp", "value", "epoch"]
    assert series["value"].dtype == (object if want["lists"] else np.float64)
    if want["count"] is not None:
        assert len(series) == want["count"]
    if "first" in want:
        assert _same(series["value"].iloc[0], want["first"])
        assert _same(series["value"].iloc[-1], want["last"])
        assert series["timestamp"].iloc[0] == want["first_timestamp"]


def test_corpus_report_counts_read_and_refused_with_reasons():
    report = Counter()
    for document, metrics in EXPECTED.items():
        doc = getters.load(CORPUS / document)
        for key in metrics:
            try:
                getters.get_metric(doc, key)
                report["read"] += 1
            except ProvenanceReadError as exc:
                reason = "truncated, no full copy" if "truncated" in exc.reason else "missing file"
                report[f"refused: {reason}"] += 1
    assert report == {"read": 74, "refused: truncated, no full copy": 8,
                      "refused: missing file": 10}


def test_seeds_readme_call_on_a_parsed_dict_by_entity_id():
    path = CORPUS / "samples/dataset_v0-distributed_provgraph_3B.json"
    with path.open() as handle:
        series = getters.get_metric(json.load(handle), "Loss_Context.TRAINING")
    raw = json.loads(path.read_text())["entity"]["Loss_Context.TRAINING"]
    assert series["value"].tolist() == json.loads(raw["prov-ml:metric_value_list"])
    names = getters.get_metrics(json.loads(path.read_text()), "Context.TRAINING")
    assert "Loss_Context.TRAINING" in names


def test_parsed_dict_resolves_files_against_base_dir():
    folder = CORPUS / "generated/v2_mixed_files"
    data = json.loads((folder / "prov.json").read_text())
    with pytest.raises(ProvenanceReadError, match="missing"):
        getters.get_metric(data, "MSE", context="training")
    series = getters.get_metric(getters.load(data, base_dir=folder), "MSE", "training")
    assert len(series) == 30


def test_seeds_keyword_arguments():
    doc = getters.load(CORPUS / "generated/v1_full_copies/prov.json")
    ms = getters.get_metric(doc, "acc_Context.VALIDATION")
    seconds = getters.get_metric(doc, "acc", "validation", time_in_sec=True)
    assert seconds["timestamp"].tolist() == pytest.approx((ms["timestamp"] / 1000).tolist())
    incremental = getters.get_metric(doc, "acc", time_incremental=True)
    assert incremental["timestamp"].iloc[0] == 0
    assert incremental["timestamp"].iloc[1:].tolist() == [7] * 19
    ordered = getters.get_metric(doc, "acc", sort_by="value", start_at=2, end_at=5)
    assert len(ordered) == 3
    assert ordered["value"].tolist() == sorted(ms["value"])[2:5]
    assert getters.get_avg_metric(doc, "acc") == pytest.approx(ms["value"].mean())
    assert getters.get_sum_metric(doc, "acc") == pytest.approx(ms["value"].sum())
    assert getters.get_metric_time(doc, "acc") == 7 * 19
    assert getters.get_metric_time(doc, "acc", time_in_sec=True) == pytest.approx(0.133)


def test_list_valued_series_refuse_averaging_with_a_reason():
    doc = getters.load(CORPUS / "generated/v0_numpy_reprs_and_lists.json")
    series = getters.get_metric(doc, "correct")
    assert series["value"].tolist() == [[False, True, True], [True, True, False]]
    with pytest.raises(ValueError, match="holds a list per step"):
        getters.get_avg_metric(doc, "correct")


def test_seeds_param_getters():
    doc = getters.load(CORPUS / "samples/dataset_v1-inline_MetricsType.TXT_False_None_0.json")
    assert getters.get_param(doc, "total_params") == "7850"
    assert getters.get_params(doc, "execution_") == ["1749030903.2509727",
                                                     "1749030964.601807"]
    with pytest.raises(KeyError, match="no parameter"):
        getters.get_param(doc, "absent")


@pytest.mark.parametrize("text", ["[1, 2", "[1] 2", "[np.float64(1), os.system('x')]",
                                  "[__import__('os')]", "1, 2"])
def test_parse_list_refuses_what_is_not_a_list_of_numbers(text):
    with pytest.raises(ValueError):
        getters.parse_list(text)


def test_parse_list_shapes():
    assert getters.parse_list("[[0 1]\n [1 0]]") == [[0, 1], [1, 0]]
    assert getters.parse_list("[np.float64(0.5), np.int64(3), np.True_]") == [0.5, 3, True]
    assert getters.parse_list("[0, ..., 4]") == [0, ..., 4]
    assert math.isinf(getters.parse_list("[-inf]")[0])
