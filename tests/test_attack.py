"""The adversarial attack: TextFooler's search on toy victims whose answers are known, the
greedy search checked against an exhaustive one-word search on a trained model, the
evaluation's figures and paired comparisons, and bad settings refused up front."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from rmc_core import pipeline, stages
from rmc_core.attack.candidates import EmbeddingNeighbours
from rmc_core.attack.reference import reference_encoder
from rmc_core.attack.similarity import SentenceSimilarity
from rmc_core.attack.textfooler import attack_row, importance, word_budget
from rmc_core.attack.word_role import keeps_role
from rmc_core.attack.words import STOPWORDS, Words
from rmc_core.config import AttackConfig, RunConfig
from rmc_core.data.registry import TASKS
from rmc_core.models import load_model
from rmc_core.store import Store
from rmc_core.training.predict import predict_logits, probs_from_logits
from tests.conftest import FAST, tiny_data_and_base, tiny_run_config


def keyword_victim(word: str, calls: list[str]):
    """Class 0 while `word` is in the text, else class 1; records every text it scores."""

    def victim(texts: list[str]) -> np.ndarray:
        calls.extend(texts)
        return np.array([[0.9, 0.1] if word in t.split() else [0.2, 0.8] for t in texts])

    return victim


def same(original: str, texts: list[str]) -> np.ndarray:
    return np.full(len(texts), 0.95)


def test_words_are_changed_in_place_and_stopwords_never_are():
    words = Words.of("The doctor, who never slept, didn't help.")
    assert [words.word(i) for i in range(len(words))] == ["The", "doctor", "who", "never", "slept", "didn't", "help"]
    assert words.replace({0: "a", 1: "physician"}) == "A physician, who never slept, didn't help."
    assert words.delete(1) == "The , who never slept, didn't help."
    assert [words.replaceable(i) for i in range(len(words))] == [False, True, False, False, True, False, True]
    assert {"never", "not", "no", "every", "all"} <= STOPWORDS


def test_importance_is_textfoolers_drop_plus_the_gain_of_a_flipped_class():
    original = np.array([0.7, 0.2, 0.1])
    deleted = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    assert importance(original, deleted, 0) == pytest.approx([0.1, 0.5 + 0.5])
    assert word_budget(10, 0.25) == 2 and word_budget(3, 0.25) == 1


def test_the_attack_breaks_a_row_by_its_most_important_word_and_counts_every_query():
    calls: list[str] = []
    outcome = attack_row("the doctor helped the lawyer", 0, keyword_victim("doctor", calls),
                         lambda w: {"doctor": ["physician", "medic"], "lawyer": ["attorney"]}.get(w, []), same,
                         max_changed=0.25, min_similarity=0.7)
    assert outcome.success and outcome.pred_after == 1
    assert outcome.adversarial == "the physician helped the lawyer" and outcome.changed == 1
    # The original, five deletions, then both candidates for "doctor" (the most important word).
    assert outcome.queries == len(calls) == 1 + 5 + 2


def test_candidates_below_the_similarity_floor_are_never_queried():
    calls: list[str] = []
    outcome = attack_row("the doctor helped the lawyer", 0, keyword_victim("doctor", calls),
                         lambda w: ["physician"], lambda o, t: np.full(len(t), 0.5), max_changed=1.0, min_similarity=0.7)
    assert not outcome.success and outcome.pred_after == 0 and outcome.adversarial == "the doctor helped the lawyer"
    assert outcome.queries == 1 + 5 and not any("physician" in t for t in calls)


def test_a_row_the_model_already_gets_wrong_is_not_attacked():
    calls: list[str] = []
    outcome = attack_row("the doctor helped", 1, keyword_victim("doctor", calls), lambda w: ["physician"], same, 1.0, 0.7)
    assert not outcome.success and outcome.queries == 1 and outcome.pred_before == outcome.pred_after == 0


def test_the_word_budget_bounds_the_words_changed():
    """A victim that flips only when two words change: a one-word budget cannot break it."""

    def two_words(texts: list[str]) -> np.ndarray:
        return np.array([[0.2, 0.8] if "physician" in t and "attorney" in t else
                         [0.6, 0.4] if "physician" in t or "attorney" in t else [0.9, 0.1] for t in texts])

    candidates = {"doctor": ["physician"], "lawyer": ["attorney"]}.get
    text = "the doctor helped the lawyer"
    assert not attack_row(text, 0, two_words, lambda w: candidates(w, []), same, max_changed=0.2, min_similarity=0.7).success
    broken = attack_row(text, 0, two_words, lambda w: candidates(w, []), same, max_changed=0.4, min_similarity=0.7)
    assert broken.success and broken.changed == 2 and broken.adversarial == "the physician helped the attorney"


def test_embedding_neighbours_are_whole_words_close_to_the_word():
    model, tokenizer = reference_encoder()
    near = EmbeddingNeighbours.of_encoder(model, tokenizer, k=10, min_cosine=0.5)
    assert "physician" in near("doctor") and "attorney" in near("Lawyer")
    assert all(w.isalpha() and w not in STOPWORDS and w != "doctor" for w in near("doctor"))
    assert near("never") == [] and near("qwzx") == []
    assert len(EmbeddingNeighbours.of_encoder(model, tokenizer, k=3, min_cosine=-1.0, keep_role=False)("doctor")) == 3


def test_substitutes_keep_the_words_part_of_speech_and_inflection():
    """The swaps the attack's examples showed (painter -> paint, teacher -> teaching, pilot ->
    pilots) are embedding neighbours that change the word's class or number: kept without
    the role check, gone with it, while synonyms of the same class stay."""
    model, tokenizer = reference_encoder()
    every = EmbeddingNeighbours.of_encoder(model, tokenizer, k=50, min_cosine=0.5, keep_role=False)
    kept = EmbeddingNeighbours.of_encoder(model, tokenizer, k=50, min_cosine=0.5)
    for word, changed in (("painter", "paint"), ("teacher", "teaching"), ("pilot", "pilots")):
        assert changed in every(word) and changed not in kept(word), word
        assert set(kept(word)) < set(every(word)) and all(keeps_role(word, w) for w in kept(word))
    assert "physician" in kept("doctor") and "attorney" in kept("lawyer")
    assert keeps_role("saw", "watched") and not keeps_role("ran", "running") and not keeps_role("quickly", "quick")
    assert not keeps_role("alice", "bob")  # a name the lexicon does not know: its role cannot be checked
    # Number changes the MNLI attack made with every form the lexicon lists (it also lists
    # "day" as a plural of day): preferred forms only.
    for word, changed in (("day", "days"), ("radio", "radios"), ("identity", "identities"), ("gears", "gear"),
                          ("trouble", "troubles"), ("people", "peoples"), ("boats", "yacht")):
        assert not keeps_role(word, changed), (word, changed)
    assert keeps_role("computer", "laptop") and keeps_role("methods", "techniques") and keeps_role("fierce", "ferocious")


def test_sentence_similarity_ranks_a_paraphrase_above_an_unrelated_sentence():
    similarity = SentenceSimilarity(*reference_encoder())
    close, far = similarity("the doctor helped the lawyer", ["the physician helped the lawyer", "bananas are yellow"])
    assert close > 0.8 > far


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on the synthetic task, and its store and data."""
    store = Store(tmp_path_factory.mktemp("attack"))
    data, base = tiny_data_and_base(store)
    return store, data, stages.train(base, data, FAST, store)


