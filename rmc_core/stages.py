"""The pipeline's stages, each one step of the DAG with its I/O at the edges.

A stage reads its inputs from the store by `Ref`, calls the pure functions of this
package, writes one artifact and returns its `Ref`. The plain-Python pipeline and the
Prefect flow call exactly these functions; Prefect adds caching, retries and concurrency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmc_core.compression import CompressionConfig, spec_of
from rmc_core.compression.imp import finalize, hold, prune_to, sparsity_report
from rmc_core.compression.masked import transfer_mask
from rmc_core.machine_peak import matmul_params
from rmc_core.quantization import QuantAware, int8_modules, is_int8, save_int8, to_int8
from rmc_core.compression.registry import StudentInit
from rmc_core.config import DataConfig, ModelSpec, Quantize, TrainConfig
from rmc_core.data.texts import all_texts
from rmc_core.data.registry import TaskData, TaskHandle, TaskSpec, load_ood_train, load_task_data, task_spec
from rmc_core.objectives.bias_model import BiasModel, bias_probabilities
from rmc_core.objectives.difficulty import difficulty_scores
from rmc_core.objectives.estimators import ESTIMATORS, Scoring
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import CORRECT, DECLARED, Inputs, Measured, Queried, compute, directed_columns
from rmc_core.objectives.losses import gold_objective
from rmc_core.objectives.methods import METHODS
from rmc_core.models import build_base, import_fine_tuned, load_model, save_model
from rmc_core.store import Ref, Store
from rmc_core.training.dynamics import TrainingDynamics
from rmc_core.training.hooks import standard_hooks
from rmc_core.training.loop import TrainStats, fine_tune
from rmc_core.training.predict import PredictTally, per_sample_loss, predict_logits, probs_from_logits
from rmc_core.evaluation.uncertainty import compare, correctness, mean_over_seeds, seed_intervals, verdicts
from rmc_core.report import headline_lines, metric_labels

OOD_PREFIX = "ood__"
# The data artifact's table of OOD training rows (method ood-upper); not an OOD set.
OOD_TRAIN = "train_ood"
log = logging.getLogger(__name__)
# The store record of how a model was trained (steps, seconds, throughput, sparsity,
# precision, batching); a model no stage trained (a base or truncated encoder) has none.
TRAIN_STATS = "train_stats"
# A predictions artifact's rows, seconds and tokens (PredictTally), for its MFU in the cost table.
PREDICT_STATS = "predict_stats"
# The record of what scoring dev rows for the training dynamics added to a training.
DYNAMICS_COST = "dynamics_cost"
# An int8 model's record: its scheme, the trained model it was made from, and that model's
# achieved sparsity (rounding to int8 keeps every pruned zero).
QUANTIZE_STATS = "quantize_stats"
# An imported (already fine-tuned) teacher's record: where it came from and its sparsity.
IMPORT_STATS = "import_stats"


def as_frame(values: np.ndarray) -> pd.DataFrame:
    values = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(values if values.ndim == 2 else values[:, None]).rename(columns=str)


def as_array(frame: pd.DataFrame) -> np.ndarray:
    values = frame.to_numpy(dtype=np.float64)
    return values[:, 0] if values.shape[1] == 1 else values


def prepare_data(task: TaskHandle, cfg: DataConfig, store: Store, ood_train: bool = False, fingerprint: str = "") -> Ref:
    """Read, check and subsample every split once; later stages read the stored copy.
    `ood_train`: also the task's OOD training rows (`OOD_TRAIN`), for the upper bound only.
    `fingerprint`: the digest of the task's local files (data/fingerprint.py), read by no
    line here: it is in the stage's cache key, so an edited file recomputes the data and
    everything that depends on it."""
    spec = task_spec(task)
    task = spec.name
    data = load_task_data(spec, cfg)
    tables = {"train": data.train, "dev": data.dev, **{OOD_PREFIX + k: v for k, v in data.ood.items()}}
    if ood_train:
        tables[OOD_TRAIN] = load_ood_train(spec, cfg)
        log.info("%s OOD training rows for the upper bound: %d", task, len(tables[OOD_TRAIN]))
    hard = f" ({int(data.dev['hard'].sum())} annotated hard)" if "hard" in data.dev.columns else ""
    log.info("%s data: %d train, %d dev%s, OOD %s", task, len(data.train), len(data.dev), hard,
             ", ".join(f"{k} {len(v)}" for k, v in data.ood.items()) or "none")
    return store.put_tables(tables, kind="data", meta={"task": task, "labels": list(spec.labels)})


def data_labels(store: Store, ref: Ref) -> tuple[str, ...]:
    """The task's label names, as the data artifact records them."""
    return tuple(store.meta(ref)["labels"])


