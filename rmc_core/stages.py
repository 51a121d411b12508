"""The pipeline's stages, each one step of the DAG with its I/O at the edges.

A stage reads its inputs from the store by `Ref`, calls the pure functions of this
package, writes one artifact and returns its `Ref`. The plain-Python pipeline and the
Prefect flow call exactly these functions; Prefect adds caching, retries and concurrency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rmc_core.config import DataConfig, InferenceCostConfig, ModelSpec, PruneConfig, StructuredPruneConfig, TrainConfig
from rmc_core.data.registry import TASKS, TaskData, load_task_data
from rmc_core.difficulty import difficulty_scores, loss_variance, variance_hard_split
from rmc_core.evaluation import easy_hard, heuristic_breakdown, results_table, split_agreement
from rmc_core.inference_cost import inference_table
from rmc_core.losses import gold_objective
from rmc_core.methods import METHODS
from rmc_core.models import build_base, load_model, save_model, truncate_layers
from rmc_core.pruning import finalize, prune_to, sparsity_report
from rmc_core.store import Ref, Store
from rmc_core.training import TrainStats, fine_tune, per_sample_loss, predict_logits, probs_from_logits
from rmc_core.uncertainty import compare, correctness, mean_over_seeds, seed_intervals

OOD_PREFIX = "ood__"
log = logging.getLogger(__name__)
# The store record of how a model was trained (steps, seconds, throughput, sparsity,
# precision, batching); a model no stage trained (a base or truncated encoder) has none.
TRAIN_STATS = "train_stats"


def as_frame(values: np.ndarray) -> pd.DataFrame:
    values = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(values if values.ndim == 2 else values[:, None]).rename(columns=str)


def as_array(frame: pd.DataFrame) -> np.ndarray:
    values = frame.to_numpy(dtype=np.float64)
    return values[:, 0] if values.shape[1] == 1 else values


def prepare_data(task: str, cfg: DataConfig, store: Store) -> Ref:
    """Read, check and subsample every split once; later stages read the stored copy."""
    data = load_task_data(task, cfg)
    tables = {"train": data.train, "dev": data.dev, **{OOD_PREFIX + k: v for k, v in data.ood.items()}}
    return store.put_tables(tables, kind="data", meta={"task": task})


def load_data(store: Store, ref: Ref) -> TaskData:
    tables = store.tables(ref)
    ood = {k.removeprefix(OOD_PREFIX): v for k, v in tables.items() if k.startswith(OOD_PREFIX)}
    return TaskData(train=tables["train"], dev=tables["dev"], ood=ood)


def prepare_base(spec: ModelSpec, data_ref: Ref, seed: int, store: Store) -> Ref:
    """The initial weights every fine-tune starts from (pretrained encoder + seeded head)."""
    task = store.meta(data_ref)["task"]
    train = store.table(data_ref, "train")
    texts = pd.concat([train["text_a"], train["text_b"]]).tolist()
    model, tokenizer = build_base(spec, TASKS[task].labels, texts, seed)
    return store.put("model", lambda d: save_model(model, tokenizer, d))


def truncate_base(base_ref: Ref, num_layers: int, store: Store) -> Ref:
    """A smaller student: the base encoder's first `num_layers` layers."""
    model, tokenizer = load_model(store.path(base_ref))
    small = truncate_layers(model, num_layers)
    return store.put("model", lambda d: save_model(small, tokenizer, d))


def train(
    base_ref: Ref,
    data_ref: Ref,
    cfg: TrainConfig,
    store: Store,
    method: str = "vanilla",
    loss_params: dict[str, float] | None = None,
    prune: PruneConfig | StructuredPruneConfig | None = None,
    per_sample_ref: Ref | None = None,
    device: str = "cpu",
    desc: str = "fine-tune",
    on_progress: Callable[[float], None] | None = None,
) -> Ref:
    """Fine-tune a copy of the base model with `method`'s loss, pruning alongside when
    `prune` is set (IMP, or heads and neurons: then the saved model is the smaller rebuild).

    `loss_params` are the hyper-parameters that loss reads (`MethodSpec.loss_params`), so a
    student's cache key changes with its own method's settings only.
    """
    model, tokenizer = load_model(store.path(base_ref))
    train_rows = store.table(data_ref, "train")
    per_sample = as_array(store.table(per_sample_ref, "train")) if per_sample_ref else None
    log.info("%s: %d rows, %s epochs, lr %g, %s loss, pruning %s, on %s", desc, len(train_rows), cfg.epochs, cfg.lr,
             method, prune or "none", device)
    objective = METHODS[method].loss(per_sample, **(loss_params or {}))
    model, stats = fine_tune(model, tokenizer, train_rows, objective, cfg, prune, device, desc, on_progress)
    return _put_trained(model, tokenizer, stats, store, desc)