def test_with_a_one_word_budget_the_search_breaks_every_row_an_exhaustive_search_breaks(trained):
    """The independent check: every replaceable word, every candidate above the similarity
    floor, one at a time; the greedy search must break exactly the rows this breaks."""
    store, data_ref, model_ref = trained
    model, tokenizer = load_model(store.path(model_ref))
    dev = stages.load_data(store, data_ref).dev.iloc[:40]
    near = EmbeddingNeighbours.of_encoder(*reference_encoder(), k=20, min_cosine=0.5)
    similarity = SentenceSimilarity(*reference_encoder())
    greedy, exhaustive = set(), set()
    for row in dev.itertuples():
        def victim(texts: list[str], premise: str = row.text_a) -> np.ndarray:
            frame = pd.DataFrame({"text_a": [premise] * len(texts), "text_b": texts})
            return probs_from_logits(predict_logits(model, tokenizer, frame, 32, 64, progress=False))

        if victim([row.text_b])[0].argmax() != row.label:
            continue
        words = Words.of(row.text_b)
        for i in (i for i in range(len(words)) if words.replaceable(i)):
            texts = [words.replace({i: c}) for c in near(words.word(i)) if c != words.word(i).lower()]
            texts = [t for t, s in zip(texts, similarity(row.text_b, texts)) if s >= 0.7]
            if texts and (victim(texts).argmax(axis=1) != row.label).any():
                exhaustive.add(row.Index)
        outcome = attack_row(row.text_b, row.label, victim, near, similarity, max_changed=0.01, min_similarity=0.7)
        assert outcome.changed <= 1
        if outcome.success:
            greedy.add(row.Index)
    assert exhaustive, "the check needs rows that one word can break"
    assert greedy == exhaustive, (greedy, exhaustive)


