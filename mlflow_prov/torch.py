"""PyTorch helpers that log what was trained: model size, datasets, FLOPs, versions, timings.

torch is an optional extra (``pip install "mlflow-prov[torch]"``): it is imported inside the
functions, so ``import mlflow_prov`` works without it. Every helper logs into the active
MLflow run with stock MLflow calls.

Contexts map onto MLflow's own notions, the ones the exporter reads back:
``log_dataset(..., context="training")`` is ``mlflow.log_input(..., context="training")``;
metrics logged with a context get the key prefix ``train/``, ``val/``, ``test/`` or
``eval/`` and, when a dataset was logged for that context in this run, MLflow 3's
metric -> dataset link. ``train``/``training``, ``val``/``validation``, ``test``/``testing``
and ``eval``/``evaluation`` are accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow

from mlflow_prov.compat import current_end_run, rebind_end_run
from mlflow_prov.vocabulary import (
    CONTEXTS_TAG,
    TRAINING,
    context_key_prefix,
    declared_contexts,
    is_free_form_context,
    normalise_context,
)

if TYPE_CHECKING:
    import torch
    from mlflow.data.dataset import Dataset as MlflowDataset

_logger = logging.getLogger(__name__)

FOLDS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": min, "max": max, "sum": sum, "mean": statistics.fmean, "last": lambda v: v[-1],
}
FINAL_PREFIX = "final/"
# Digest of at most this many bytes per tensor, and of at most this many samples of a
# dataset that is not a TensorDataset: a fingerprint, bounded in time like MLflow's own.
_DIGEST_MAX_BYTES = 64 * 2**20
_DIGEST_MAX_SAMPLES = 32

# Per-run state, keyed by run id and dropped when the run ends (see _forget_run).
_lock = threading.Lock()
_datasets: dict[tuple[str, str], MlflowDataset] = {}
_model_versions: dict[tuple[str, str], int] = {}
_declared_contexts: dict[str, list[str]] = {}
_finals: dict[str, dict[str, Callable[[Sequence[float]], float]]] = {}


def context_key(key: str, context: str | None) -> str:
    """The metric key for ``key`` in ``context``: ``train/loss`` for (``loss``, ``training``),
    ``tuning/loss`` for a free-form ``tuning`` context, which the exporter maps back to it."""
    name = normalise_context(context)
    if name is None:
        return key
    return context_key_prefix(name) + key


def _run_id() -> str:
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("mlflow-prov torch helpers log into the active run: call "
                           "mlflow.start_run() first")
    return run.info.run_id


def log_context_metric(key: str, value: float, context: str | None = None,
                       step: int | None = None) -> str:
    """Log ``value`` under the context's key prefix, linked to the context's dataset if any.

    Returns the key used. The helpers below log through it; use it for your own metrics to
    keep them in the same context.
    """
    run_id = _run_id()
    full_key = context_key(key, context)
    name = normalise_context(context)
    if name is not None and is_free_form_context(name):
        _declare_context(run_id, name)
    dataset = _datasets.get((run_id, name or ""))
    mlflow.log_metric(full_key, value, step=step, dataset=dataset)
    return full_key


def _declare_context(run_id: str, name: str) -> None:
    """List a free-form context in the run's :data:`CONTEXTS_TAG` (once per run and name),
    so that the exporter files ``<name>/...`` keys under that context. A resumed run keeps
    the contexts it declared before."""
    _install_end_run_hook()
    if run_id not in _declared_contexts:
        earlier = mlflow.MlflowClient().get_run(run_id).data.tags.get(CONTEXTS_TAG)
        with _lock:
            _declared_contexts.setdefault(run_id, declared_contexts(earlier))
    with _lock:
        declared = _declared_contexts[run_id]
        if name in declared:
            return
        declared.append(name)
        value = ",".join(declared)
    mlflow.set_tag(CONTEXTS_TAG, value)


def log_model_info(model: torch.nn.Module, name: str = "model",
                   optimizer_states_per_parameter: int = 2) -> dict[str, float]:
    """Log the model's size as metrics ``model/<name>/...`` and return them.

    ``estimated_training_memory_bytes`` counts weights, buffers, gradients and
    ``optimizer_states_per_parameter`` optimizer tensors per trainable weight (2 for Adam,
    0 for plain SGD); activations depend on the batch and are not included.
    """
    _run_id()
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    trainable_bytes = sum(p.numel() * p.element_size() for p in trainable)
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    info = {
        "total_parameters": float(sum(p.numel() for p in params)),
        "trainable_parameters": float(sum(p.numel() for p in trainable)),
        "parameter_bytes": float(param_bytes),
        "buffer_bytes": float(buffer_bytes),
        "estimated_training_memory_bytes": float(
            param_bytes + buffer_bytes + trainable_bytes * (1 + optimizer_states_per_parameter)
        ),
    }
    mlflow.log_metrics({f"model/{name}/{key}": value for key, value in info.items()}, step=0)
    return info


def _loader_facts(loader) -> dict[str, Any]:
    """Batch size, shuffle and per-epoch counts of a DataLoader, as torch computes them."""
    from torch.utils.data import RandomSampler

    sampler = loader.sampler
    facts: dict[str, Any] = {
        "batch_size": loader.batch_size,
        "shuffle": isinstance(sampler, RandomSampler) or bool(getattr(sampler, "shuffle", False)),
        "drop_last": loader.drop_last,
    }
    with contextlib.suppress(TypeError):  # an IterableDataset without __len__ has no counts
        facts["samples_per_epoch"] = len(sampler)  # a DistributedSampler's shard, per rank
        facts["batches_per_epoch"] = len(loader)
    return facts


def _update_with_tensor(digest, tensor) -> None:
    data = tensor.detach().cpu().contiguous().reshape(-1)
    limit = max(1, _DIGEST_MAX_BYTES // max(1, data.element_size()))
    digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
    digest.update(data[:limit].numpy().tobytes())


def _first_samples(dataset) -> Iterator:
    try:
        count = min(len(dataset), _DIGEST_MAX_SAMPLES)
    except TypeError:  # an IterableDataset
        return itertools.islice(iter(dataset), _DIGEST_MAX_SAMPLES)
    return (dataset[i] for i in range(count))


def dataset_digest(dataset) -> str:
    """A content fingerprint: every tensor of a TensorDataset (up to 64 MiB each), else the
    length and the first samples. Same data, same digest, so the exporter can link runs."""
    import torch
    from torch.utils.data import TensorDataset

    digest = hashlib.sha256(type(dataset).__qualname__.encode())
    with contextlib.suppress(TypeError):
        digest.update(str(len(dataset)).encode())
    samples = [dataset.tensors] if isinstance(dataset, TensorDataset) else _first_samples(dataset)
    for sample in samples:
        for part in sample if isinstance(sample, tuple | list) else (sample,):
            if isinstance(part, torch.Tensor):
                _update_with_tensor(digest, part)
            else:
                digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


def log_dataset(loader_or_dataset, name: str, context: str = "training") -> MlflowDataset:
    """``mlflow.log_input`` of a DataLoader or Dataset, with its sizes as input tags.

    Tags: ``num_samples`` (the whole dataset), and for a DataLoader ``batch_size``,
    ``shuffle``, ``drop_last``, ``samples_per_epoch`` (this process's sampler: a
    DistributedSampler's shard) and ``batches_per_epoch`` (``len(loader)``, which honours
    ``drop_last``). Later metrics in the same context link to this dataset.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from torch.utils.data import DataLoader

    run_id = _run_id()
    is_loader = isinstance(loader_or_dataset, DataLoader)
    dataset = loader_or_dataset.dataset if is_loader else loader_or_dataset
    facts: dict[str, Any] = {}
    with contextlib.suppress(TypeError):
        facts["num_samples"] = len(dataset)
    if is_loader:
        facts |= _loader_facts(loader_or_dataset)
    source = CodeDatasetSource({"python_class": f"{type(dataset).__module__}."
                                                f"{type(dataset).__qualname__}"})
    # MLflow's stubs leave Dataset.profile abstract; MetaDataset is its concrete metadata-only
    # dataset and instantiates fine.
    mlflow_dataset = MetaDataset(  # type: ignore[abstract]
        source, name=name, digest=dataset_digest(dataset))
    canonical = normalise_context(context) or TRAINING
    _install_end_run_hook()
    mlflow.log_input(mlflow_dataset, context=canonical,
                     tags={key: str(value).lower() if isinstance(value, bool) else str(value)
                           for key, value in facts.items()})
    with _lock:
        _datasets[(run_id, canonical)] = mlflow_dataset
    return mlflow_dataset


