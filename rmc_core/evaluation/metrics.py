"""Evaluation metrics: accuracy, relative bias F_bias, and loyalty to the teacher."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import xlogy


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    pred, gold = np.asarray(pred), np.asarray(gold)
    if pred.shape != gold.shape or pred.size == 0:
        raise ValueError(f"accuracy needs two equal, non-empty label arrays, got {pred.shape} and {gold.shape}")
    return float((pred == gold).mean())


def relative_bias(teacher_dev: float, teacher_ood: float, student_dev: float, student_ood: float) -> float:
    """F_bias = Delta_student / Delta_teacher with Delta = (F_dev - F_ood) / F_dev.

    Above 1 the compressed model loses more out of distribution, relative to its own ID
    score, than its teacher does. Undefined (nan) when the teacher has no ID/OOD gap.
    """
    delta_t = (teacher_dev - teacher_ood) / teacher_dev
    delta_s = (student_dev - student_ood) / student_dev
    return math.nan if delta_t == 0 else delta_s / delta_t


def label_loyalty(p_teacher: np.ndarray, p_student: np.ndarray) -> float:
    """Fraction of samples where the student predicts the teacher's label (Xu et al., 2021)."""
    return float((np.argmax(p_teacher, axis=1) == np.argmax(p_student, axis=1)).mean())


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-sample Jensen-Shannon divergence in bits (log base 2, so values lie in [0, 1]),
    reduced over the class axis of (n_samples, n_classes) arrays."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    kl = lambda a: (xlogy(a, a) - xlogy(a, m)).sum(axis=1)
    return np.clip(0.5 * (kl(p) + kl(q)) / np.log(2.0), 0.0, 1.0)


def probability_loyalty(p_teacher: np.ndarray, p_student: np.ndarray) -> float:
    """1 - mean Jensen-Shannon distance (sqrt of the base-2 JSD): 1 means identical outputs."""
    return float(1.0 - np.sqrt(js_divergence(p_teacher, p_student)).mean())