@pytest.mark.parametrize("bad", [{"examples": -1}, {"min_similarity": 1.5}, {"min_cosine": -2}, {"max_changed": 0},
                                 {"candidates": 0}])
def test_bad_attack_settings_are_refused(bad):
    with pytest.raises(ValidationError, match="attack"):
        RunConfig.model_validate({"attack": bad})


def test_an_attack_on_a_task_without_text_to_perturb_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "synthetic", TASKS["synthetic"].model_copy(update={"attacked": None}))
    cfg = tiny_run_config(attack=AttackConfig(examples=5), seeds=(7,))
    with pytest.raises(ValueError, match="no text to perturb"):
        pipeline.preflight(cfg, Store(tmp_path), ["cpu"])
    assert not any(tmp_path.iterdir())


def test_a_single_text_task_has_its_one_text_attacked(trained):
    """A task of one text per row (no text_b): the attack rewrites that text, and the
    victim is asked about one text, not a pair with an empty second half."""
    store, data_ref, model_ref = trained
    data = stages.load_data(store, data_ref)
    single = store.put_tables({"train": data.train.drop(columns="text_b"), "dev": data.dev.drop(columns="text_b")},
                              kind="data", meta={"task": "single", "labels": list(TASKS["synthetic"].labels)})
    spec = TASKS["synthetic"].model_copy(update={"name": "single", "single_text": True, "attacked": "text_a"})
    ref = stages.query_model("attack", model_ref, single, spec, AttackConfig(examples=4, candidates=3), FAST, store)
    rows = store.table(ref, "rows")
    assert len(rows) == 4 and set(rows["original"]) <= set(data.dev["text_a"])


def test_the_role_check_only_removes_candidates_so_it_can_only_lower_the_success_rate(trained):
    """benchmarks.attack_role: the same rows attacked with every neighbour and with the role
    check. The check removes candidates and adds none, so with a one-word budget (where the
    search is exhaustive, test above) every row it breaks the unchecked attack breaks too."""
    from rmc.benchmarks.attack_role import attack_both_ways, examples_page
    from rmc_core.finished import Listed

    store, data_ref, model_ref = trained
    listed = [Listed("tiny", "run", model_ref, model_ref, data_ref, tiny_run_config())]
    summaries, rows = attack_both_ways(listed, store, rows=30, max_changed=0.01)
    assert list(summaries["keep_role"]) == [False, True]
    every, kept = (rows[rows["keep_role"] == k].set_index("row") for k in (False, True))
    assert set(kept.index[kept["success"]]) <= set(every.index[every["success"]])
    assert (kept["pred_before"] == every["pred_before"]).all()
    rates = summaries.set_index("keep_role")["attack_success_rate"]
    assert rates[True] <= rates[False]
    page = examples_page(rows, ("entailment", "neutral", "contradiction"), most=5)
    assert page.count("\n") == 2 + min(5, int((kept["success"] & (kept["pred_before"] == kept["label"])).sum()))