def load_data(store: Store, ref: Ref) -> TaskData:
    tables = store.tables(ref)
    ood = {k.removeprefix(OOD_PREFIX): v for k, v in tables.items() if k.startswith(OOD_PREFIX)}
    return TaskData(train=tables["train"], dev=tables["dev"], ood=ood)


def prepare_base(spec: ModelSpec, data_ref: Ref, seed: int, store: Store, fingerprint: str = "") -> Ref:
    """The initial weights every fine-tune starts from (pretrained encoder + seeded head).
    `fingerprint`: a local encoder folder's digest, read by no line here: in the cache key,
    so that new weights at the same path make a new base."""
    train = store.table(data_ref, "train")
    model, tokenizer = build_base(spec, data_labels(store, data_ref), all_texts(train), seed)
    return store.put("model", lambda d: save_model(model, tokenizer, d))


def import_teacher(spec: ModelSpec, labels: tuple[str, ...], store: Store, fingerprint: str = "") -> Ref:
    """A fine-tuned classifier used as the teacher as it is (`teacher.fine_tuned`): its head
    put in the task's label order, stored as safetensors. `fingerprint`: the folder's
    digest (in the cache key: a teacher fine-tuned again at the same path is imported again)."""
    model, tokenizer = import_fine_tuned(spec, tuple(labels))
    ref = store.put("model", lambda d: save_model(model, tokenizer, d))
    store.write_record(ref, IMPORT_STATS, {"source": spec.source, "sparsity": sparsity_report(model)})
    return ref


def mask_student(masked_ref: Ref, start_ref: Ref, store: Store) -> Ref:
    """The starting model with the zeros of a mask-searched model (SRNets' scenario 2)."""
    masked, _ = load_model(store.path(masked_ref))
    model, tokenizer = load_model(store.path(start_ref))
    transfer_mask(masked, model)
    return store.put("model", lambda d: save_model(model, tokenizer, d))


def prepare_student(compression: CompressionConfig, base_ref: Ref, data_ref: Ref, seed: int, store: Store) -> Ref:
    """A student's starting model, for the kinds that do not start from the base itself
    (`CompressionSpec.prepare`: a truncated or another encoder)."""
    train = store.table(data_ref, "train")
    init = StudentInit(data_labels(store, data_ref), all_texts(train), seed)
    model, tokenizer = load_model(store.path(base_ref))
    model, tokenizer = spec_of(compression).prepare(compression, model, tokenizer, init)
    return store.put("model", lambda d: save_model(model, tokenizer, d))


