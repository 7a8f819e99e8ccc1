"""Activation with no code change: MLflow's own switch also starts our monitors.

MLflow loads this run-context provider (entry point ``mlflow.run_context_provider``) and
calls ``in_context()`` at every fluent ``start_run``, before the run and its
``SystemMetricsMonitor`` exist. The first call installs the attaching dict (see
``attach.install``); the provider adds no tags itself, since whether this run logs system
metrics is decided later in ``start_run``. Importing this module does nothing else: it is
imported while ``mlflow.tracking`` is still loading, so everything heavy is imported late.
"""

from __future__ import annotations

from mlflow.tracking.context.abstract_context import RunContextProvider


class SystemMetricsActivation(RunContextProvider):
    """Installs the monitor hook on the first fluent ``start_run`` of the process."""

    def in_context(self) -> bool:
        from mlflow_prov.system_metrics.attach import install

        install()
        return False

    def tags(self) -> dict[str, str]:
        return {}