def _put_trained(model: Any, tokenizer: Any, stats: TrainStats, store: Store, desc: str) -> Ref:
    log.info("%s: %d steps in %.0f s (%.1f examples/s), final loss %.4f, achieved sparsity %.4f", desc, stats.steps,
             stats.seconds, stats.examples_per_s, stats.final_loss, (stats.sparsity or {}).get("sparsity", 0.0))

    ref = store.put("model", lambda d: save_model(model, tokenizer, d))
    store.write_record(ref, TRAIN_STATS, stats.__dict__)
    return ref


def prune_oneshot(
    model_ref: Ref,
    data_ref: Ref,
    sparsity: float,
    scope: str,
    cfg: TrainConfig,
    recovery_epochs: float,
    store: Store,
    device: str = "cpu",
    desc: str = "oneshot",
    on_progress: Callable[[float], None] | None = None,
) -> Ref:
    """The cheap sub-network: a trained model pruned by magnitude in one shot, then
    optionally fine-tuned with its mask fixed so that it still works at high sparsity."""
    model, tokenizer = load_model(store.path(model_ref))
    prune_to(model, sparsity, scope)
    hold = PruneConfig(sparsity=sparsity, scope=scope, start=0.0, end=1.0, events=1)
    if recovery_epochs > 0:
        train_rows = store.table(data_ref, "train")
        log.info("%s: one-shot %s pruning to %.2f, %s recovery epochs on %s", desc, scope, sparsity, recovery_epochs, device)
        recovery = cfg.model_copy(update={"epochs": recovery_epochs})
        model, stats = fine_tune(model, tokenizer, train_rows, gold_objective(), recovery, hold, device, desc, on_progress)
    else:
        now = time.time()
        finalize(model)
        stats = TrainStats(0, 0.0, 0.0, float("nan"), sparsity_report(model), now, now)
    return _put_trained(model, tokenizer, stats, store, desc)



def predict(
    model_ref: Ref, data_ref: Ref, splits: tuple[str, ...], cfg: TrainConfig, store: Store,
    device: str = "cpu", desc: str = "model",
) -> Ref:
    """Probabilities (and, on ID splits, the per-sample gold-label loss) for each split."""
    model, tokenizer = load_model(store.path(model_ref))
    tables = {}
    for split in splits:
        rows = store.table(data_ref, split if split in ("train", "dev") else OOD_PREFIX + split)
        logits = predict_logits(model, tokenizer, rows, cfg.max_length, cfg.eval_batch_size, device,
                                desc=f"predict {desc} {split}", precision=cfg.precision)
        table = as_frame(probs_from_logits(logits))
        if split in ("train", "dev"):
            table["loss"] = per_sample_loss(logits, rows["label"].to_numpy())
        tables[split] = table
    return store.put_tables(tables)


def split_probs(store: Store, ref: Ref, split: str) -> np.ndarray:
    """One split's class probabilities from a predictions artifact (without its loss column)."""
    return as_array(store.table(ref, split).drop(columns="loss", errors="ignore"))


def difficulty(subnet_pred_refs: list[Ref], alpha: float, store: Store) -> Ref:
    """Eq. 1 over the sub-networks' per-sample losses; the dev variance feeds the
    variance-based easy/hard split."""
    tables = {}
    for split in ("train", "dev"):
        losses = np.stack([store.table(r, split)["loss"].to_numpy() for r in subnet_pred_refs])
        variance = loss_variance(losses)
        tables[split] = pd.DataFrame({"variance": variance, "difficulty": difficulty_scores(variance, alpha)})
    return store.put_tables(tables)


def student_inputs(
    method: str,
    target_params: dict[str, float],
    store: Store,
    teacher_pred_ref: Ref | None = None,
    difficulty_ref: Ref | None = None,
    first_stage_pred_ref: Ref | None = None,
    data_ref: Ref | None = None,
) -> Ref:
    """One method's per-sample training data (targets or weights), from the upstream
    products it names (`MethodSpec.needs`); only methods with `targets` have this stage."""
    products = {}
    if teacher_pred_ref is not None:
        products["teacher_probs"] = split_probs(store, teacher_pred_ref, "train")
    if difficulty_ref is not None:
        products["difficulty"] = store.table(difficulty_ref, "train")["difficulty"].to_numpy()
    if first_stage_pred_ref is not None:
        gold = store.table(data_ref, "train")["label"].to_numpy()
        products["first_stage_errors"] = np.argmax(split_probs(store, first_stage_pred_ref, "train"), axis=1) != gold
    return store.put_tables({"train": as_frame(METHODS[method].targets(**products, **target_params))})