def train(
    base_ref: Ref,
    data_ref: Ref,
    cfg: TrainConfig,
    store: Store,
    method: str = "vanilla",
    loss_params: dict[str, float] | None = None,
    compression: CompressionConfig | None = None,
    per_sample_ref: Ref | None = None,
    record_dynamics: bool = False,
    quantize_aware: bool = False,
    device: str = "cpu",
    desc: str = "fine-tune",
    on_progress: Callable[[float], None] | None = None,
) -> Ref:
    """Fine-tune a copy of the base model with `method`'s loss, compressed alongside by the
    hooks of `compression` when set (IMP, heads and neurons: then the saved model is the
    smaller rebuild, ...).

    `loss_params` are the hyper-parameters that loss reads (`MethodSpec.loss_params`), so a
    student's cache key changes with its own method's settings only. `record_dynamics`
    (the cartography estimator's teacher) saves each row's gold-label probability per
    epoch beside the weights, as the artifact's dynamics_train and dynamics_dev tables.
    `quantize_aware` trains with int8 rounding simulated (`QuantAware`, the qat-int8 student).
    """
    model, tokenizer = load_model(store.path(base_ref))
    train_rows = store.table(data_ref, "train")
    per_sample = as_array(store.table(per_sample_ref, "train")) if per_sample_ref else None
    if (ood_rows := METHODS[method].ood_rows) is not None:
        train_rows, per_sample = ood_rows(train_rows, store.table(data_ref, OOD_TRAIN))
    log.info("%s: %d rows, %s epochs, lr %g, %s loss, compression %s, on %s", desc, len(train_rows), cfg.epochs, cfg.lr,
             method, compression or "none", device)
    objective = METHODS[method].loss(per_sample, **(loss_params or {}))
    hooks = [*(spec_of(compression).hooks(compression) if compression is not None else []),
             *([QuantAware()] if quantize_aware else []), *standard_hooks(desc, on_progress)]
    dynamics = None
    if record_dynamics:
        dynamics = TrainingDynamics(len(train_rows), store.table(data_ref, "dev"), tokenizer, cfg, device, desc)
        objective, hooks = dynamics.wrap(objective), [*hooks, dynamics]
    model, stats = fine_tune(model, tokenizer, train_rows, objective, cfg, hooks, device, desc)
    if dynamics is None:
        return _put_trained(model, tokenizer, stats, store, desc)
    ref = _put_trained(model, tokenizer, stats, store, desc, dynamics.tables())
    store.write_record(ref, DYNAMICS_COST, {"seconds": dynamics.dev_seconds, "epochs": len(dynamics.dev_probs)})
    return ref


def quantize(model_ref: Ref, scheme: Quantize, store: Store, desc: str = "int8") -> Ref:
    """The int8 version of a trained student: its own artifact, evaluated like any model."""
    model, tokenizer = load_model(store.path(model_ref))
    int8 = to_int8(model)
    log.info("%s: %d Linear layers made int8 (%s)", desc, len(int8_modules(int8)), scheme)
    ref = store.put("model", lambda d: save_int8(int8, tokenizer, d, scheme))
    trained = store.record(model_ref, TRAIN_STATS) or {}
    store.write_record(ref, QUANTIZE_STATS, {"scheme": scheme, "from": model_ref.digest, "sparsity": trained.get("sparsity")})
    return ref


def _put_trained(model: Any, tokenizer: Any, stats: TrainStats, store: Store, desc: str,
                 tables: dict[str, pd.DataFrame] | None = None) -> Ref:
    log.info("%s: %d steps in %.0f s (%.1f examples/s), final loss %.4f, achieved sparsity %.4f", desc, stats.steps,
             stats.seconds, stats.examples_per_s, stats.final_loss, (stats.sparsity or {}).get("sparsity", 0.0))

    def write(folder: Path) -> None:
        save_model(model, tokenizer, folder)
        for name, frame in (tables or {}).items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)

    ref = store.put("model", write)
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
    if recovery_epochs > 0:
        train_rows = store.table(data_ref, "train")
        log.info("%s: one-shot %s pruning to %.2f, %s recovery epochs on %s", desc, scope, sparsity, recovery_epochs, device)
        recovery = cfg.model_copy(update={"epochs": recovery_epochs})
        model, stats = fine_tune(model, tokenizer, train_rows, gold_objective(), recovery,
                                 [hold(sparsity, scope), *standard_hooks(desc, on_progress)], device, desc)
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
    tables, tally = {}, PredictTally()
    for split in splits:
        rows = store.table(data_ref, split if split in ("train", "dev") else OOD_PREFIX + split)
        logits = predict_logits(model, tokenizer, rows, cfg.max_length, cfg.eval_batch_size, device,
                                desc=f"predict {desc} {split}", precision=cfg.precision, tally=tally)
        table = as_frame(probs_from_logits(logits))
        if split in ("train", "dev"):
            table["loss"] = per_sample_loss(logits, rows["label"].to_numpy())
        tables[split] = table
    ref = store.put_tables(tables)
    # An int8 model's packed layers are not parameters, and an fp32 matmul is not its peak: no MFU for it.
    store.write_record(ref, PREDICT_STATS, {**tally.__dict__, "matmul_params": matmul_params(model)}
                       | ({"precision": "int8"} if is_int8(store.path(model_ref)) else {}))
    return ref


