"""Your model, your data: a task declared from files (one text per row, four labels, a
two-label challenge set mapped from them), a RoBERTa classifier already fine-tuned as the
teacher (its training skipped), RMC and Vanilla students through the Prefect flow, export
with a model card, and transformers' pipeline() printing the task's label names. Then the
refusals, each before the Prefect server starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rmc.flows import cli
from tests.conftest import FAST, TINY_SPARSITIES

LABELS = ("anger", "joy", "sadness", "surprise")
WORDS = {"anger": "furious rage", "joy": "happy delight", "sadness": "gloomy tears", "surprise": "sudden wow"}
# The checkpoint's own label names, in its own order: the run maps them onto the task's.
CHECKPOINT = ("SURPRISE", "SADNESS", "JOY", "ANGER")


def rows(n: int, seed: int) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    fillers = ["the day", "my friend said", "at the market", "this morning", "in the film", "on the train"]
    labels = [LABELS[i % 4] for i in range(n)]
    texts = [f"{fillers[rng.integers(len(fillers))]} {WORDS[label]} {fillers[rng.integers(len(fillers))]}" for label in labels]
    return pd.DataFrame({"sentence": texts, "emotion": labels, "hard": [int(i % 5 == 0) for i in range(n)]})


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """A task file and its data, as a user would lay them out: train CSV, dev CSV with a
    hardness column, and a two-label challenge set (emotion -> positive/negative)."""
    root = tmp_path_factory.mktemp("own-data")
    rows(160, 0).drop(columns="hard").to_csv(root / "train.csv", index=False)
    rows(60, 1).to_csv(root / "dev.csv", index=False)
    challenge = rows(40, 2).assign(emotion=lambda f: f["emotion"].map(
        {"anger": "negative", "sadness": "negative", "joy": "positive", "surprise": "positive"}))
    challenge.drop(columns="hard").to_json(root / "challenge.jsonl", orient="records", lines=True)
    (root / "task.json").write_text(json.dumps({
        "name": "emotions", "text": "sentence", "label": "emotion", "hardness": "hard",
        "train": {"path": "train.csv"}, "dev": {"path": "dev.csv"},
        "ood": {"polarity": {"path": "challenge.jsonl", "labels": ["negative", "positive"],
                             "label_map": {"anger": "negative", "sadness": "negative", "joy": "positive",
                                           "surprise": "positive"}}}}))
    return root


@pytest.fixture(scope="module")
def fine_tuned_roberta(tmp_path_factory, own_data) -> Path:
    """A tiny RoBERTa sequence classifier saved as a user's fine-tuned checkpoint (random
    weights: the run must use it as it is, not train it), with its own label names."""
    texts = pd.read_csv(own_data / "train.csv")["sentence"].tolist()
    return roberta_folder(tmp_path_factory.mktemp("my-roberta"), texts, dict(enumerate(CHECKPOINT)))


def run_config(own_data: Path, teacher: Path, **teacher_fields):
    from rmc_core.config import InferenceCostConfig, ModelSpec, RunConfig, StudentConfig, SubnetworkConfig

    train = FAST.model_copy(update={"max_length": 24})
    return RunConfig(
        task=str(own_data / "task.json"),
        teacher=ModelSpec(source=str(teacher), fine_tuned=True,
                          label_map={n: n.lower() for n in CHECKPOINT}, **teacher_fields),
        teacher_train=train, subnetworks=SubnetworkConfig(sparsities=TINY_SPARSITIES, train=train),
        student=StudentConfig(train=train), methods=("vanilla", "rmc"), inference=InferenceCostConfig(rows=8, repeats=2))


def test_own_csv_task_and_fine_tuned_roberta_teacher_end_to_end(prefect_api, own_data, fine_tuned_roberta, tmp_path, capsys):
    from transformers import pipeline as hf_pipeline

    from rmc.flows.api import run

    result = run(run_config(own_data, fine_tuned_roberta), store=tmp_path / "store")
    assert "import-teacher" in result.computed and not any(s.startswith("train-teacher") for s in result.computed)
    table = result.tables["results"].set_index("model")
    assert set(table.index) == {"teacher", "imp40-vanilla", "imp40-rmc"}
    assert {"acc_dev", "acc_polarity", "f_bias", "dev_easy", "dev_hard"} <= set(table.columns)
    assert table["acc_polarity"].between(0, 1).all()

    out = result.export("imp40-rmc", tmp_path / "export")
    card = (out / "README.md").read_text()
    for needed in ("emotions", "imp40-rmc", "pruned", "rmc", "polarity", "achieved sparsity", "teacher", "rmc version",
                   "label loyalty", "```json"):
        assert needed in card, needed
    classify = hf_pipeline("text-classification", model=str(out))
    assert classify("happy delight at the market")[0]["label"] in LABELS
    assert oct((out / "model.safetensors").stat().st_mode & 0o777) == oct(0o644)

    again = run(run_config(own_data, fine_tuned_roberta), store=tmp_path / "store")
    assert again.computed == [], "a rerun recomputes nothing"
    edited = pd.read_csv(own_data / "dev.csv")
    edited.loc[0, "sentence"] = "an edited row"
    backup = (own_data / "dev.csv").read_bytes()
    edited.to_csv(own_data / "dev.csv", index=False)
    try:
        changed = run(run_config(own_data, fine_tuned_roberta), store=tmp_path / "store")
    finally:
        (own_data / "dev.csv").write_bytes(backup)
    assert "prepare-data" in changed.computed, "an edited data file at the same path is read again"
    assert "import-teacher" not in changed.computed


def refusal(capsys, tmp_path: Path, *settings: str) -> str:
    code = cli.main(["run", *[a for s in settings for a in ("--set", s)], "--store", str(tmp_path / "s"),
                     "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not (tmp_path / "s" / "objects").exists(), "refused before any compute"
    return err


def declared(own_data: Path, tmp_path: Path, **changes) -> str:
    task = json.loads((own_data / "task.json").read_text())
    task.update(changes)
    for name in ("train.csv", "dev.csv", "challenge.jsonl"):
        if not (tmp_path / name).exists():
            shutil.copy(own_data / name, tmp_path / name)
    (tmp_path / "task.json").write_text(json.dumps(task))
    return f"task={tmp_path / 'task.json'}"


def test_a_missing_column_is_refused_naming_file_and_column(own_data, tmp_path, capsys):
    err = refusal(capsys, tmp_path, declared(own_data, tmp_path, text="text"))
    assert "no column 'text'" in err and "train.csv" in err and "'sentence'" in err


def test_an_undeclared_label_is_refused(own_data, tmp_path, capsys):
    err = refusal(capsys, tmp_path, declared(own_data, tmp_path, labels=["anger", "joy", "sadness"]))
    assert "label values ['surprise'] are not among the task's labels" in err


def test_an_ood_label_without_a_mapping_is_refused(own_data, tmp_path, capsys):
    task = json.loads((own_data / "task.json").read_text())
    task["ood"]["polarity"]["label_map"].pop("joy")
    err = refusal(capsys, tmp_path, declared(own_data, tmp_path, ood=task["ood"]))
    assert "OOD set polarity" in err and "unmapped: ['joy']" in err


def test_a_teacher_whose_labels_do_not_match_is_refused(own_data, fine_tuned_roberta, tmp_path, capsys):
    err = refusal(capsys, tmp_path, f"task={own_data / 'task.json'}",
                  f'teacher={{"source": "{fine_tuned_roberta}", "fine_tuned": true}}')
    assert f"teacher '{fine_tuned_roberta}' predicts labels {list(CHECKPOINT)}" in err and "teacher.label_map" in err


def test_a_compression_not_built_for_the_architecture_is_refused_by_name(tmp_path, capsys):
    """Structured pruning rebuilds BERT and RoBERTa layers; a DistilBERT teacher is refused
    before anything trains, and so is an architecture rmc does not run at all."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

    from rmc_core.models import train_tokenizer

    tokenizer = train_tokenizer(["a small text", "another one"], 200)
    DistilBertForSequenceClassification(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2,
                                                         hidden_dim=64, num_labels=3)).save_pretrained(tmp_path / "distil")
    tokenizer.save_pretrained(tmp_path / "distil")
    err = refusal(capsys, tmp_path, f"teacher.source={tmp_path / 'distil'}", 'student.compression={"kind": "structured"}')
    assert "'structured' is built for bert, roberta; the teacher" in err and "'distilbert' model" in err
    GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2,
                                             num_labels=3)).save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    err = refusal(capsys, tmp_path, f"teacher.source={tmp_path / 'gpt2'}")
    assert "is a 'gpt2' model; rmc runs bert, roberta, distilbert, deberta-v2" in err


