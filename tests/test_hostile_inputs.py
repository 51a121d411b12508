"""Inputs a careless user or an attacker would try, each refused where it enters, with
the file, row and field named, instead of passing on to a later stage or to wrong figures
(issue 30's hostile-input cases; more join as they are fixed)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rmc_core.data.annotate import MNLI_HARDNESS, mnli_hardness
from rmc_core.data.sources import DataError, LocalSource, load_source

NLI = ("entailment", "neutral", "contradiction")
JSON_DICT = LocalSource(path="train.json", format="json_dict", columns={"text_a": "text_a", "text_b": "text_b", "label": "label"})


@pytest.mark.parametrize("record, field", [({"text_a": "a", "label": "entailment"}, "text_b"),
                                           ({"text_a": None, "text_b": "b", "label": "entailment"}, "text_a"),
                                           ({"text_a": "a", "text_b": "b", "label": None}, "label")])
def test_a_record_without_a_value_is_refused_naming_file_row_and_field(tmp_path, record, field):
    good = {"text_a": "a", "text_b": "b", "label": "entailment"}
    (tmp_path / "train.json").write_text(json.dumps({"0": good, "1": good, "7": record}))
    with pytest.raises(DataError, match=rf"train \(.*train.json\): 1 rows with no {field} \('{field}'\) value \(rows 7\)"):
        load_source(JSON_DICT, NLI, tmp_path, "train")


@pytest.fixture
def dev(tmp_path):
    """Three dev rows and their hardness file, as the shared data lays it out."""
    (tmp_path / MNLI_HARDNESS).parent.mkdir(parents=True)
    return pd.DataFrame({"text_a": ["a"] * 3, "text_b": ["b"] * 3, "label": [0, 1, 2]}), tmp_path


def test_hardness_annotations_are_read_as_written(dev):
    frame, root = dev
    (root / MNLI_HARDNESS).write_text("idx,pairID,hardness\n0,1n,1\n1,2c,0\n2,3e,1\n")
    assert mnli_hardness(frame, root)["hard"].tolist() == [True, False, True]


@pytest.mark.parametrize("value", ["", "2", "hard"])
def test_a_blank_or_unknown_hardness_is_an_error_never_hard(dev, value):
    """A blank cell read as NaN became True ("hard"): a run reported 6,663 hard rows
    instead of 4,573 without a word."""
    frame, root = dev
    (root / MNLI_HARDNESS).write_text(f"idx,pairID,hardness\n0,1n,1\n1,2c,{value}\n2,3e,0\n")
    with pytest.raises(DataError, match=rf"hardness.csv: 1 hardness values are neither 0 nor 1 \(line 3: '{value}'\)"):
        mnli_hardness(frame, root)


def test_a_blank_hardness_fails_the_real_dev_set_at_prepare_data(data_root, tmp_path):
    """The shared MNLI dev set with one hardness cell blanked: loading the task (what
    prepare-data does) fails, naming the file."""
    from rmc_core.config import DataConfig
    from rmc_core.data.registry import load_task_data

    root = tmp_path / "data"  # the shared folder, linked, with only the hardness file copied
    (root / "mnli").mkdir(parents=True)
    for entry in (data_root / "mnli").iterdir():
        (root / "mnli" / entry.name).symlink_to(entry)
    for entry in data_root.iterdir():
        if entry.name != "mnli":
            (root / entry.name).symlink_to(entry)
    path = root / MNLI_HARDNESS
    (root / "mnli" / path.parent.name).unlink()
    path.parent.mkdir()
    lines = (data_root / MNLI_HARDNESS).read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ","
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"hardness.csv: 1 hardness values are neither 0 nor 1 \(line 6: ''\)"):
        load_task_data("mnli", DataConfig(data_root=root, max_train=50))