def split_probs(store: Store, ref: Ref, split: str) -> np.ndarray:
    """One split's class probabilities from a predictions artifact (without its loss column)."""
    return as_array(store.table(ref, split).drop(columns="loss", errors="ignore"))


def correct_by_seed(store: Store, pred_refs: list[Ref], data: TaskData, spec: TaskSpec) -> dict[str, np.ndarray]:
    """One model's (seeds, rows) 0/1 correctness per split, from its predictions artifact of
    each seed (in the caller's seed order), the input every paired comparison takes."""
    splits = ("dev", *data.ood)
    scored = [correctness({s: split_probs(store, ref, s) for s in splits}, data, spec) for ref in pred_refs]
    return {s: np.stack([c[s] for c in scored]) for s in splits}


def difficulty(estimator: str, scored_refs: list[Ref], alpha: float, store: Store, seed: int = 0) -> Ref:
    """Eq. 1 over the per-row score of each split that the run's estimator
    (objectives/estimators.py) reads from `scored_refs`, the artifacts of the product it
    names (each sub-network's predictions; the teacher's predictions; the teacher; the
    data); `seed` seeds a score that draws (a control's permutation). The score is kept
    as column `variance` (whichever one Eq. 1 rescales); the dev score feeds the easy/hard split."""
    spec, rng = ESTIMATORS[estimator], np.random.default_rng(seed)
    tables = {}
    for split in ("train", "dev"):
        variance = spec.score(Scoring(store, split, scored_refs, rng))
        tables[split] = pd.DataFrame({"variance": variance, "difficulty": difficulty_scores(variance, alpha)})
    return store.put_tables(tables)


def bias_model(task: TaskHandle, data_ref: Ref, kind: BiasModel, seed: int, store: Store) -> Ref:
    """The known-bias methods' bias-only model: its class probabilities on train (out of
    fold) and dev, with each row's gold-label loss, as a predictions artifact. Logs its dev
    accuracy on the easy and hard rows, which says whether it captures the shortcut."""
    train, dev = store.table(data_ref, "train"), store.table(data_ref, "dev")
    probs = bias_probabilities(kind, train, dev, len(task_spec(task).labels), seed)
    tables = {}
    for split, frame in (("train", train), ("dev", dev)):
        table = as_frame(probs[split])
        table["loss"] = -np.log(np.clip(probs[split][np.arange(len(frame)), frame["label"].to_numpy()], 1e-12, 1.0))
        tables[split] = table
    right = np.argmax(probs["dev"], axis=1) == dev["label"].to_numpy()
    if "hard" in dev.columns:
        hard = dev["hard"].to_numpy(dtype=bool)
        log.info("bias-only model (%s): dev accuracy %.3f, easy rows %.3f, hard rows %.3f", kind, right.mean(),
                 right[~hard].mean(), right[hard].mean())
    else:
        log.info("bias-only model (%s): dev accuracy %.3f", kind, right.mean())
    return store.put_tables(tables)