def _model_input(batch):
    """The model input in a batch: a Tensor, kwargs, or the first item of (inputs, targets)."""
    if isinstance(batch, tuple | list):
        return batch[0]
    return batch


def _forward_flops(model, batch) -> int:
    """Forward-pass FLOPs of one batch, in eval mode and without autograd, so that counting
    changes neither BatchNorm statistics nor gradients."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        inputs = _model_input(batch)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            if isinstance(inputs, dict):
                model(**inputs)
            else:
                model(inputs)
        return counter.get_total_flops()
    finally:
        model.train(was_training)


def log_flops_per_batch(label: str, model, batch, context: str | None = None,
                        step: int | None = None) -> int:
    """Log the forward FLOPs of this one batch as ``<context prefix><label>``; return them.

    ``batch`` is the model input, or an (inputs, targets) pair as a DataLoader yields it.
    Each call counts afresh: a value per batch, never a running total. (A training step
    costs about three times the forward pass.)
    """
    flops = _forward_flops(model, batch)
    log_context_metric(label, flops, context, step)
    return flops


def log_flops_per_epoch(label: str, model, loader, context: str | None = None,
                        step: int | None = None) -> int:
    """Log the forward FLOPs of one pass over ``loader`` (every batch, counted) and return them.

    It runs a forward epoch without gradients: about a third of a training epoch's time.
    """
    flops = sum(_forward_flops(model, batch) for batch in loader)
    log_context_metric(label, flops, context, step)
    return flops


def save_model_version(model, name: str, step: int | None = None) -> str:
    """Log the state dict as a new artifact ``models/<name>/v<NNNN>[_step<S>].pt``.

    One file per version, numbered in order, so the exporter can chain versions
    (``wasRevisionOf``); numbering resumes after the files a resumed run already has.
    Returns the artifact path.
    """
    import torch

    run_id = _run_id()
    _install_end_run_hook()
    directory = f"models/{name}"
    with _lock:
        if (run_id, name) not in _model_versions:
            existing = mlflow.MlflowClient().list_artifacts(run_id, directory)
            _model_versions[(run_id, name)] = len(existing)
        _model_versions[(run_id, name)] += 1
        version = _model_versions[(run_id, name)]
    filename = f"v{version:04d}" + (f"_step{step}" if step is not None else "") + ".pt"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        torch.save(model.state_dict(), path)
        mlflow.log_artifact(str(path), artifact_path=directory)
    return f"{directory}/{filename}"


@contextlib.contextmanager
def execution_time(label: str, context: str | None = None,
                   step: int | None = None) -> Iterator[None]:
    """Time the block and log its wall-clock seconds as ``<context prefix><label>``.

    Nothing is logged when the block raises: a partial time would read as a real one.
    """
    _run_id()
    start = time.perf_counter()
    yield
    log_context_metric(label, time.perf_counter() - start, context, step)


def register_final_metric(key: str, fold: str | Callable[[Sequence[float]], float]) -> None:
    """At the end of the active run, log ``final/<key>`` = ``fold`` over the history of ``key``.

    ``fold``: ``min``, ``max``, ``sum``, ``mean``, ``last`` (the value at the highest step)
    or any callable taking the values in step order. It fires in ``mlflow.end_run``, which
    ``with mlflow.start_run():`` and MLflow's exit handler both call.
    """
    function = FOLDS.get(fold) if isinstance(fold, str) else fold
    if function is None:
        raise ValueError(f"unknown fold {fold!r}: use one of {sorted(FOLDS)} or a callable")
    run_id = _run_id()
    _install_end_run_hook()
    with _lock:
        _finals.setdefault(run_id, {})[key] = function


def log_final_metrics(run_id: str) -> dict[str, float]:
    """Fold and log the run's registered final metrics now; the end-of-run hook calls it."""
    with _lock:
        registered = _finals.pop(run_id, {})
    client = mlflow.MlflowClient()
    logged: dict[str, float] = {}
    for key, function in registered.items():
        history = sorted(client.get_metric_history(run_id, key),
                         key=lambda m: (m.step, m.timestamp))
        if not history:
            _logger.warning("mlflow-prov: no values of %r to fold into %s%s", key,
                            FINAL_PREFIX, key)
            continue
        value = float(function([m.value for m in history]))
        client.log_metric(run_id, FINAL_PREFIX + key, value, step=history[-1].step)
        logged[FINAL_PREFIX + key] = value
    return logged


