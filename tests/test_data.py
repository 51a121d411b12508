"""Loaders: every shared file with its README row counts, label mapping by name, formats,
and the synthetic task."""

from __future__ import annotations

import collections
import json

import numpy as np
import pandas as pd
import pytest

from rmc_core.config import DataConfig
from rmc_core.data.registry import TASKS, load_task_data
from rmc_core.data.sources import DataError
from rmc_core.data.registry import load_ood_train, ood_names, stratified_sample

QQP_RAW = {"0": "not_duplicate", "1": "duplicate"}
from rmc_core.data.sources import LocalSource, load_source
from rmc_core.data.synthetic import PEOPLE, VERBS, generate_ood, generate_split

NLI = ("entailment", "neutral", "contradiction")


def counts(frame: pd.DataFrame, names: tuple[str, ...]) -> dict[str, int]:
    return {names[k]: v for k, v in collections.Counter(frame["label"]).items()}


def test_mnli_local_splits_match_readme(data_root):
    d = load_task_data("mnli", DataConfig(data_root=data_root))
    assert counts(d.train, NLI) == {"entailment": 3061, "neutral": 2980, "contradiction": 2958}
    assert counts(d.dev, NLI) == {"entailment": 3479, "contradiction": 3213, "neutral": 3123}
    assert int(d.dev["hard"].sum()) == 4573
    hans = d.ood["hans"]
    assert counts(hans, ("entailment", "non-entailment")) == {"entailment": 15000, "non-entailment": 15000}
    assert hans.groupby(["heuristic", "label"]).size().eq(5000).all()
    assert hans.loc[0, "text_a"] == "The president advised the doctor ."
    assert hans.loc[0, "subcase"] == "ln_subject/object_swap"
    # The hypothesis-only bias's challenge sets, labels mapped by name (README counts).
    assert counts(d.ood["snli-hard"], NLI) == {"contradiction": 1135, "neutral": 1068, "entailment": 1058}
    assert counts(d.ood["mnli-mm-hard"], NLI) == {"entailment": 1710, "contradiction": 1420, "neutral": 1400}
    assert d.ood["mnli-mm-hard"].loc[1, "text_b"] == "I don't yet know the reason why I have lived on earth."


def test_mnli_hard_rows_are_the_robustnli_hard_subset_and_detokenizing_restores_their_text(data_root):
    """The hardness annotation aligns with the independently distributed hard subset, and
    that subset's word-tokenized texts, detokenized as mnli-mm-hard's are, reach the MiniLM
    teacher as the raw dev-matched texts do: the matched half is the check the mismatched
    half (no raw copy here) cannot have."""
    from transformers import AutoTokenizer

    from rmc_core.models import packaged_minilm

    d = load_task_data("mnli", DataConfig(data_root=data_root))
    ours = d.dev[d.dev["hard"]].reset_index(drop=True)
    columns = {"text_a": "s1.test", "text_b": "s2.test", "label": "labels.test"}
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm())
    raw = ours["text_a"].tolist() + ours["text_b"].tolist()
    same = {}
    for style in (None, "treebank"):
        hard = load_source(LocalSource(path="mnli/hard_robustnli/matched", format="parallel_lines", columns=columns,
                                       detokenize=style), NLI, data_root, "mnli-hard")
        assert len(hard) == 4573 and (ours["label"] == hard["label"]).all()
        texts = hard["text_a"].tolist() + hard["text_b"].tolist()
        same[style] = np.mean([a == b for a, b in zip(tokenizer(texts)["input_ids"], tokenizer(raw)["input_ids"], strict=True)])
    # Measured: 0.9005 of the 9,146 texts tokenize as the raw ones as released, 0.9998 detokenized
    # (the 2 left: "can not" for "cannot").
    assert same[None] < 0.91 and same["treebank"] > 0.999