def student_inputs(
    method: str,
    target_params: dict[str, float],
    store: Store,
    teacher_pred_ref: Ref | None = None,
    difficulty_ref: Ref | None = None,
    first_stage_pred_ref: Ref | None = None,
    data_ref: Ref | None = None,
    bias_pred_ref: Ref | None = None,
) -> Ref:
    """One method's per-sample training data (targets or weights), from the upstream
    products it names (`MethodSpec.needs`); only methods with `targets` have this stage."""
    products = {}
    if bias_pred_ref is not None:
        products["bias_probs"] = split_probs(store, bias_pred_ref, "train")
        products["bias_beta"] = np.exp(-store.table(bias_pred_ref, "train")["loss"].to_numpy())
    if teacher_pred_ref is not None:
        products["teacher_probs"] = split_probs(store, teacher_pred_ref, "train")
    if difficulty_ref is not None:
        products["difficulty"] = store.table(difficulty_ref, "train")["difficulty"].to_numpy()
    if first_stage_pred_ref is not None:
        gold = store.table(data_ref, "train")["label"].to_numpy()
        products["first_stage_errors"] = np.argmax(split_probs(store, first_stage_pred_ref, "train"), axis=1) != gold
    spec = METHODS[method]
    named = {name: value for name, value in products.items() if name in spec.needs}
    return store.put_tables({"train": as_frame(spec.targets(**named, **target_params))})


def query_model(
    evaluation: str,
    model_ref: Ref,
    data_ref: Ref,
    task: TaskHandle,
    settings: Any,
    predict_cfg: TrainConfig,
    store: Store,
    device: str = "cpu",
    desc: str = "model",
    on_progress: Callable[[float], None] | None = None,
) -> Ref:
    """One model queried by an evaluation that needs the model itself per seed (the
    adversarial attack: `EvaluationSpec.query`). Only its own settings and the model's
    prediction settings key it, so changing the attack recomputes only these stages."""
    queried = Queried(store.path(model_ref), task_spec(task), load_data(store, data_ref), settings, predict_cfg, device,
                      desc, on_progress)
    return store.put_tables(EVALUATIONS[evaluation].query(queried), meta={"evaluation": evaluation})


def evaluate(
    evaluation: str,
    task: TaskHandle,
    data_ref: Ref,
    model_pred_refs: dict[str, Ref],
    store: Store,
    subnet_pred_refs: dict[str, Ref] | None = None,
    difficulty_ref: Ref | None = None,
    query_refs: dict[str, Ref] | None = None,
    train_pred_refs: dict[str, Ref] | None = None,
    settings: Any = None,
    desc: str = "evaluate",
) -> Ref:
    """One evaluation's tables for one seed's models (`EvaluationSpec`), from their stored
    predictions; the sub-networks, difficulty and each model's train-row predictions
    (`train_pred_refs`) only for evaluations that name them, each model's `query_model`
    tables for an evaluation that queries the models, and its settings for one that has them."""
    spec, data = EVALUATIONS[evaluation], load_data(store, data_ref)
    splits = ("dev", *data.ood)
    train = {m: {"train": split_probs(store, r, "train")} for m, r in (train_pred_refs or {}).items()}
    inputs = Inputs(
        task=task_spec(task), data=data,
        probs={m: {s: split_probs(store, r, s) for s in splits} | train.get(m, {}) for m, r in model_pred_refs.items()},
        difficulty=store.table(difficulty_ref, "dev")["variance"].to_numpy() if difficulty_ref is not None else None,
        subnetworks={n: split_probs(store, r, "dev") for n, r in subnet_pred_refs.items()} if subnet_pred_refs else None,
        queried={m: store.tables(r) for m, r in query_refs.items()} if query_refs else None,
        settings=settings,
    )
    return store.put_tables(compute(spec, inputs), meta={"task": task_spec(task).name, "evaluation": evaluation})


