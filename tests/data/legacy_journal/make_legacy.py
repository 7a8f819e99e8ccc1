"""Build a prov store with the journal format of mlflow-prov before the write-path redesign
(run with mlflow-prov at commit c7e0fa4: `python make_legacy.py FOLDER`)."""
import math
import sys

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

uri = "prov:///" + sys.argv[1]
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
exp = client.create_experiment("legacy", tags={"team": "a"})
client.set_experiment_tag(exp, "team", "b")
client.set_experiment_tag(exp, "gone", "x")
client.delete_experiment_tag(exp, "gone")
client.rename_experiment(exp, "legacy-renamed")
run = client.create_run(exp, run_name="first", tags={"k": "v"})
rid = run.info.run_id
client.log_param(rid, "lr", 0.1)
client.set_tag(rid, "k", "v2")
client.set_tag(rid, "drop", "me")
client.delete_tag(rid, "drop")
client.set_tag(rid, "long", "x" * 9000)
for step in range(20):
    client.log_metric(rid, "loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
client.log_metric(rid, "nan", math.nan, step=0, timestamp=5)
client.log_batch(rid, metrics=[Metric("acc", 0.5 + i / 100, 2000 + i, i) for i in range(10)],
                 params=[Param("epochs", "3"), Param("opt", "adam")],
                 tags=[RunTag("phase", "train")])
dataset = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2]}), source="data.csv", name="d")
with mlflow.start_run(run_id=rid):
    mlflow.log_input(dataset, context="training")
model = client.create_logged_model(exp, name="m", source_run_id=rid, tags={"t": "1"},
                                   params={"p": "2"})
client.finalize_logged_model(model.model_id, "READY")
client.update_run(rid, name="first-renamed")
client.set_terminated(rid, "FINISHED", end_time=99999)
other = client.create_run(exp, run_name="second")
client.log_param(other.info.run_id, "seed", 7)
client.delete_run(other.info.run_id)
client.create_registered_model("reg", tags={"owner": "me"}, description="d")
mv = client.create_model_version("reg", f"runs:/{rid}/model", run_id=rid)
client.set_registered_model_alias("reg", "champion", mv.version)
client.set_model_version_tag("reg", mv.version, "stage", "ok")
print(exp, rid)
