"""Export time and PROV-JSON size for 10 runs x 20 metrics x 1,000 steps.

Run: ``python benchmarks/bench_export.py [--store prov|sqlite]``. Metrics are logged with
``log_batch`` (1,000 per call) so building the store is not what is measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from exporters import ExportOptions, export

RUNS, METRICS, STEPS = 10, 20, 1000


def build(client: MlflowClient, artifacts: Path) -> str:
    experiment_id = client.create_experiment("bench", artifact_location=artifacts.as_uri())
    for r in range(RUNS):
        run_id = client.create_run(experiment_id, run_name=f"run-{r}").info.run_id
        client.log_batch(run_id, params=[], tags=[])
        for m in range(METRICS):
            key = f"{('train', 'val')[m % 2]}/metric_{m}"
            client.log_batch(run_id, metrics=[
                Metric(key, float(s) / (m + 1), 1_700_000_000_000 + s, s) for s in range(STEPS)])
        client.set_terminated(run_id)
    return experiment_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("prov", "sqlite"), default="prov")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = (f"prov://{root / 'store'}" if args.store == "prov"
               else f"sqlite:///{root / 'mlflow.db'}")
        experiment_id = build(MlflowClient(uri), root / "artifacts")
        for formats in (("prov-json",), ("prov-json", "dot"), ("prov-json", "provn", "dot", "svg")):
            out = root / f"out-{len(formats)}"
            start = time.perf_counter()
            result = export(experiment_id, out, tracking_uri=uri,
                            options=ExportOptions(formats=formats, show_progress=False))
            elapsed = time.perf_counter() - start
            exp_json = result.experiment_dir / "experiment.prov.json"
            run_jsons = list(result.experiment_dir.glob("run-*/prov.json"))
            run_kib = sum(p.stat().st_size for p in run_jsons) / len(run_jsons) / 1024
            print(f"{args.store} {RUNS}x{METRICS}x{STEPS} formats={','.join(formats)}: "
                  f"{elapsed:.2f} s; experiment.prov.json "
                  f"{exp_json.stat().st_size / 1024:.1f} KiB; run prov.json mean {run_kib:.1f} KiB")


if __name__ == "__main__":
    main()
