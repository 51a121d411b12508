"""The shortcut-injected real-text testbed (data.shortcut_strength): a label-revealing
marker in the hypothesis at a set rate, an OOD copy of dev where every marker is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from rmc_core import pipeline
from rmc_core.config import DataConfig, SubnetworkConfig
from rmc_core.data.registry import TASKS, load_task_data
from rmc_core.data.registry import ood_names
from rmc_core.data.shortcut import MARKERS, OOD_NAME, anti, inject
from rmc_core.evaluation.tables import ood_predictions
from rmc_core.store import Store
from tests.conftest import FAST, TINY_SPARSITIES, tiny_run_config


def rows(n: int, n_labels: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"text_a": ["p"] * n, "text_b": [f"h{i}" for i in range(n)], "label": np.arange(n) % n_labels})


def marker_of(frame: pd.DataFrame) -> np.ndarray:
    return np.array([MARKERS.index(t.split(" ", 1)[0]) for t in frame["text_b"]])


@pytest.mark.parametrize(("strength", "n_labels"), [(0.9, 3), (0.6, 2), (1.0, 3)])
def test_the_marker_agrees_with_the_label_at_the_set_rate(strength, n_labels):
    frame = rows(6000, n_labels)
    marked = inject(frame, n_labels, strength, seed=(0, 0))
    marker = marker_of(marked)
    agrees = marker == frame["label"].to_numpy()
    assert abs(agrees.mean() - strength) < 0.02
    np.testing.assert_array_equal(marked["hard"], ~agrees)
    assert marker.max() < n_labels, "only the task's labels have markers"
    assert [t.split(" ", 1)[1] for t in marked["text_b"]] == list(frame["text_b"]), "the text itself is kept"
    if n_labels == 3 and strength < 1:
        wrong = marker[~agrees] - frame["label"].to_numpy()[~agrees]
        assert 0.45 < (wrong % 3 == 1).mean() < 0.55, "a disagreeing marker is either other label, uniformly"
    assert inject(frame, n_labels, strength, seed=(0, 0)).equals(marked), "seeded"


def test_the_ood_copy_has_every_marker_wrong():
    frame = rows(300)
    copy = anti(frame, 3, seed=(0, 2))
    assert (marker_of(copy) != frame["label"].to_numpy()).all() and copy["hard"].all()


def test_a_shortcut_needs_two_or_three_labels():
    with pytest.raises(ValueError, match="2 to 3 labels"):
        inject(rows(10, 4), 4, 0.9, seed=0)


def test_on_the_shortcut_copy_a_three_way_prediction_is_scored_three_ways():
    """HANS folds neutral and contradiction into non-entailment; the shortcut's OOD copy of
    dev keeps MNLI's three labels, so following a neutral marker on a contradiction is wrong."""
    neutral = np.array([[0.1, 0.8, 0.1]])
    assert ood_predictions(neutral, TASKS["mnli"], OOD_NAME).tolist() == [1]
    assert ood_predictions(neutral, TASKS["mnli"], "hans").tolist() == [1]  # non-entailment, like contradiction
    assert ood_names("mnli", "local", shortcut_injected=True) == ("hans", "snli-hard", "mnli-mm-hard", OOD_NAME)


def test_the_synthetic_task_refuses_an_injected_shortcut():
    with pytest.raises(ValidationError, match="plants its own"):
        tiny_run_config(data=DataConfig(shortcut_strength=0.9))


def test_mnli_with_a_shortcut(data_root):
    cfg = DataConfig(data_root=data_root, shortcut_strength=0.8, max_train=600, max_dev=300, max_ood=60)
    data = load_task_data("mnli", cfg)
    assert set(data.ood) == {"hans", "snli-hard", "mnli-mm-hard", OOD_NAME} and len(data.ood[OOD_NAME]) == len(data.dev)
    assert abs(data.train["hard"].mean() - 0.2) < 0.05 and abs(data.dev["hard"].mean() - 0.2) < 0.07
    plain = load_task_data("mnli", cfg.model_copy(update={"shortcut_strength": None}))
    assert [t.split(" ", 1)[1] for t in data.ood[OOD_NAME]["text_b"]] == list(plain.dev["text_b"])
    assert list(data.ood[OOD_NAME]["label"]) == list(plain.dev["label"])


def test_the_oracle_runs_on_shortcut_mnli_and_its_ood_copy_is_reported(data_root, tmp_path):
    data = DataConfig(data_root=data_root, shortcut_strength=0.9, max_train=300, max_dev=90, max_ood=30)
    subnets = SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST, estimator="annotated")
    cfg = tiny_run_config(task="mnli", data=data, methods=("rmc",), subnetworks=subnets)
    pipeline.preflight(cfg, Store(tmp_path), ["cpu"])
    tables = pipeline.run_local(cfg, tmp_path)
    results = tables["results"].set_index("model")
    assert {"acc_hans", f"acc_{OOD_NAME}", "dev_hard"} <= set(results.columns)
    assert results[f"acc_{OOD_NAME}"].between(0, 1).all()