def test_qqp_and_paws_match_readme(data_root):
    d = load_task_data("qqp", DataConfig(data_root=data_root))
    names = TASKS["qqp"].labels
    assert counts(d.train, names) == {"not_duplicate": 5747, "duplicate": 3252}
    assert counts(d.dev, names) == {"not_duplicate": 623, "duplicate": 377}
    assert counts(d.ood["paws-qqp"], names) == {"not_duplicate": 486, "duplicate": 191}
    assert counts(d.ood["paws-wiki"], names) == {"not_duplicate": 4464, "duplicate": 3536}
    assert d.ood["paws-qqp"].loc[0, "text_a"].startswith("What were the major effects of the cambodia")
    assert not d.ood["paws-wiki"]["text_b"].str.endswith("\r").any()


def test_fever_symmetric_sets_match_readme(data_root):
    labels = TASKS["fever"].ood_labels
    for name, n, sup in (("fever-symmetric-v1", 717, 379), ("fever-symmetric-v2", 712, 356)):
        src = TASKS["fever"].sources["local"].ood[name]
        frame = load_source(src, labels, data_root, name)
        assert len(frame) == n and counts(frame, labels)["SUPPORTS"] == sup


def test_fever_without_train_files_says_which_file_is_missing(data_root):
    with pytest.raises(FileNotFoundError, match="fever.train.jsonl"):
        load_task_data("fever", DataConfig(data_root=data_root))


def test_hans_arrow_copy_in_zip_agrees_with_main_copy(data_root):
    """The cross-check copy (Arrow streams in a zip, 0 = non-entailment) loads by name
    mapping and holds the same 15,000 validation triples as the main file."""
    hans_labels = ("entailment", "non-entailment")
    main = load_task_data("mnli", DataConfig(data_root=data_root)).ood["hans"]
    for split, n in (("train", 30000), ("validation", 15000), ("test", 15000)):
        frame = load_source(
            LocalSource(path="hans/RD-UU-MPLT/hans.zip", format="arrow_stream",
                        member=f"hans_datasets/{split}/data-00000-of-00001.arrow",
                        columns={"text_a": "sentence1", "text_b": "sentence2", "label": "labels", "heuristic": "heuristic"},
                        labels={"0": "non-entailment", "1": "entailment"}),
            hans_labels, data_root, f"hans-{split}",
        )
        assert len(frame) == n
    key = lambda f: set(zip(f.text_a.str.strip(), f.text_b.str.strip(), f.label))
    assert key(frame) <= key(main)


def test_the_mnli_upper_bound_reads_hans_train_stratified(data_root):
    """HANS's training set (30,000 rows, half entailed) is MNLI's OOD training data for the
    upper bound; max_ood_train keeps the label and heuristic proportions."""
    full = load_ood_train("mnli", DataConfig(data_root=data_root))
    assert len(full) == 30000 and counts(full, ("entailment", "non-entailment")) == {"entailment": 15000,
                                                                                    "non-entailment": 15000}
    part = load_ood_train("mnli", DataConfig(data_root=data_root, max_ood_train=3000))
    assert len(part) == 3000 and part["heuristic"].value_counts().nunique() == 1
    non_entailed = part[part["label"] == 1]
    assert (non_entailed[["allows_entailment", "allows_neutral", "allows_contradiction"]].to_numpy() == [0, 1, 1]).all()


def test_labels_are_mapped_by_name_not_position(tmp_path):
    rows = [{"p": "a", "h": "b", "y": "contradiction"}, {"p": "c", "h": "d", "y": "entailment"}]
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    src = LocalSource(path="x.jsonl", format="jsonl", columns={"text_a": "p", "text_b": "h", "label": "y"})
    assert load_source(src, NLI, tmp_path, "x")["label"].tolist() == [2, 0]
    reordered = ("contradiction", "entailment", "neutral")
    assert load_source(src, reordered, tmp_path, "x")["label"].tolist() == [0, 1]


def test_unknown_label_names_are_an_error(tmp_path):
    (tmp_path / "x.csv").write_text("p,h,y\na,b,entailed\n")
    src = LocalSource(path="x.csv", format="csv", columns={"text_a": "p", "text_b": "h", "label": "y"})
    with pytest.raises(DataError, match="unknown label values \\['entailed'\\]"):
        load_source(src, NLI, tmp_path, "x")


