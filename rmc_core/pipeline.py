"""RMC end to end, for one validated config: the DAG written once.

`run` wires the stages of `rmc_core.stages`. It takes a `call` hook that executes one
stage: by default a plain function call (pure Python, no orchestration); the Prefect flow
passes a hook that submits the stage as a cached Prefect task and gets futures back, so
the pure pipeline and the flow are the same DAG, not two copies of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rmc_core import stages
from rmc_core.config import PruneConfig, RunConfig
from rmc_core.data.registry import TASKS, ood_names
from rmc_core.devices import assign_devices
from rmc_core.methods import loss_spec, needs
from rmc_core.models import check_labels
from rmc_core.store import Ref, Store

Call = Callable[..., Any]


def direct(stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return stage(*args, **kwargs)


def preflight(cfg: RunConfig) -> None:
    """Checks that need more than the config's own fields, done before any training."""
    labels = TASKS[cfg.task].labels
    check_labels(cfg.teacher, labels, "teacher")
    if cfg.student.kind == "distilled" and cfg.student.model is not None:
        check_labels(cfg.student.model, labels, "student")
    ood_names(cfg.task, cfg.data.source)


def student_name(cfg: RunConfig, method: str) -> str:
    s = cfg.student
    return f"imp{round(s.sparsity * 100)}-{method}" if s.kind == "pruned" else f"L{s.num_layers}-{method}"


def subnetwork_name(sparsity: float) -> str:
    return f"subnet-{round(sparsity * 100)}"


def run(cfg: RunConfig, store: Store, devices: list[str] | None = None, call: Call = direct) -> Any:
    """Teacher -> sub-networks -> difficulty -> students (RMC and baselines) -> report.

    Returns the report's Ref (or, under the Prefect hook, its future).
    """
    preflight(cfg)
    devices = devices or ["cpu"]
    splits = ("dev", *ood_names(cfg.task, cfg.data.source))
    data = call(stages.prepare_data, cfg.task, cfg.data, store)
    base = call(stages.prepare_base, cfg.teacher, data, cfg.teacher_train.seed, store)

    # Trainings are submitted before the predictions that wait on them, so that under a
    # bounded worker pool a waiting prediction never holds a slot a training could use.
    teacher = call(stages.train, base, data, cfg.teacher_train, store, device=devices[0], desc="teacher")
    sub = cfg.subnetworks
    names = [subnetwork_name(s) for s in sub.sparsities]
    placement = dict(zip(names, assign_devices(len(names), devices)))
    if sub.estimator == "imp":
        subnets = {
            name: call(stages.train, base, data, sub.train, store, prune=PruneConfig(sparsity=s, scope=sub.scope),
                       device=placement[name], desc=name)
            for name, s in zip(names, sub.sparsities)
        }
    else:
        subnets = {
            name: call(stages.prune_oneshot, teacher, data, s, sub.scope, sub.train, sub.recovery_epochs, store,
                       device=placement[name], desc=name)
            for name, s in zip(names, sub.sparsities)
        }
    teacher_pred = call(stages.predict, teacher, data, ("train", *splits), cfg.teacher_train, store,
                        device=devices[0], desc="teacher")
    subnet_preds = {
        name: call(stages.predict, ref, data, ("train", "dev"), sub.train, store, device=placement[name], desc=name)
        for name, ref in subnets.items()
    }
    difficulty = call(stages.difficulty, list(subnet_preds.values()), cfg.alpha, store)

    st = cfg.student
    if st.kind == "pruned":
        student_base, student_prune = base, PruneConfig(sparsity=st.sparsity)
    elif st.model is not None:
        student_base, student_prune = call(stages.prepare_base, st.model, data, st.train.seed, store), None
    else:
        student_base, student_prune = call(stages.truncate_base, base, st.num_layers, store), None

    first_stage_pred = None
    if "jtt" in cfg.methods:
        first_cfg = st.train.model_copy(update={"epochs": cfg.method.jtt_first_epochs})
        first = call(stages.train, student_base, data, first_cfg, store, device=devices[0], desc="jtt-first-stage")
        first_stage_pred = call(stages.predict, first, data, ("train",), first_cfg, store,
                                device=devices[0], desc="jtt-first-stage")

    models: dict[str, Any] = {"teacher": teacher}
    preds: dict[str, Any] = {"teacher": teacher_pred}
    for i, method in enumerate(cfg.methods):
        name, device = student_name(cfg, method), devices[i % len(devices)]
        use = needs(method)
        per_sample = call(
            stages.student_inputs, method, cfg.method, store,
            teacher_pred_ref=teacher_pred if "teacher" in use else None,
            difficulty_ref=difficulty if "difficulty" in use else None,
            first_stage_pred_ref=first_stage_pred if "jtt_first_stage" in use else None,
            data_ref=data if "jtt_first_stage" in use else None,
        )
        models[name] = call(stages.train, student_base, data, st.train, store, loss=loss_spec(method, cfg.method),
                            prune=student_prune, per_sample_ref=per_sample, device=device, desc=name)
        preds[name] = call(stages.predict, models[name], data, splits, st.train, store, device=device, desc=name)

    return call(stages.evaluate, cfg.task, data, preds, models, subnet_preds, difficulty, store)


def run_local(cfg: RunConfig, store_root: Path, devices: list[str] | None = None) -> dict:
    """Plain-Python entry: run everything in this process and return the report's tables."""
    store = Store(store_root)
    report: Ref = run(cfg, store, devices)
    return store.tables(report)
