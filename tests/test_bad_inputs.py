"""Every input that can be known to be bad is refused before any data is read or model
trained, with one message that says what to fix, and the exit code of its class: 2 for a
bad configuration, 1 for bad data or a failure at run time."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from rmc.flows import cli
from rmc_core import pipeline, stages
from rmc_core.training import loop as training
from rmc_core.config import DataConfig
from rmc_core.data.sources import DataError, LocalSource, load_source
from rmc_core.models import build_base
from rmc_core.store import Store
from tests.conftest import FAST, TINY, tiny_run_config


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(training, "fine_tune", refuse)
    monkeypatch.setattr(stages, "fine_tune", refuse)


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(tiny_run_config().model_dump_json())
    return path


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


CASES = {
    "distilled student deeper than the teacher": (["--set", "student.compression.kind=distilled", "--set", "student.compression.num_layers=5"],
                                                  "the teacher has only 2 encoder layers"),
    "teacher num_layers beyond its encoder": (["--set", "teacher.num_layers=9"], "has 2 encoder layers; num_layers=9"),
    "teacher max_length beyond positions": (["--set", "teacher_train.max_length=512"],
                                            "teacher_train.max_length=512 exceeds the model's 128 positions"),
    "student max_length beyond positions": (["--set", "student.train.max_length=129"], "student.train.max_length=129"),
    "cuda device on a CPU machine": (["--device", "cuda:0"], "device 'cuda:0' is not present"),
    "misspelled device": (["--device", "gpu0"], "device 'gpu0' is not a device name"),
    "infinite epochs": (["--set", "teacher_train.epochs=Infinity"], "finite number"),
    "infinite lr": (["--set", "student.train.lr=Infinity"], "finite number"),
    "NaN lr": (["--set", "subnetworks.train.lr=NaN"], "finite number"),
    "boolean batch size": (["--set", "teacher_train.batch_size=true"], "valid integer"),
    "string epochs": (["--set", 'teacher_train.epochs="2"'], "valid number"),
    "fractional seed": (["--set", "teacher_train.seed=1.5"], "valid integer"),
    "negative seed": (["--set", "seeds=[-1]"], "greater than or equal to 0"),
    "unknown field": (["--set", "teacher_train.lrr=0.1"], "lrr"),
    "unknown method": (["--set", 'methods=["rmcc"]'], "rmcc"),
    "override without a value": (["--set", "teacher_train.epochs"], "is not of the form key.path=value"),
    "missing local teacher, relative": (["--set", "teacher.source=./nowhere"], "model directory './nowhere' does not exist"),
    "missing local teacher, absolute": (["--set", "teacher.source=/no/such/model"], "model directory '/no/such/model'"),
    "missing data root": (["--set", "task=mnli", "--set", "data.data_root=/no/such/data"], "data root /no/such/data"),
    "hub source for a local-only task": (["--set", "task=fever", "--set", "data.source=hub"], "no 'hub' source"),
}


@pytest.mark.parametrize("args, message", CASES.values(), ids=CASES.keys())
def test_bad_configuration_exits_2_before_anything_runs(args, message, tiny_config, tmp_path, capsys, no_training):
    store = tmp_path / "store"
    code = cli.main(["run", "--config", str(tiny_config), "--store", str(store), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (store / "objects").exists()


def test_files_that_cannot_hold_a_run_are_refused(tiny_config, tmp_path, capsys, no_training):
    a_file = write(tmp_path / "a-file", "")
    for flag in ("--out", "--store"):
        paths = {"--out": tmp_path / "out", "--store": tmp_path / "store", flag: a_file / "below"}
        code = cli.main(["run", "--config", str(tiny_config), "--out", str(paths["--out"]), "--store", str(paths["--store"])])
        err = capsys.readouterr().err
        assert code == 2 and f"{a_file / 'below'} is not a writable folder" in err


@pytest.mark.parametrize("content, message", [(None, "does not exist"), ("{not json", "is not valid JSON"),
                                              ("[1, 2]", "must hold a JSON object")])
def test_bad_config_file_is_named(content, message, tmp_path, capsys, no_training):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    assert cli.main(["run", "--config", str(path), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 2
    assert f"config file {path} {message}" in capsys.readouterr().err


def test_bad_concurrency_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--concurrency", "-1"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_debug_prints_the_traceback(tiny_config, tmp_path, capsys, no_training):
    args = ["run", "--config", str(tiny_config), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    assert cli.main([*args, "--device", "gpu0", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_data_files_are_listed_before_reading(tmp_path, no_training):
    write(tmp_path / "mnli" / "train_subset_powerfulpromptft" / "train.json", "{}")
    cfg = tiny_run_config(task="mnli", data=DataConfig(data_root=tmp_path))
    with pytest.raises(FileNotFoundError, match="data files missing under .*hans-data.txt"):
        pipeline.run(cfg, Store(tmp_path / "store"))


def test_a_sample_too_small_for_every_label_is_refused_with_sizes(tmp_path, no_training):
    cfg = tiny_run_config(data=tiny_run_config().data.model_copy(update={"max_train": 1}))
    with pytest.raises(DataError, match=r"empty after sampling \(rows: \{'train': 0, 'dev': 90"):
        pipeline.run(cfg, Store(tmp_path / "store"))


NAMES = ("entailment", "neutral", "contradiction")
RAW = {"0": "entailment", "1": "neutral", "2": "contradiction"}


def tsv(path: str, **kw) -> LocalSource:
    return LocalSource(path=path, format="tsv", columns={"text_a": "a", "text_b": "b", "label": "y"}, labels=RAW, **kw)


@pytest.mark.parametrize("name, content, source, message", [
    ("bad.json", b'{"0": {"a": ', LocalSource(path="bad.json", format="json_dict", columns={"text_a": "a", "text_b": "b",
                                                                                            "label": "y"}),
     r"bad.json: cannot be read as a JSON object of records .*: Expecting .* line 1"),
    ("latin.tsv", "a\tb\ty\ncaf\u00e9\tx\t0\n".encode("latin-1"), tsv("latin.tsv"), r"latin.tsv: cannot be read as TSV \(tab-separated\): .*utf-8"),
    ("empty.tsv", b"", tsv("empty.tsv"), r"empty.tsv: the file is empty"),
    ("header-only.tsv", b"a\tb\ty\n", tsv("header-only.tsv"), r"header-only.tsv: the file is empty"),
    ("labels.tsv", b"a\tb\ty\nx\ty\tentailment\n", tsv("labels.tsv"),
     r"labels.tsv\): unknown label values \['entailment'\]; the file may hold \['0', '1', '2'\]"),
    ("columns.tsv", b"a\tq\ty\nx\ty\t0\n", tsv("columns.tsv"), r"columns.tsv\): missing columns \['b'\]"),
])
def test_data_file_errors_name_the_file(name, content, source, message, tmp_path):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_source(source, NAMES, tmp_path, "mnli/train")


def test_a_loss_that_becomes_non_finite_stops_training_with_the_stage_and_step():
    rows = pd.DataFrame({"text_a": ["a b c"] * 8, "text_b": ["a b"] * 8, "label": [0, 1] * 4})
    model, tok = build_base(TINY, NAMES, rows["text_a"].tolist(), seed=0)

    def nan_loss(logits, labels, idx):
        return logits.sum() * torch.tensor(math.nan)

    with pytest.raises(FloatingPointError, match="teacher-s1: the loss became nan at step 1 of"):
        training.fine_tune(model, tok, rows, nan_loss, FAST, desc="teacher-s1")