def test_missing_column_is_an_error(tmp_path):
    (tmp_path / "x.csv").write_text("p,h,y\na,b,entailment\n")
    src = LocalSource(path="x.csv", format="csv", columns={"text_a": "premise", "text_b": "h", "label": "y"})
    with pytest.raises(DataError, match="missing columns \\['premise'\\]"):
        load_source(src, NLI, tmp_path, "x")


def test_missing_file_is_an_error(tmp_path):
    src = LocalSource(path="nope.tsv", format="tsv", columns={"text_a": "a", "text_b": "b", "label": "c"})
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        load_source(src, NLI, tmp_path, "x")


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "x.tsv").write_text("p\th\ty\n")
    src = LocalSource(path="x.tsv", format="tsv", columns={"text_a": "p", "text_b": "h", "label": "y"})
    with pytest.raises(DataError, match="empty"):
        load_source(src, NLI, tmp_path, "x")


@pytest.mark.parametrize("fmt", ["parquet", "tsv", "csv", "jsonl", "json_dict"])
def test_each_local_format_with_raw_label_mapping(tmp_path, fmt):
    frame = pd.DataFrame({"q1": ["how?", "why?"], "q2": ["how so?", "what?"], "is_dup": ["1", "0"]})
    path = tmp_path / f"x.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
    elif fmt in ("tsv", "csv"):
        frame.to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        path.write_text(json.dumps({str(i): r for i, r in enumerate(frame.to_dict("records"))}))
    src = LocalSource(path=path.name, format=fmt, columns={"text_a": "q1", "text_b": "q2", "label": "is_dup"}, labels=QQP_RAW)
    out = load_source(src, TASKS["qqp"].labels, tmp_path, fmt)
    assert out["label"].tolist() == [1, 0] and out["text_b"].tolist() == ["how so?", "what?"]


