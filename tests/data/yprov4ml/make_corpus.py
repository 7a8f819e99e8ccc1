"""Build the yProv4ML compatibility corpus the getters' tests read (outputs are committed).

    .venv/bin/python tests/data/yprov4ml/make_corpus.py

``samples/`` holds the four small real samples as yProv4ML wrote them (see its README).
``generated/`` holds the shapes they lack, written from them in yProv4ML's documented layouts
(its ``MetricInfo.save_to_*`` and ``provenance_graph`` writers): numpy 2 scalar reprs inside
inline lists, ``nan``/``inf``, per-step values that are lists (nested and quoted), v1
documents whose truncated inline lists have full copies as text, NetCDF and Zarr (v2 and v3
formats), v2 documents whose series live in ``.zarr``/``.nc``/``.txt`` files, and the two
cases that must be refused: a truncated list with no full copy and a missing file.
``expected.json`` says, per document and metric entity, what the getters must return (count,
first/last value) or refuse (and why); the generator knows because it wrote the points.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import zarr

HERE = Path(__file__).resolve().parent
V0 = "samples/dataset_v0-distributed_provgraph_3B.json"
V1 = "samples/dataset_v1-inline_MetricsType.TXT_False_None_0.json"
V2 = "samples/dataset_v2-contexts_prov_MetricsType.NETCDF_False_GR0_0.json"
V3 = "samples/v3_demo_0/prov_demo_GR0_0.json"
T0 = 1749030903315  # ms, the real v1 sample's first timestamp
V1_DIR = "prov/MetricsType.MIXED_False_None_0/artifacts/metrics"


def series(n: int, seed: int) -> tuple[list[int], list[float], list[int]]:
    """Deterministic epochs, float32-exact values and ms timestamps, as yProv4ML logged them."""
    rng = np.random.default_rng(seed)
    values = rng.random(n).astype(np.float32).astype(np.float64)
    epochs = [i * 5 // n for i in range(n)]
    return epochs, values.tolist(), [T0 + 7 * i for i in range(n)]


def numpy_text(values: list[Any]) -> str:
    """An inline list as yProv4ML v1 wrote it: numpy's string, truncated past 1000 items."""
    return np.array2string(np.asarray(values), separator=", ", threshold=1000,
                           max_line_width=10**9)


def metric_entity(name: str, context: str, lists: dict[str, str], uri: str | None) -> dict:
    entity = {"prov-ml:type": "Metric", "prov-ml:name": name, "prov-ml:context": context,
              "prov-ml:source": "custom_metric",
              "prov-ml:metric_epoch_list": lists["epoch"],
              "prov-ml:metric_value_list": lists["value"],
              "prov-ml:metric_timestamp_list": lists["timestamp"]}
    if uri:
        entity["prov-ml:artifact_uri"] = uri
    return entity


