"""Model pairs across runs: the columns without a paired bootstrap are compared over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rmc.benchmarks.pairs import by_seed, model_table, seed_differences

COLUMNS = pd.DataFrame({"column": ["acc_dev", "label_loyalty", "train_dev_gap", "acc_train"],
                        "better": ["higher", "higher", "lower", None], "paired": [True, False, False, False]})


def results(model: str, gaps: list[float], seeds: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "seed": seeds, "acc_dev": 0.8, "label_loyalty": 0.9, "train_dev_gap": gaps,
                         "acc_train": 0.95})


def test_a_seed_only_difference_is_the_t_interval_of_the_per_seed_differences_on_shared_seeds():
    table = pd.concat([results("spd40", [0.05, 0.06, 0.05], [0, 1, 2]), results("imp40", [0.10, 0.10, 0.11, 0.5], [0, 1, 2, 3])])
    out = seed_differences(table, COLUMNS, [("spd40", "imp40")]).set_index("metric")
    assert set(out.index) == {"label_loyalty", "train_dev_gap"}, "paired columns and descriptions are not compared here"
    d = np.array([-0.05, -0.04, -0.06])  # seed 3 ran only for imp40
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    row = out.loc["train_dev_gap"]
    assert row["difference"] == pytest.approx(d.mean()) and row["high"] == pytest.approx(d.mean() + half)
    assert row["n_seeds"] == 3 and row["resolved"] and row["a_better"], "a smaller gap is better"
    assert not out.loc["label_loyalty", "resolved"]  # zero spread, zero difference
    with pytest.raises(ValueError, match="share no seed"):
        seed_differences(pd.concat([results("a", [0.1], [0]), results("b", [0.1], [1])]), COLUMNS, [("a", "b")])


def test_a_model_in_several_runs_is_taken_from_the_first_and_every_scored_column_gets_its_interval(tmp_path):
    for run, model in (("one", "imp40"), ("two", "spd40")):
        (tmp_path / run).mkdir()
        frame = pd.concat([results(model, [0.1, 0.2], [0, 1]), results("teacher", [0.0, 0.0], [0, 1])])
        frame.assign(acc_dev=0.7 if run == "two" else 0.8).to_csv(tmp_path / run / "results_by_seed.csv", index=False)
        COLUMNS.to_csv(tmp_path / run / "columns.csv", index=False)
    table, columns = by_seed([tmp_path / "one", tmp_path / "two"])
    assert list(table["model"]) == ["imp40", "imp40", "teacher", "teacher", "spd40", "spd40"]
    assert (table[table["model"] == "teacher"]["acc_dev"] == 0.8).all()
    intervals = model_table(table, columns).set_index(["model", "metric"])
    assert set(intervals.index.get_level_values("metric")) == {"acc_dev", "label_loyalty", "train_dev_gap"}
    assert intervals.loc[("spd40", "train_dev_gap"), "mean"] == pytest.approx(0.15)
    assert intervals.loc[("spd40", "train_dev_gap"), "n_seeds"] == 2


def test_the_page_table_has_a_row_per_model_and_a_rounded_interval_per_cell():
    from rmc.benchmarks.pairs import model_cells

    intervals = pd.DataFrame({"model": ["b", "b", "a"], "metric": ["acc_dev", "acc_ood", "acc_dev"],
                              "mean": [0.81234, 0.5, 0.7], "low": [0.8, np.nan, 0.6], "high": [0.82, np.nan, 0.8]})
    table = model_cells(intervals)
    assert list(table.columns) == ["model", "acc_dev", "acc_ood"] and list(table["model"]) == ["b", "a"]
    assert table.iloc[0].tolist() == ["b", "0.812 [0.800, 0.820]", "0.500"]
    assert table.iloc[1]["acc_ood"] == ""
