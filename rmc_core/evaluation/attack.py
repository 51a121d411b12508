"""Robustness under adversarial attack (Xu et al., 2021, with TextFooler): per model, the
accuracy on a fixed sample of dev rows after a TextFooler-style word-substitution attack
(rmc_core/attack/), how often the attack succeeds, what it costs in queries, and how much
of the sentence it changes. Every model meets the same rows, candidates and similarity
judge, so accuracy under attack is compared in pairs like any accuracy."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import Field
from tqdm.auto import tqdm

from rmc_core.evaluation.registry import CORRECT, Column, EvaluationSpec, Inputs, Paired, Queried, Resampled, register
from rmc_core.evaluation.statistics import resampled_means
from rmc_core.schema import SEED_MAX, Frozen, Int, Real
from rmc_core.training.stopping import check, stoppable

# The attack itself (rmc_core/attack/) and the models are imported where they run: the run
# config imports this registration and stays torch-free.
if TYPE_CHECKING:  # annotations only: the config imports the evaluations
    from rmc_core.data.registry import TaskSpec

class AttackConfig(Frozen):
    """The adversarial attack on every model of a run (rmc_core/attack/, TextFooler's search
    with offline candidates): the same `examples` dev rows for every model. The defaults
    are TextFooler's where it has one (50 candidates, embedding cosine 0.5, sentence
    similarity 0.7); why each is what it is: docs/attack.md."""

    examples: Int = Field(0, ge=0, le=100_000, description="dev rows attacked per model, the same rows for every model "
                          "(0: no attack; each attacked row costs tens of model calls)")
    seed: Int = Field(0, ge=0, le=SEED_MAX, description="seeds which dev rows are attacked; fixed across run seeds")
    candidates: Int = Field(50, ge=1, le=1000, description="nearest whole words tried per word (TextFooler: 50)")
    min_cosine: Real = Field(0.5, ge=-1, le=1, description="a candidate's least cosine to the word in the packaged "
                             "MiniLM's input embeddings (TextFooler: 0.5 in its synonym embeddings)")
    min_similarity: Real = Field(0.7, ge=0, le=1, description="least cosine between the original and the changed "
                                 "sentence, both embedded by the packaged MiniLM (mean pooling; TextFooler: 0.7 with USE)")
    max_changed: Real = Field(0.25, gt=0, le=1, description="most words changed, as a share of the attacked sentence's "
                              "words (at least one word)")
    keep_role: bool = Field(True, description="a substitute keeps the word's part of speech and inflection (no painter -> "
                            "paint, pilot -> pilots), read from lemminflect's lexicon; off: every embedding neighbour")


SPLIT = "attack"
EXAMPLES_PER_MODEL = 20


def attacked_rows(dev: pd.DataFrame, examples: int, seed: int) -> np.ndarray:
    """The dev rows every model of a run is attacked on: a seeded sample, in dev order."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(dev), size=min(examples, len(dev)), replace=False))


@lru_cache(maxsize=4)
def _neighbours(k: int, min_cosine: float, keep_role: bool) -> EmbeddingNeighbours:
    from rmc_core.attack.candidates import EmbeddingNeighbours
    from rmc_core.attack.reference import reference_encoder

    return EmbeddingNeighbours.of_encoder(*reference_encoder(), k=k, min_cosine=min_cosine, keep_role=keep_role)


def _query(q: Queried) -> dict[str, pd.DataFrame]:
    from rmc_core.attack.reference import reference_encoder
    from rmc_core.attack.similarity import SentenceSimilarity
    from rmc_core.attack.textfooler import attack_row
    from rmc_core.models import load_model
    from rmc_core.training.predict import predict_logits, probs_from_logits

    s, side = q.settings, q.task.attacked
    if "text_b" not in q.data.dev.columns:  # a single-text task: the one text is attacked
        side = "text_a"
    other = ("text_a" if side == "text_b" else "text_b") if "text_b" in q.data.dev.columns else None
    rows = q.data.dev.iloc[attacked_rows(q.data.dev, s.examples, s.seed)]
    model, tokenizer = load_model(q.model)
    neighbours = _neighbours(s.candidates, s.min_cosine, s.keep_role)
    similarity = SentenceSimilarity(*reference_encoder())
    outcomes = []
    with stoppable():
        fixed_texts = rows[other] if other is not None else [None] * len(rows)
        for i, (fixed, text, label) in enumerate(tqdm(list(zip(fixed_texts, rows[side], rows["label"])),
                                                      desc=f"attack {q.desc}", unit="row", dynamic_ncols=True)):
            check(f"attack {q.desc}", i)

            def victim(texts: list[str], fixed: str = fixed) -> np.ndarray:
                frame = pd.DataFrame({side: texts, **({other: [fixed] * len(texts)} if other else {})})
                return probs_from_logits(predict_logits(model, tokenizer, frame, q.predict.max_length,
                                                        q.predict.eval_batch_size, q.device,
                                                        precision=q.predict.precision, progress=False))

            outcomes.append(attack_row(text, int(label), victim, neighbours, similarity, s.max_changed, s.min_similarity))
            if q.on_progress is not None:
                q.on_progress((i + 1) / len(rows))
    table = pd.DataFrame({
        "row": rows.index.to_numpy(), "label": rows["label"].to_numpy(),
        "pred_before": [o.pred_before for o in outcomes], "pred_after": [o.pred_after for o in outcomes],
        "success": [o.success for o in outcomes], "queries": [o.queries for o in outcomes],
        "changed": [o.changed for o in outcomes], "words": [o.words for o in outcomes],
        "changed_share": [o.changed_share for o in outcomes], "similarity": [o.similarity for o in outcomes],
        "original": rows[side].to_numpy(), "adversarial": [o.adversarial for o in outcomes],
    })
    return {"rows": table, CORRECT: pd.DataFrame({SPLIT: (table["pred_after"] == table["label"]).astype(np.float32)})}