def report(
    task: TaskHandle,
    evaluation_refs: dict[str, Ref],
    model_refs: dict[str, Ref],
    identity: dict[str, dict[str, Any]],
    store: Store,
    desc: str = "report",
) -> Ref:
    """One seed's report: every evaluation's per-model columns in one `results` table (in
    registration order) and their declarations in `columns` (direction, paired, label), with what each model is (`pipeline.identities`: role, compression,
    nominal sparsity, method) and its achieved sparsity, and every evaluation's own tables.
    The identity columns mean nothing downstream parses a model's name."""
    tables: dict[str, pd.DataFrame] = {}
    results = pd.DataFrame({"model": list(model_refs)})
    declared = []
    for ref in evaluation_refs.values():
        for name, frame in store.tables(ref).items():
            if name == "results":
                results = results.merge(frame, on="model", how="left")
            elif name == DECLARED:
                declared.append(frame)
            else:
                tables[name] = frame
    achieved = pd.DataFrame([{"model": m, "achieved_sparsity": _sparsity(
        store.record(r, TRAIN_STATS) or store.record(r, QUANTIZE_STATS) or store.record(r, IMPORT_STATS) or {})}
                             for m, r in model_refs.items()])
    tables = {"results": with_identity(results.merge(achieved, on="model", how="left"), identity),
              DECLARED: pd.concat(declared, ignore_index=True), **tables}
    if "heuristics" in tables:
        tables["heuristics"] = with_identity(tables["heuristics"], identity)
    if "subnetworks" in tables:
        sub = tables["subnetworks"]
        sub.insert(1, "sparsity", [identity[n]["sparsity"] for n in sub["subnetwork"]])
    for line in headline_lines(tables):
        log.info("%s: %s", desc, line)
    return store.put_tables(tables, meta={"task": task_spec(task).name})


IDENTITY = ("role", "compression", "sparsity", "method")


def with_identity(frame: pd.DataFrame, identity: dict[str, dict[str, Any]], key: str = "model") -> pd.DataFrame:
    """`frame` with each model's identity columns after its name."""
    ids = pd.DataFrame([{key: m, **{c: identity[m][c] for c in IDENTITY}} for m in frame[key].unique()])
    merged = frame.merge(ids, on=key, how="left")
    first = [key, *IDENTITY]
    return merged[first + [c for c in merged.columns if c not in first]]


def summarize(
    task: TaskHandle,
    data_ref: Ref,
    seeds: list[int],
    report_refs: list[Ref],
    model_pred_refs: list[dict[str, Ref]],
    pairs: list[tuple[str, str]],
    evaluations: list[str],
    store: Store,
    query_refs: list[dict[str, dict[str, Ref]]] | None = None,
) -> Ref:
    """The report across seeds: every per-seed table averaged (same layout as one seed's)
    and kept per seed (`<table>_by_seed`), each results metric's interval over seeds, and
    each (a, b) model pair's differences as paired intervals (bootstrap and t over seeds).
    `query_refs`: per seed, per querying evaluation, each model's `query_model` artifact,
    whose `correct` table adds splits of their own (the attacked rows) to the comparisons."""
    spec, data = task_spec(task), load_data(store, data_ref)
    per_seed = [store.tables(r) for r in report_refs]
    listed = ",".join(map(str, seeds))
    tables = {name: _with_seeds(mean_over_seeds([t[name] for t in per_seed]), listed) for name in per_seed[0]}
    tables |= {f"{name}_by_seed": pd.concat([_seed_column(t[name], "seed", s) for s, t in zip(seeds, per_seed)], ignore_index=True)
               for name in per_seed[0]}
    by_seed = tables["results_by_seed"]
    declared = tables[DECLARED]
    metrics = directed_columns(declared, by_seed.columns)
    tables["results_interval"] = seed_intervals(by_seed, metrics)
    correct = {}
    for model in model_pred_refs[0]:
        correct[model] = correct_by_seed(store, [refs[model] for refs in model_pred_refs], data, spec)
        for i, by_evaluation in enumerate(query_refs or []):
            for refs in by_evaluation.values():
                extra = store.tables(refs[model]).get(CORRECT) if model in refs else None
                for split in ([] if extra is None else extra.columns):
                    correct[model].setdefault(split, np.empty((len(seeds), len(extra)), dtype=np.float32))[i] = extra[split]
    comparisons = compare(correct, data, [tuple(p) for p in pairs], tuple(evaluations)) if pairs else pd.DataFrame()
    if not comparisons.empty:
        ids = tables["results"].set_index("model")
        for side in ("a", "b"):
            for column in IDENTITY[1:]:
                comparisons[f"{side}_{column}"] = comparisons[side].map(ids[column])
        comparisons["seeds"] = listed
    tables["comparisons"] = comparisons
    for line in verdicts(comparisons, metric_labels(tables)) if not comparisons.empty else []:
        log.info("summary over seeds %s: %s", listed, line)
    return store.put_tables(tables, meta={"task": spec.name, "seeds": seeds})