def write_txt(path: Path, name: str, context: str, points: tuple, separator: str = ",") -> None:
    """``MetricInfo.save_to_txt``: a name/context/source line, then epoch,value,timestamp."""
    epochs, values, stamps = points
    lines = [f"{name}{separator}{context}{separator}custom_metric"]
    lines += [f"{e}{separator}{v}{separator}{t}"
              for e, v, t in zip(epochs, values, stamps, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def write_nc(path: Path, name: str, context: str, points: tuple) -> None:
    """``MetricInfo.save_to_netCDF``: dimension time, i4 epochs, f4 values, i8 timestamps."""
    epochs, values, stamps = points
    with netCDF4.Dataset(path, "w", format="NETCDF4") as dataset:
        dataset.setncatts({"_name": name, "_context": context, "_source": "custom_metric"})
        dataset.createDimension("time", None)
        dataset.createVariable("epochs", "i4", ("time",))[:] = epochs
        dataset.createVariable("values", "f4", ("time",))[:] = values
        dataset.createVariable("timestamps", "i8", ("time",))[:] = stamps


def write_zarr(path: Path, name: str, context: str, points: tuple, zarr_format: int) -> None:
    """``MetricInfo.save_to_zarr``: a group with name/context/source attributes and arrays
    epochs (i4), values (f4), timestamps (i8) in chunks of 1000."""
    epochs, values, stamps = points
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.attrs.update({"name": name, "context": context, "source": "custom_metric"})
    for array_name, dtype, data in (("epochs", "i4", epochs), ("values", "f4", values),
                                    ("timestamps", "i8", stamps)):
        array = group.create_array(array_name, shape=(len(data),), chunks=(1000,), dtype=dtype)
        array[:] = np.asarray(data, dtype=dtype)


def expect_read(points: tuple, as_lists: bool = False) -> dict:
    epochs, values, stamps = points
    return {"status": "read", "count": len(values), "first": values[0], "last": values[-1],
            "first_timestamp": stamps[0], "lists": as_lists}


def generated_v0(out: Path, expected: dict) -> None:
    """v0 with numpy 2 reprs, nan/inf and per-step list values (nested and quoted)."""
    data = json.loads((HERE / V0).read_text())
    entities = data["entity"]
    loss = entities["Loss_Context.TRAINING"]
    values = json.loads(loss["prov-ml:metric_value_list"])
    loss["prov-ml:metric_value_list"] = "[" + ", ".join(f"np.float64({v!r})"
                                                         for v in values) + "]"
    loss["prov-ml:metric_epoch_list"] = "[" + ", ".join(
        f"np.int64({e})" for e in json.loads(loss["prov-ml:metric_epoch_list"])) + "]"
    stamps = json.loads(loss["prov-ml:metric_timestamp_list"])
    doc = {}
    doc["Loss_Context.TRAINING"] = {"status": "read", "count": len(values),
                                    "first": values[0], "last": values[-1],
                                    "first_timestamp": stamps[0], "lists": False}
    specials = [float("nan"), float("inf"), -float("inf"), 0.5]
    entities["grad_norm_Context.TRAINING"] = metric_entity(
        "grad_norm", "Context.TRAINING",
        {"epoch": "[0, 0, 1, 1]", "value": "[nan, np.float64(inf), -inf, np.float32(0.5)]",
         "timestamp": str([T0 + i for i in range(4)])}, None)
    doc["grad_norm_Context.TRAINING"] = {"status": "read", "count": 4, "first": "nan",
                                         "last": specials[-1], "first_timestamp": T0,
                                         "lists": False}
    quoted = ["[False, True, True]", "[True, True, False]"]
    entities["correct_Context.VALIDATION"] = metric_entity(
        "correct", "Context.VALIDATION",
        {"epoch": "[0, 1]", "value": str(quoted), "timestamp": str([T0, T0 + 9])}, None)
    doc["correct_Context.VALIDATION"] = {"status": "read", "count": 2,
                                         "first": [False, True, True],
                                         "last": [True, True, False], "first_timestamp": T0,
                                         "lists": True}
    entities["probs_Context.TESTING"] = metric_entity(
        "probs", "Context.TESTING",
        {"epoch": "[np.int64(0), np.int64(0)]",
         "value": "[[np.float64(0.25), np.float64(0.75)], [0.5, 0.5]]",
         "timestamp": str([T0, T0 + 3])}, None)
    doc["probs_Context.TESTING"] = {"status": "read", "count": 2, "first": [0.25, 0.75],
                                    "last": [0.5, 0.5], "first_timestamp": T0, "lists": True}
    for entity_id, entity in entities.items():
        if entity_id not in doc and isinstance(entity, dict) \
                and entity.get("prov-ml:type") == "Metric":
            listed = json.loads(entity["prov-ml:metric_value_list"])
            doc[entity_id] = {"status": "read", "count": len(listed), "first": listed[0],
                              "last": listed[-1], "first_timestamp": json.loads(
                                  entity["prov-ml:metric_timestamp_list"])[0], "lists": False}
    (out / "v0_numpy_reprs_and_lists.json").write_text(json.dumps(data, indent=1))
    expected["generated/v0_numpy_reprs_and_lists.json"] = doc


def generated_v1(out: Path, expected: dict) -> None:
    """v1 whose truncated inline lists have full copies in each format, or none."""
    data = json.loads((HERE / V1).read_text())
    data["entity"] = {k: v for k, v in data["entity"].items()
                      if not (isinstance(v, dict) and v.get("prov-ml:type") == "Metric")}
    folder = out / "v1_full_copies"
    metrics_dir = folder / V1_DIR
    metrics_dir.mkdir(parents=True)
    doc = {}
    shapes = [("MSE_txt", ".txt"), ("MSE_semicolon", ".txt"), ("MSE_nc", ".nc"),
              ("MSE_zarr2", ".zarr"), ("MSE_zarr3", ".zarr"), ("MSE_lost", ".txt"),
              ("MSE_list_txt", ".txt")]
    for seed, (name, suffix) in enumerate(shapes):
        context = "Context.TRAINING"
        points = series(1500, seed)
        file_name = f"{name}_{context}_GR0{suffix}"
        path = metrics_dir / file_name
        entity_id = f"{name}_{context}"
        if name == "MSE_txt":
            write_txt(path, name, context, points)
        elif name == "MSE_semicolon":
            write_txt(path, name, context, points, separator=";")
        elif name == "MSE_nc":
            write_nc(path, name, context, points)
        elif name.startswith("MSE_zarr"):
            write_zarr(path, name, context, points, zarr_format=int(name[-1]))
        elif name == "MSE_list_txt":
            per_step = [[bool(round(v)), not round(v)] for v in points[1]]
            points = (points[0], per_step, points[2])
            write_txt(path, name, context, points)
        lists = {"epoch": numpy_text(points[0]), "value": numpy_text(points[1]),
                 "timestamp": numpy_text(points[2])}
        data["entity"][entity_id] = metric_entity(name, context, lists, f"{V1_DIR}/{file_name}")
        if name == "MSE_lost":
            doc[entity_id] = {"status": "refused", "reason": "truncated"}
        else:
            doc[entity_id] = expect_read(points, as_lists=name == "MSE_list_txt")
    short = series(20, 99)
    data["entity"]["acc_Context.VALIDATION"] = metric_entity(
        "acc", "Context.VALIDATION", {"epoch": numpy_text(short[0]),
                                      "value": numpy_text(short[1]),
                                      "timestamp": numpy_text(short[2])}, None)
    doc["acc_Context.VALIDATION"] = expect_read(short)
    data["entity"]["loss_Context.TESTING"] = metric_entity(
        "loss", "Context.TESTING", {"epoch": "[0, 0, ..., 4, 4]", "value": "[1., ..., 2.]",
                                    "timestamp": "[1, ..., 2]"}, None)
    doc["loss_Context.TESTING"] = {"status": "refused", "reason": "truncated"}
    (folder / "prov.json").write_text(json.dumps(data, indent=1))
    expected["generated/v1_full_copies/prov.json"] = doc


def generated_v2(out: Path, expected: dict) -> None:
    """v2 whose metric files are Zarr, NetCDF and text; one left missing."""
    data = json.loads((HERE / V2).read_text())
    folder = out / "v2_mixed_files"
    metrics_dir = folder / "metrics"
    metrics_dir.mkdir(parents=True)
    doc = {}
    writers = {".zarr": lambda p, n, c, pts: write_zarr(p, n, c, pts, 3),
               ".nc": write_nc, ".txt": write_txt}
    metric_ids = [k for k, v in data["entity"].items()
                  if any("yProv4ML:context" in e for e in (v if isinstance(v, list) else [v]))]
    suffixes = [".zarr", ".nc", ".txt"]
    for index, entity_id in enumerate(metric_ids):
        records = data["entity"][entity_id]
        for sub, record in enumerate(records if isinstance(records, list) else [records]):
            name, context = record["yProv4ML:label"], record["yProv4ML:context"]
            suffix = suffixes[(index + sub) % len(suffixes)]
            file_name = f"{name}_{context}_GR0{suffix}"
            record["yProv4ML:path"] = f"prov/MetricsType.MIXED_False_0/metrics/{file_name}"
            key = f"{name}_{context}"
            if entity_id == "gpu_power_usage":
                doc[key] = {"status": "refused", "reason": "missing"}
                continue
            points = series(30 + index, 200 + index * 10 + sub)
            writers[suffix](metrics_dir / file_name, name, context, points)
            doc[key] = expect_read(points)
    (folder / "prov.json").write_text(json.dumps(data, indent=1))
    expected["generated/v2_mixed_files/prov.json"] = doc


def real_expectations(expected: dict) -> None:
    """What the real samples hold: v0 and v3 complete; v1/v2 full copies not included."""
    v0 = json.loads((HERE / V0).read_text())
    expected[V0] = {
        k: {"status": "read", "count": len(json.loads(v["prov-ml:metric_value_list"])),
            "first": json.loads(v["prov-ml:metric_value_list"])[0],
            "last": json.loads(v["prov-ml:metric_value_list"])[-1],
            "first_timestamp": json.loads(v["prov-ml:metric_timestamp_list"])[0],
            "lists": False}
        for k, v in v0["entity"].items() if isinstance(v, dict)
        and v.get("prov-ml:type") == "Metric"}
    v1 = json.loads((HERE / V1).read_text())
    expected[V1] = {
        k: {"status": "refused", "reason": "truncated"} if "..." in v["prov-ml:metric_value_list"]
        else {"status": "read", "count": None, "lists": False}
        for k, v in v1["entity"].items() if isinstance(v, dict)
        and v.get("prov-ml:type") == "Metric"}
    v2 = json.loads((HERE / V2).read_text())
    expected[V2] = {
        f"{r['yProv4ML:label']}_{r['yProv4ML:context']}": {"status": "refused",
                                                          "reason": "missing"}
        for v in v2["entity"].values() for r in (v if isinstance(v, list) else [v])
        if "yProv4ML:context" in r}
    v3_dir = (HERE / V3).parent
    v3 = json.loads((HERE / V3).read_text())
    expected[V3] = {
        k: {"status": "read", "lists": False, "count": len(
            (v3_dir / "metrics_GR0" / Path(v["dcterms:identifier"]).name)
            .read_text().splitlines()) - 1}
        for k, v in v3["entity"].items() if v.get("prov:type") == "provml:Metric"}


def main() -> None:
    shutil.rmtree(HERE / "generated", ignore_errors=True)
    (HERE / "generated").mkdir()
    expected: dict[str, dict] = {}
    real_expectations(expected)
    generated_v0(HERE / "generated", expected)
    generated_v1(HERE / "generated", expected)
    generated_v2(HERE / "generated", expected)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