def test_hub_source_code_path_on_a_local_dataset(tmp_path, monkeypatch):
    """The hub reader turns ClassLabel ids into names; checked on a dataset saved locally."""
    import datasets

    from rmc_core.data.sources import HubSource

    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})
    ds = datasets.Dataset.from_dict({"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [2, 1]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, split=None: ds)
    src = HubSource(path="nyu-mll/glue", name="mnli", split="train", columns={"text_a": "premise", "text_b": "hypothesis", "label": "label"})
    out = load_source(src, ("contradiction", "entailment", "neutral"), tmp_path, "hub")
    assert out["label"].tolist() == [0, 2]


def _overlap(premise: str, hypothesis: str) -> float:
    return len(set(hypothesis.split()) & set(premise.split())) / len(hypothesis.split())


def _shortcut(frame: pd.DataFrame) -> np.ndarray:
    """The planted shortcut: negation means contradiction, else copied words mean entailment."""
    negated = frame["text_b"].str.contains(r"\bnever\b|\bno\b")
    high = np.array([_overlap(p, h) > 0.5 for p, h in zip(frame.text_a, frame.text_b)])
    return np.where(negated, 2, np.where(high, 0, 1))


def _rule(frame: pd.DataFrame) -> np.ndarray:
    """The true rule: entailment iff the hypothesis restates agent, verb and patient in the
    premise's order, each word itself or its synonym."""
    canon = {w: pair[0] for pair in (*PEOPLE, *VERBS) for w in pair}
    labels = []
    for p, h in zip(frame.text_a, frame.text_b):
        words = [canon[w] for w in h.split() if w in canon]
        if "never" in h.split() or h.startswith("no "):
            labels.append(2)
        else:
            labels.append(0 if " ".join(words) == " ".join(canon[w] for w in p.split()[:5] if w in canon) else 1)
    return np.array(labels)


@pytest.mark.parametrize("bias", [0.7, 0.9])
def test_synthetic_shortcut_holds_exactly_on_easy_rows_and_the_rule_everywhere(bias):
    frame = generate_split(3000, 0, "train", bias)
    pd.testing.assert_frame_equal(frame, generate_split(3000, 0, "train", bias))
    assert not frame.equals(generate_split(3000, 1, "train", bias))
    shortcut_right = _shortcut(frame) == frame["label"].to_numpy()
    assert (shortcut_right == ~frame["hard"]).all()
    assert (_rule(frame) == frame["label"]).all()
    contradiction = frame["label"] == 2
    assert not frame.loc[contradiction, "hard"].any()
    assert frame.loc[~contradiction, "hard"].mean() == pytest.approx(1 - bias, abs=0.03)


def test_synthetic_ood_breaks_the_shortcut_and_keeps_the_rule():
    ood = generate_ood(400, 0)
    high = pd.Series([_overlap(p, h) > 0.5 for p, h in zip(ood.text_a, ood.text_b)])
    assert (high == (ood["label"] == 1)).all()
    assert ((_rule(ood) != 0) == (ood["label"] == 1)).all()
    assert set(ood["label"]) == {0, 1}


@pytest.mark.parametrize("order", [0.0, 0.5, 1.0])
def test_rule_difficulty_sets_the_share_of_role_swaps(order):
    frame = generate_split(3000, 0, "train", 0.7, order)
    hard_neutral = frame[frame["hard"] & (frame["label"] == 1)]
    assert set(hard_neutral["heuristic"]) <= {"role_swap", "substitution"}
    assert (hard_neutral["heuristic"] == "role_swap").mean() == pytest.approx(order, abs=0.06)
    assert (_rule(frame) == frame["label"]).all()


def test_stratified_sample_keeps_every_heuristic_and_label(data_root):
    hans = load_task_data("mnli", DataConfig(data_root=data_root)).ood["hans"]
    small = stratified_sample(hans, 6000, seed=0)
    assert len(small) == 6000
    assert small.groupby(["heuristic", "label"]).size().eq(1000).all()
    assert small["subcase"].nunique() == 30


def test_ood_names_known_without_reading_files():
    assert ood_names("mnli", "local") == ("hans", "snli-hard", "mnli-mm-hard")
    assert ood_names("mnli", "hub") == ("hans",)
    assert ood_names("fever", "local") == ("fever-symmetric-v1", "fever-symmetric-v2")
    with pytest.raises(ValueError, match="no 'hub' source"):
        ood_names("fever", "hub")


def test_hub_mnli_dev_gets_the_hardness_split_by_index(data_root, monkeypatch):
    """The paper profile reads MNLI from the hub; its dev set must carry the same easy/hard
    annotation as the local one (Table 6 and the split agreement depend on it). The hub
    read is replaced by the local dev rows in GLUE's index order."""
    import datasets

    local = load_task_data("mnli", DataConfig(data_root=data_root)).dev
    names = TASKS["mnli"].labels
    ds = datasets.Dataset.from_dict({"premise": local["text_a"].tolist(), "hypothesis": local["text_b"].tolist(),
                                     "label": local["label"].tolist()},
                                    features=datasets.Features({"premise": datasets.Value("string"),
                                                                "hypothesis": datasets.Value("string"),
                                                                "label": datasets.ClassLabel(names=list(names))}))
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, split=None: ds)
    dev = load_source(TASKS["mnli"].sources["hub"].dev, names, data_root, "mnli/dev")
    assert int(dev["hard"].sum()) == 4573 and len(dev) == 9815
    assert (dev["hard"].to_numpy() == local["hard"].to_numpy()).all()


def test_hub_qqp_pools_local_paws_qqp_with_hub_paws_wiki(tmp_path):
    from rmc_core.data.registry import check_sources

    assert ood_names("qqp", "hub") == ("paws-qqp", "paws-wiki")
    with pytest.raises(FileNotFoundError, match="paws/paws_qqp/dev_and_test.tsv"):
        check_sources("qqp", DataConfig(source="hub", data_root=tmp_path))
    with pytest.raises(FileNotFoundError, match="hardness_annotations"):
        check_sources("mnli", DataConfig(source="hub", data_root=tmp_path))
