"""The human-readable views: tables that fit where they are shown."""

from __future__ import annotations

import pandas as pd
import pytest

from rmc_core.report import to_markdown


def test_a_wide_table_is_split_into_narrow_ones_that_repeat_the_key_column():
    frame = pd.DataFrame({"model": ["teacher", "imp40-rmc"], **{f"m{i}": [0.5 + i / 100, 0.25] for i in range(9)}})
    tables = to_markdown(frame, max_columns=4).split("\n\n")
    headers = [t.splitlines()[0].strip("| ").split(" | ") for t in tables]
    assert len(tables) == 3
    assert all(h[0] == "model" and len(h) <= 4 for h in headers)
    assert [c for h in headers for c in h[1:]] == [f"m{i}" for i in range(9)]  # every column once, in order
    assert all(t.splitlines()[2].startswith("| teacher | ") for t in tables)
    assert "| imp40-rmc | 0.250 | 0.250 | 0.250 |" in tables[-1]


def test_without_a_width_the_table_stays_whole():
    frame = pd.DataFrame({"model": ["teacher"], **{f"m{i}": [0.5] for i in range(9)}})
    assert "\n\n" not in to_markdown(frame)
    assert to_markdown(frame).splitlines()[0].count("|") == 11


def _tables(n_seeds: int) -> dict[str, pd.DataFrame]:
    """A report's tables as `summarize` writes them, for three models on one OOD set."""
    from rmc_core.evaluation.registry import DECLARED, declared
    from rmc_core.evaluation import EVALUATIONS
    from rmc_core.data.registry import TaskData

    empty = pd.DataFrame()
    data = TaskData(train=empty, dev=pd.DataFrame({"hard": [True]}), ood={"hans": empty})
    models = ["teacher", "imp40-vanilla", "imp40-rmc"]
    results = pd.DataFrame({"model": models, "role": ["teacher", "student", "student"], "acc_dev": [0.9, 0.85, 0.86],
                            "acc_hans": [0.6, 0.5, 0.55], "acc_ood": [0.6, 0.5, 0.55], "f_bias": [float("nan"), 1.4, 1.2],
                            "label_loyalty": [1.0, 0.9, 0.92], "prob_loyalty": [1.0, 0.8, 0.81], "dev_easy": [0.95, 0.9, 0.9],
                            "dev_hard": [0.8, 0.7, 0.75], "dev_gap": [0.15, 0.2, 0.15], "achieved_sparsity": [0.0, 0.4, 0.4]})
    columns = pd.concat([declared(spec, data) for spec in EVALUATIONS.values() if spec.applies(data)], ignore_index=True)
    intervals = pd.DataFrame([{"model": m, "metric": c, "mean": v, "low": v - 0.02, "high": v + 0.02, "n_seeds": n_seeds}
                              for m, row in results.set_index("model").iterrows() for c, v in row.items()
                              if c.startswith(("acc_", "f_bias"))])
    return {"results": results, DECLARED: columns, "results_interval": intervals}


def test_the_summary_fits_the_pane_in_one_naming_style_with_a_legend():
    from rmc_core.report import PANE_COLUMNS, legend, summary_table

    tables = _tables(1)
    head, detail = summary_table(tables), summary_table(tables, "detail")
    assert list(head.columns) == ["model", "ID dev", "OOD", "F_bias", "label loyalty", "prob. loyalty"]
    assert len(head.columns) <= PANE_COLUMNS
    # one OOD set is the union: shown once, not twice
    assert list(detail.columns) == ["model", "dev easy", "dev hard", "easy-hard gap", "achieved sparsity"]
    lines = legend(tables)
    assert all(any(line.startswith(label) for line in lines) for label in [*head.columns[1:], "dev easy", "easy-hard gap"])


def test_with_seeds_the_summary_cells_carry_their_interval():
    from rmc_core.report import summary_table

    assert summary_table(_tables(3)).set_index("model").loc["imp40-rmc", "OOD"] == "0.550 [0.530, 0.570]"


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_report_png_is_a_picture_of_every_model(n_seeds, tmp_path):
    from rmc_core.report_plot import write_report_png

    path = write_report_png(_tables(n_seeds), "mnli", tmp_path)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert write_report_png(_tables(n_seeds), "mnli", tmp_path).read_bytes() == png  # identical runs, identical files


def test_the_heuristic_table_reads_model_by_heuristic_per_gold_label():
    from rmc_core.report import heuristic_lines

    rows = [{"model": m, "heuristic": h, "gold": g, "accuracy": a, "n": 10, "ood_set": "hans", "seed": s}
            for s, shift in ((0, 0.0), (1, 0.1)) for m in ("teacher", "imp40-rmc")
            for h, g, a in (("lexical_overlap", "entailment", 0.9), ("subsequence", "entailment", 0.8),
                            ("lexical_overlap", "non-entailment", 0.1), ("subsequence", "non-entailment", 0.2))
            for a in [a + shift]]
    lines = "\n".join(heuristic_lines(pd.DataFrame(rows))).splitlines()
    assert lines[0] == "hans, gold label entailment:"
    header = next(line for line in lines if line.startswith("| model"))
    assert header == "| model | lexical_overlap | subsequence |"  # model x heuristic: each model once
    assert sum(line.startswith("| teacher |") for line in lines) == 2  # one row per gold label's table
    assert "| teacher | 0.950 | 0.850 |" in lines  # the mean over the two seeds


def test_the_speed_table_keeps_its_figures_in_the_pane_and_each_ref_whole_in_a_table_of_its_own():
    from rmc_core.report import PANE_COLUMNS, inference_lines

    ref = "model/" + "8142108cf0c" * 6
    costs = pd.DataFrame({"model": ["teacher"], "params": [22_000_000], "latency_b1_ms": [3.2], "ref": [ref]})
    lines = inference_lines(costs)
    figures, refs = lines[0], lines[-1]
    assert "ref" not in figures and figures.splitlines()[0].count("|") <= PANE_COLUMNS + 1
    assert refs.splitlines()[0] == "| model | ref |" and ref in refs


def test_an_undefined_metric_is_a_blank_cell_not_nan():
    from rmc_core.report import to_markdown

    table = to_markdown(pd.DataFrame({"model": ["teacher"], "F_bias": [float("nan")]}))
    assert table.splitlines()[-1] == "| teacher |  |" and "nan" not in table