def compare_models(
    task: TaskHandle,
    data_ref: Ref,
    pred_refs: dict[str, list[Ref]],
    pairs: list[tuple[str, str]],
    teacher: str,
    evaluations: list[str],
    store: Store,
) -> Ref:
    """Paired intervals (the envelope of the bootstrap over examples and seeds and the
    t-interval over seeds) of models from different runs scored on the same rows: an
    experiment's declared comparisons. `pred_refs`: each model's predictions per seed, in
    one seed order for all; `teacher`: the one of them F_bias is measured against."""
    spec, data = task_spec(task), load_data(store, data_ref)
    correct = {name: correct_by_seed(store, refs, data, spec) for name, refs in pred_refs.items()}
    table = compare(correct, data, [tuple(p) for p in pairs], tuple(evaluations), teacher=teacher)
    return store.put_tables({"comparisons": table})


def _with_seeds(frame: pd.DataFrame, listed: str) -> pd.DataFrame:
    """A table averaged over seeds, with the seeds it averages ("0,1,2")."""
    return frame if frame.empty else _seed_column(frame, "seeds", listed)


def _seed_column(frame: pd.DataFrame, name: str, value: Any) -> pd.DataFrame:
    """`frame` with a seed column after its identity columns (or last, in tables without them)."""
    frame = frame.copy()
    position = frame.columns.get_loc("method") + 1 if "method" in frame.columns else len(frame.columns)
    frame.insert(position, name, value)
    return frame


def measure_models(
    evaluation: str, summary_ref: Ref, model_refs: dict[str, Ref], data_ref: Ref, settings: Any, max_length: int, store: Store,
) -> Ref:
    """An evaluation of the models themselves (`EvaluationSpec.measure`; size and speed),
    each of its tables with every model's identity, mean dev accuracy and store reference
    (for `rmc export`).

    It takes the summary as input so that it runs last, alone: timings taken while other
    stages train would measure the contention, not the model. Timings differ between
    identical runs, so they are their own artifact, not part of the report."""
    measured = EVALUATIONS[evaluation].measure(Measured({m: store.path(r) for m, r in model_refs.items()},
                                                        load_data(store, data_ref), max_length, settings))
    refs = pd.DataFrame({"model": list(model_refs), "ref": [f"{r.kind}/{r.digest}" for r in model_refs.values()]})
    accuracy = store.table(summary_ref, "results")[["model", *IDENTITY, "acc_dev"]]
    return store.put_tables({name: accuracy.merge(frame.merge(refs, on="model"), on="model", how="right")
                             for name, frame in measured.items()}, meta={"evaluation": evaluation})


def _sparsity(stats: dict) -> float:
    """A model's achieved sparsity. Its training time stays out of the report, so that
    identical runs give identical reports; costs are read from each artifact's records."""
    return (stats.get("sparsity") or {}).get("sparsity", 0.0)