def attack_summary(table: pd.DataFrame) -> dict[str, float]:
    right = table["pred_before"] == table["label"]
    attacked = table[right]
    won = attacked[attacked["success"]]
    mean = lambda frame, column: float(frame[column].mean()) if len(frame) else float("nan")
    return {"attack_clean_accuracy": float(right.mean()),
            "attack_accuracy": float((table["pred_after"] == table["label"]).mean()),
            "attack_success_rate": mean(attacked, "success"),
            "attack_queries": mean(attacked, "queries"),
            "attack_words_changed": mean(won, "changed_share"),
            "attack_similarity": mean(won, "similarity")}


def _results(inputs: Inputs) -> pd.DataFrame:
    return pd.DataFrame([{"model": m, **attack_summary(t["rows"])} for m, t in inputs.queried.items()])


def _examples(inputs: Inputs) -> dict[str, pd.DataFrame]:
    """About EXAMPLES_PER_MODEL rows per model for people to read: its successful attacks
    first (where meaning may have been lost), then its failed ones."""
    labels = inputs.task.labels
    out = []
    for model, tables in inputs.queried.items():
        t = tables["rows"]
        attacked = t[t["pred_before"] == t["label"]].sort_values("success", ascending=False, kind="stable")
        shown = attacked.head(EXAMPLES_PER_MODEL)
        out.append(pd.DataFrame({
            "model": model, "row": shown["row"], "gold": [labels[i] for i in shown["label"]],
            "before": [labels[i] for i in shown["pred_before"]], "after": [labels[i] for i in shown["pred_after"]],
            "success": shown["success"], "similarity": shown["similarity"], "original": shown["original"],
            "adversarial": shown["adversarial"]}))
    return {"attack_examples": pd.concat(out, ignore_index=True)}


def _paired(r: Resampled) -> Paired:
    if SPLIT not in r.correct:
        return {}
    return {"attack_accuracy": (r.correct[SPLIT].mean(axis=1), resampled_means(r.correct[SPLIT], r.weights[SPLIT]))}


def _check(settings: AttackConfig, task: TaskSpec) -> None:
    if task.attacked is None:
        raise ValueError(f"attack.examples={settings.examples}, but task {task.name} has no text to perturb; set "
                         f"attack.examples=0")


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _documents(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """attack_examples.md: each model's original and adversarial sentences with the
    predictions before and after (the first seed's, when there are several)."""
    examples = tables.get("attack_examples_by_seed", tables.get("attack_examples"))
    if examples is None or examples.empty:
        return {}
    if "seed" in examples.columns:
        examples = examples[examples["seed"] == examples["seed"].iloc[0]]
    lines = ["# Adversarial examples", "",
             "Rows each model got right, attacked (rmc_core/attack/textfooler.py); successful attacks first. "
             "Changed words are in **bold**. Judge whether the adversarial sentence keeps the original's meaning "
             "(and so its gold label): the candidates are embedding neighbours, which can include antonyms.", ""]
    for model, group in examples.groupby("model", sort=False):
        won = int(group["success"].sum())
        lines += [f"## {model}", "", f"{won} of the {len(group)} shown were broken.", "",
                  "| row | gold | before | after | similarity | original | adversarial |", "|---|---|---|---|---|---|---|"]
        for r in group.itertuples():
            lines.append(f"| {r.row} | {r.gold} | {r.before} | {r.after} | {r.similarity:.3f} | {_escape(r.original)} | "
                         f"{_escape(_bold_changes(r.original, r.adversarial))} |")
        lines.append("")
    return {"attack_examples.md": "\n".join(lines)}


def _bold_changes(original: str, adversarial: str) -> str:
    """The adversarial text with the words that differ from the original in bold."""
    a, b = original.split(" "), adversarial.split(" ")
    if len(a) != len(b):
        return adversarial
    return " ".join(w if w == o else f"**{w}**" for o, w in zip(a, b))


ATTACK = register(EvaluationSpec(
    name="attack",
    summary="accuracy under a TextFooler-style word-substitution attack on a fixed sample of dev rows",
    columns=lambda data: [
        Column("attack_clean_accuracy", "higher", label="attacked rows, clean acc.", share=True,
               legend="attacked rows, clean acc.: accuracy on the attacked dev sample before the attack."),
        Column("attack_accuracy", "higher", paired=True, label="acc. under attack", shown="headline", share=True,
               legend="acc. under attack: accuracy on the attacked dev sample after the attack (a row the model got wrong "
                      "counts as wrong)."),
        Column("attack_success_rate", "lower", label="attack success", share=True,
               legend="attack success: share of the rows the model got right that the attack made it get wrong."),
        Column("attack_queries", None, label="attack queries",
               legend="attack queries: model calls per attacked row (more: the model took more work to break, or held)."),
        Column("attack_words_changed", None, label="attack words changed",
               legend="attack words changed: share of the sentence's words the successful attacks changed."),
        Column("attack_similarity", None, label="attack similarity",
               legend="attack similarity: cosine of the successful adversarial sentence to the original (packaged "
                      "MiniLM, mean pooling).")],
    results=_results,
    tables=_examples,
    paired=_paired,
    query=_query,
    settings=AttackConfig,
    section="attack",
    enabled=lambda settings: settings.examples > 0,
    documents=_documents,
    check=_check,
))
