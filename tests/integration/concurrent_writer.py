"""A separate process that logs COUNT metric points one call at a time (concurrency tests).

Usage: python concurrent_writer.py TRACKING_URI RUN_ID KEY COUNT
"""

import sys

from mlflow import MlflowClient


def main(tracking_uri: str, run_id: str, key: str, count: int) -> None:
    client = MlflowClient(tracking_uri)
    for step in range(count):
        client.log_metric(run_id, key, step * 0.5, timestamp=1_700_000_000_000 + step, step=step)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
