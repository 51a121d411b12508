"""A throw-away difficulty estimator: one minus the teacher's margin between its two most
probable classes (a row the teacher is unsure of is hard). No sub-networks; it reads the
teacher's predictions, which every run makes. Everything it needs is here."""

from __future__ import annotations

import numpy as np

from rmc_core.objectives.estimators import EstimatorSpec, Scoring, register


def _uncertainty(scoring: Scoring) -> np.ndarray:
    [teacher] = scoring.tables()
    probs = np.sort(teacher.drop(columns="loss").to_numpy(dtype=np.float64), axis=1)
    return 1.0 - (probs[:, -1] - probs[:, -2])


MARGIN = register(EstimatorSpec(
    name="margin",
    summary="one minus the teacher's margin between its two most probable classes",
    reads="teacher-predictions",
    score=_uncertainty,
))
