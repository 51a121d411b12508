"""The human-readable views: tables that fit where they are shown."""

from __future__ import annotations

import pandas as pd

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
