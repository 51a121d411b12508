"""What a run measures: one module per evaluation, registered in registry.py (accuracy,
f_bias, loyalty, easy_hard, heuristics, split_agreement, ood_premise, train_fit, attack), the metrics they compute
(metrics.py), intervals over seeds and paired comparisons (uncertainty.py, statistics.py),
and the models' size and speed (inference_cost.py)."""

# Registration order is the results table's column order.
from rmc_core.evaluation import accuracy, f_bias, loyalty, easy_hard, heuristics, split_agreement, ood_premise, train_fit, attack, inference_cost  # noqa: F401, I001
from rmc_core.evaluation.registry import EVALUATIONS, Column, EvaluationSpec, register

__all__ = ["EVALUATIONS", "Column", "EvaluationSpec", "register"]