def evaluate(
    task: str,
    data_ref: Ref,
    model_pred_refs: dict[str, Ref],
    model_refs: dict[str, Ref],
    subnet_pred_refs: dict[str, Ref],
    difficulty_ref: Ref,
    store: Store,
) -> Ref:
    """Every table of the report, written as one artifact."""
    spec, data = TASKS[task], load_data(store, data_ref)
    splits = ("dev", *data.ood)
    probs = {m: {s: split_probs(store, r, s) for s in splits} for m, r in model_pred_refs.items()}
    results = results_table(probs, data, spec)
    sparsity = pd.DataFrame([{"model": m, "sparsity": _sparsity(store.record(r, TRAIN_STATS))} for m, r in model_refs.items()])
    results = results.merge(sparsity, on="model", how="left")
    breakdown = pd.concat(
        [heuristic_breakdown(probs[m][s], data.ood[s], spec).assign(model=m, ood_set=s)
         for m in probs for s in data.ood if "heuristic" in data.ood[s].columns],
        ignore_index=True,
    ) if any("heuristic" in f.columns for f in data.ood.values()) else pd.DataFrame()
    tables = {"results": results, "heuristics": breakdown, **_difficulty_tables(data, subnet_pred_refs, difficulty_ref, store)}
    return store.put_tables(tables, meta={"task": task})


def summarize(
    task: str,
    data_ref: Ref,
    seeds: list[int],
    report_refs: list[Ref],
    model_pred_refs: list[dict[str, Ref]],
    pairs: list[tuple[str, str]],
    store: Store,
) -> Ref:
    """The report across seeds: every per-seed table averaged (same layout as one seed's)
    and kept per seed (`<table>_by_seed`), each results metric's interval over seeds, and
    each (a, b) model pair's differences as paired bootstrap intervals."""
    spec, data = TASKS[task], load_data(store, data_ref)
    per_seed = [store.tables(r) for r in report_refs]
    tables = {name: mean_over_seeds([t[name] for t in per_seed]) for name in per_seed[0]}
    tables |= {f"{name}_by_seed": pd.concat([t[name].assign(seed=s) for s, t in zip(seeds, per_seed)], ignore_index=True)
               for name in per_seed[0]}
    by_seed = tables["results_by_seed"]
    metrics = [c for c in by_seed.columns if c.startswith(("acc_", "dev_")) or c in ("f_bias", "label_loyalty", "prob_loyalty")]
    tables["results_interval"] = seed_intervals(by_seed, metrics)
    splits = ("dev", *data.ood)
    correct = {}
    for model in model_pred_refs[0]:
        scored = [correctness({s: split_probs(store, refs[model], s) for s in splits}, data, spec)
                  for refs in model_pred_refs]
        correct[model] = {s: np.stack([c[s] for c in scored]) for s in splits}
    tables["comparisons"] = compare(correct, data, [tuple(p) for p in pairs]) if pairs else pd.DataFrame()
    return store.put_tables(tables, meta={"task": task, "seeds": seeds})


def measure_inference(
    summary_ref: Ref, model_refs: dict[str, Ref], data_ref: Ref, cfg: InferenceCostConfig, max_length: int, store: Store,
) -> Ref:
    """Each model's size, CPU latency and throughput beside its mean dev accuracy and its
    store reference (for `rmc export`), as an `inference` table.

    It takes the summary as input so that it runs last, alone: timings taken while other
    stages train would measure the contention, not the model. Timings differ between
    identical runs, so they are their own artifact, not part of the report."""
    rows = store.table(data_ref, "dev").head(cfg.rows)
    costs = inference_table({m: store.path(r) for m, r in model_refs.items()}, rows, max_length, cfg.batch_size, cfg.repeats)
    costs["ref"] = [f"{r.kind}/{r.digest}" for r in model_refs.values()]
    accuracy = store.table(summary_ref, "results")[["model", "acc_dev"]]
    return store.put_tables({"inference": accuracy.merge(costs, on="model", how="right")})


def _sparsity(stats: dict) -> float:
    """A model's achieved sparsity. Its training time stays out of the report, so that
    identical runs give identical reports; costs are read from each artifact's records."""
    return (stats.get("sparsity") or {}).get("sparsity", 0.0)


def _difficulty_tables(data: TaskData, subnet_pred_refs: dict[str, Ref], difficulty_ref: Ref, store: Store) -> dict[str, pd.DataFrame]:
    """Sub-network accuracy on easy vs hard dev rows (the paper's Fig. 1) and the agreement
    of the variance-based split with the annotated one (82.8 % on MNLI in the paper)."""
    if "hard" not in data.dev.columns:
        return {}
    hard = data.dev["hard"].to_numpy(dtype=bool)
    gold = data.dev["label"].to_numpy()
    rows = []
    for name, ref in subnet_pred_refs.items():
        pred = np.argmax(split_probs(store, ref, "dev"), axis=1)
        rows.append({"subnetwork": name, "dev": float((pred == gold).mean()), **easy_hard(pred, gold, hard)})
    variance = store.table(difficulty_ref, "dev")["variance"].to_numpy()
    by_variance = variance_hard_split(variance, int(hard.sum())).astype(bool)
    agreement = pd.DataFrame([{
        "agreement": split_agreement(by_variance, hard),
        "chance": float(hard.mean() ** 2 + (1 - hard.mean()) ** 2),
        "n_hard": int(hard.sum()),
        "n": len(hard),
    }])
    return {"subnetworks": pd.DataFrame(rows), "split_agreement": agreement}