def test_settings_a_declared_task_does_not_read_are_refused(own_data, tmp_path, capsys):
    err = refusal(capsys, tmp_path, f"task={own_data / 'task.json'}", "data.data_root=/elsewhere")
    assert "does nothing for a declared task" in err
    err = refusal(capsys, tmp_path, "data.data_root=/elsewhere")
    assert "does nothing for the synthetic task" in err


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "deberta-v2"])
def test_imp_int8_and_distillation_run_on_each_family(family):
    """Tiny random configs of each family: IMP finds every encoder linear map, a truncated
    (distilled) student keeps the first layer, int8 rounds it, and the size is counted
    without building the model (DistilBERT once crashed that count)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rmc_core.compression.imp import prunable_linears
    from rmc_core.models import parameter_count, truncate_layers
    from rmc_core.quantization import int8_modules, to_int8

    sizes = {"bert": {}, "roberta": {}, "deberta-v2": {}, "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}}
    common = {} if family == "distilbert" else {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                                  "intermediate_size": 64}
    config = AutoConfig.for_model(family, vocab_size=100, max_position_embeddings=64, num_labels=3, **common, **sizes[family])
    model = AutoModelForSequenceClassification.from_config(config)
    counted, built = parameter_count(config), sum(p.numel() for p in model.base_model.parameters())
    assert 0 <= counted - built <= 32 * 32 + 32, "the same encoder, up to a pooler the classifier may leave out"
    linears = prunable_linears(model)
    assert len(linears) == 2 * 6, sorted(linears)
    small = truncate_layers(model, 1)
    ids = torch.tensor([[1, 5, 7, 2]])
    assert small(input_ids=ids).logits.shape == (1, 3)
    quantized = to_int8(small)
    assert int8_modules(quantized) and quantized(input_ids=ids).logits.shape == (1, 3)


def test_every_compression_trains_a_roberta_student(tmp_path):
    """IMP, structured pruning, mask training, module replacing and SPD train and predict
    a tiny RoBERTa (its classification head has two linear maps, its position ids start
    after the padding id, its tokenizer has no token types)."""
    from rmc_core import stages
    from rmc_core.compression import COMPRESSIONS
    from rmc_core.compression.imp_config import ImpConfig
    from rmc_core.compression.masked_config import MaskedConfig
    from rmc_core.compression.spd_config import SpdConfig
    from rmc_core.compression.structured_config import StructuredConfig
    from rmc_core.compression.theseus_config import TheseusConfig
    from rmc_core.config import DataConfig, ModelSpec
    from rmc_core.store import Store

    store = Store(tmp_path / "store")
    data = stages.prepare_data("synthetic", DataConfig(synthetic_train=120, synthetic_dev=30, synthetic_ood=30), store)
    train_rows = store.table(data, "train")
    folder = roberta_folder(tmp_path / "roberta", train_rows["text_a"].tolist() + train_rows["text_b"].tolist(),
                            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    base = stages.prepare_base(ModelSpec(source=str(folder)), data, 0, store)
    train = FAST.model_copy(update={"max_length": 32, "epochs": 1.0})
    kinds = (ImpConfig(), StructuredConfig(heads=0.5, neurons=0.25), MaskedConfig(), TheseusConfig(successors=1), SpdConfig())
    assert sorted(c.kind for c in kinds) == sorted(k for k, spec in COMPRESSIONS.items() if "roberta" in spec.architectures
                                                   and k != "distilled")
    for compression in kinds:
        student = stages.train(base, data, train, store, compression=compression)
        predictions = stages.predict(student, data, ("dev",), train, store)
        assert len(store.table(predictions, "dev")) == 30, compression.kind
    from rmc_core.models import load_model

    small, _ = load_model(store.path(stages.train(base, data, train, store, compression=kinds[1])))
    assert type(small).__name__ == "PrunedRobertaForSequenceClassification" and small.config.heads_per_layer == [1, 1]


def test_a_rebuilt_roberta_computes_what_the_gated_one_did(tmp_path):
    """Closing a head and some FFN neurons by their gates, then rebuilding the RoBERTa
    without them, leaves the logits as they were."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmc_core.compression.structured import attach_gates, compact

    folder = roberta_folder(tmp_path / "roberta", ["the cat sat on the mat", "a dog ran in the park"] * 5, {0: "a", 1: "b"})
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(["the cat ran", "a dog sat on the mat"], padding=True, return_tensors="pt")
    gates = attach_gates(model)
    with torch.no_grad():
        gates.heads[0][0] = 0
        gates.neurons[1][::3] = 0
        expected = model(**inputs).logits
    gates.remove()
    small = compact(model, gates)
    assert small.config.heads_per_layer == [1, 2] and small.config.intermediate_per_layer == [64, 42]
    with torch.no_grad():
        torch.testing.assert_close(small(**inputs).logits, expected, atol=1e-5, rtol=0)


