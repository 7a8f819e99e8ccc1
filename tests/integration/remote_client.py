"""A separate client process that logs a run over HTTP and prints what it did as JSON.

Usage: python remote_client.py http://127.0.0.1:PORT
"""

import json
import os
import sys

import mlflow


def main(server_uri: str) -> None:
    mlflow.set_tracking_uri(server_uri)
    mlflow.set_experiment("remote")
    with mlflow.start_run(run_name="over-http") as run:
        mlflow.log_param("optimizer", "adam")
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("phase", "warmup")
        mlflow.set_tag("phase", "main")
        mlflow.log_text("hello from the client", "notes/hello.txt")
    print(json.dumps({"run_id": run.info.run_id, "pid": os.getpid(),
                      "experiment_id": run.info.experiment_id}))


if __name__ == "__main__":
    main(sys.argv[1])
