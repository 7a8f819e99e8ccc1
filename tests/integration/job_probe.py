"""A job function for MLflow's job execution (``mlflow.server.jobs``), run by the job runner
that ``mlflow server`` starts: tests/integration/test_server_jobs.py submits it over REST."""

from __future__ import annotations

from mlflow.server.jobs import job


@job(name="prov_probe_sum", max_workers=1)
def prov_probe_sum(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}