def roberta_folder(folder: Path, texts: list[str], id2label: dict[int, str]) -> Path:
    """A tiny random RoBERTa classifier with a byte-level BPE vocabulary of `texts`, saved in `folder`."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                     unk_token="<unk>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=70, pad_token_id=tokenizer.pad_token_id,
                           num_labels=len(id2label), id2label=id2label, label2id={n: i for i, n in id2label.items()})
    RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_hub_model_that_cannot_be_fetched_is_refused_in_one_sentence(tmp_path, capsys):
    """Offline, transformers retried for about half a minute and ended in a message about
    its docs; the refusal names the model and what to do, before any compute."""
    import time

    start = time.perf_counter()
    err = refusal(capsys, tmp_path, "teacher.source=someone-who-does-not-exist/no-such-model")
    assert "model 'someone-who-does-not-exist/no-such-model' is not a local folder and cannot be fetched from the hub" in err
    assert time.perf_counter() - start < 25


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "disk", "disk-dict", "parallel_lines"])
def test_every_file_format_reads_the_same_rows(tmp_path, fmt):
    """The same rows as CSV, TSV, JSON, JSONL, parquet, a save_to_disk folder (a Dataset,
    or one split of a DatasetDict) and parallel line files, word-tokenized the Treebank way
    and joined back (`detokenize`), make the same canonical frames."""
    import datasets

    from rmc_core.config import DataConfig
    from rmc_core.data.registry import load_task_data
    from rmc_core.data.task_file import FileTask, resolve

    frame = rows(40, 3)
    path = tmp_path / {"disk": "saved", "disk-dict": "saved", "parallel_lines": "lines"}.get(fmt, f"rows.{fmt}")
    split, declared = None, {}
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "json":
        frame.to_json(path, orient="records")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "disk":
        datasets.Dataset.from_pandas(frame).save_to_disk(str(path))
    elif fmt == "disk-dict":
        datasets.DatasetDict({"train": datasets.Dataset.from_pandas(frame)}).save_to_disk(str(path))
        split = "train"
    else:  # robust-nli's layout: a file per column, its texts tokenized ("do n't", " .")
        frame = frame.assign(sentence=frame["sentence"] + ", don't you think?")
        path.mkdir()
        tokenized = frame["sentence"].str.replace(",", " ,").str.replace("n't", " n't").str.replace("?", " ?")
        for name, values in (("s1", tokenized), ("labels", frame["emotion"]), ("hard", frame["hard"].astype(str))):
            (path / name).write_text("\n".join(values) + "\n")
        declared = {"format": fmt, "detokenize": "treebank",
                    "columns": {"text_a": "s1", "label": "labels", "hardness": "hard"}}
    file = {"path": str(path), "split": split, **declared}
    task = FileTask.model_validate({"name": "rows", "text": "sentence", "label": "emotion", "hardness": "hard",
                                    "train": file, "dev": file})
    data = load_task_data(resolve(task), DataConfig())
    assert data.train["text_a"].tolist() == frame["sentence"].tolist() and "text_b" not in data.train.columns
    assert [LABELS[i] for i in data.dev["label"]] == frame["emotion"].tolist()
    assert data.dev["hard"].tolist() == frame["hard"].astype(bool).tolist()


def test_the_model_card_calls_a_one_seed_difference_no_finding():
    from rmc_core.model_card import _interval

    row = {"difference": 0.1, "low": 0.02, "high": 0.18, "resolved": True}
    assert _interval(pd.Series({**row, "n_seeds": 1})).endswith("excludes 0 over rows only (one seed: seed-to-seed "
                                                                 "variation not measured)")
    assert _interval(pd.Series({**row, "n_seeds": 3})) == "+0.100 [+0.020, +0.180], resolved"
    assert _interval(pd.Series({**row, "resolved": False, "n_seeds": 3})).endswith("unresolved: the interval contains 0")
