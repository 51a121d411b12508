"""A TextFooler-style word-substitution attack that runs offline (Jin et al., 2020, as used
by Xu et al., 2021 to measure compressed models' robustness): which words may change
(words.py), what they may change into (candidates.py), how close the changed sentence must
stay (similarity.py), and the greedy search (textfooler.py)."""
