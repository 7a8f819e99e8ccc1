"""The seeds' API on MLflow: ``from mlflow_prov import prov4ml`` in place of ``import prov4ml``.

See :mod:`mlflow_prov.prov4ml.api` for the mapping, and ``python -m mlflow_prov.prov4ml.prov2dot``,
``.dot2svg`` and ``.prov_collection`` for the seeds' command-line tools.
"""

from mlflow_prov.prov4ml.api import (
    Context,
    Contexts,
    FoldOperation,
    MetricsType,
    end_run,
    get_run_id,
    get_save_dir,
    log_artifact,
    log_carbon_metrics,
    log_current_execution_time,
    log_dataset,
    log_execution_end_time,
    log_execution_start_time,
    log_flops_per_batch,
    log_flops_per_epoch,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    log_system_metrics,
    register_final_metric,
    save_model_version,
    start_run,
)

__all__ = [
    "Context", "Contexts", "FoldOperation", "MetricsType", "end_run", "get_run_id",
    "get_save_dir", "log_artifact", "log_carbon_metrics", "log_current_execution_time",
    "log_dataset", "log_execution_end_time", "log_execution_start_time",
    "log_flops_per_batch", "log_flops_per_epoch", "log_metric", "log_metrics", "log_model",
    "log_param", "log_params", "log_system_metrics", "register_final_metric",
    "save_model_version", "start_run",
]