def _forget_run(run_id: str) -> None:
    """Drop a finished run's datasets, version counters and finals: a long-lived process
    (a notebook, a sweep) would otherwise keep every run's state until it exits."""
    with _lock:
        for state in (_datasets, _model_versions):
            for key in [k for k in state if k[0] == run_id]:
                del state[key]
        _finals.pop(run_id, None)
        _declared_contexts.pop(run_id, None)


def _install_end_run_hook() -> None:
    """Wrap ``mlflow.end_run`` once, where both ``mlflow`` and its fluent module look it up.

    ``ActiveRun.__exit__`` and MLflow's atexit handler call the fluent module's global, user
    code calls ``mlflow.end_run`` (:func:`mlflow_prov.compat.rebind_end_run`): the wrapper
    folds the finals while the run is still RUNNING, ends it as before, then forgets the
    run's per-run state.
    """
    with _lock:
        original = current_end_run()
        if getattr(original, "_mlflow_prov_finals", False):
            return

        def end_run(*args: Any, **kwargs: Any) -> Any:
            run = mlflow.active_run()
            if run is not None and run.info.run_id in _finals:
                try:
                    log_final_metrics(run.info.run_id)
                except Exception:
                    _logger.warning("mlflow-prov: logging final metrics failed", exc_info=True)
            try:
                return original(*args, **kwargs)
            finally:
                if run is not None:
                    _forget_run(run.info.run_id)

        setattr(end_run, "_mlflow_prov_finals", True)  # noqa: B010  (a marker mypy allows)
        setattr(end_run, "__wrapped__", original)  # noqa: B010
        end_run.__doc__ = original.__doc__
        rebind_end_run(end_run)
